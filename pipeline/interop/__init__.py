"""avzsl.pipeline.interop."""
