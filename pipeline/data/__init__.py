"""avzsl.pipeline.data."""
