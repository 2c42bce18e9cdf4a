"""conveyor: continuous training for streaming tabular data."""

__version__ = "0.1.0"
