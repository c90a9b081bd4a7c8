"""avzsl.extractors.text."""
