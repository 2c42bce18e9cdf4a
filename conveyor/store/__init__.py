"""Metadata store: the catalog of batches, statistics, models and events."""

from conveyor.store.db import Store

__all__ = ["Store"]
