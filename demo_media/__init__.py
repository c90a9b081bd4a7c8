"""Real pictures and recordings of the real-media demo (data only; see README.md and attributions.csv)."""
