"""Stage 5, validate: metrics, time-ordered schemes, the model registry."""
