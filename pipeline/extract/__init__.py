"""The extraction stage: ``config`` (settings, shard plan, cache identity), ``ownership`` (rank locks),
``shard`` (one shard), ``stage`` (``run_extraction``), ``world`` (rank and world size), ``input_checks``."""
