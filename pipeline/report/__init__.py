"""avzsl.pipeline.report.build."""
