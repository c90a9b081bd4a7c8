"""avzsl.pipeline.core."""
