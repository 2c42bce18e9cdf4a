"""Stage 4, train: model families with their search spaces, and the search."""
