"""Prediction from a trained run: run records (``records``), encoding and ranking (``ranking``), the calibration
shift and the meaning of the score (``calibration``), the run's ``Predictor`` (``predictor``), the CLIP/CLAP
text-tower paths (``zero_shot``) and ConSE on the packaged encoders without a run (``conse``)."""
