"""avzsl.pipeline.train.trainer."""
