"""Stage 2, analyze: data quality and its gate, cleaning."""
