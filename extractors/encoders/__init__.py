"""avzsl.extractors.encoders."""
