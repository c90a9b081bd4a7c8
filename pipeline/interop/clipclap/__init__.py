"""avzsl.pipeline.interop.clipclap."""
