"""avzsl.pipeline.predict.predictor."""
