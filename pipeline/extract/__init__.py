"""avzsl.pipeline.extract.stage."""
