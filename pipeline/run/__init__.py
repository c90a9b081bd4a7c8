"""avzsl.pipeline.run."""
