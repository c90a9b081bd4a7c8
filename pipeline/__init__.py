"""avzsl.pipeline: stages, command-line tools, feature cache I/O, run directories, resume and distribution."""
