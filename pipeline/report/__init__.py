"""avzsl.pipeline.report: the run and sweep report (build), its figures, document model and paper tables."""
