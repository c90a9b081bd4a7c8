"""avzsl.pipeline.cli."""
