"""avzsl.model: the trainable AV-GZSL model of "Coordinate and Generalize", its losses, scoring and metrics.

Pure library code: no file I/O, no CLI policy (that lives in avzsl.pipeline).
"""
