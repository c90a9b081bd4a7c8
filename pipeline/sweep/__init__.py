"""avzsl.pipeline.sweep: sweep plans and records (plan), the method table (methods), statistics over seeds
(stats) and the engine that runs a sweep (runner)."""
