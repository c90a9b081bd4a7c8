"""avzsl.extractors: turn raw videos and class names into arrays (decoders, SeLaVi encoders, word vectors)."""
