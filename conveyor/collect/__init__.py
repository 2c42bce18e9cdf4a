"""Stage 1, collect: sources, stream windows and cursor, raw store, batch meta-parameters."""
