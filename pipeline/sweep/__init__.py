"""avzsl.pipeline.sweep."""
