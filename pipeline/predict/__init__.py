"""Prediction from a trained run: run records (``records``), encoding and ranking (``ranking``), the run's
``Predictor`` (``predictor``) and the CLIP/CLAP text-tower paths (``zero_shot``)."""
