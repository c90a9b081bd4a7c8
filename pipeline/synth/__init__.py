"""avzsl.pipeline.synth."""
