"""avzsl.data_manifests: benchmark split files (data only) for UCF-GZSL, ActivityNet-GZSL and VGGSound-GZSL."""
