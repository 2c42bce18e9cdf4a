"""Stage 3, prepare: column roles and the preprocessing that is part of every model."""
