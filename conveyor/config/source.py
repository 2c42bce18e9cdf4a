"""Where the data comes from: the source table, secondary tables, and how it is cut into batches."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from conveyor.config.base import Section

# a positive whole number of weeks, days, hours, minutes or seconds: a fixed offset pandas
# reads the same way (anything else is checked by pandas itself)
_PLAIN_OFFSET = re.compile(r"([1-9][0-9]*)(W|D|h|min|s)")
_UNIT_SECONDS = {"W": 604800, "D": 86400, "h": 3600, "min": 60, "s": 1}


def span_seconds(value: str) -> float:
    """The length of a fixed pandas offset in seconds (7D, 12h, 30min without loading
    pandas; 1D12h and the like as pandas reads them); ValueError when it is not one.

    >>> span_seconds("7D"), span_seconds("1D12h")
    (604800, 129600.0)
    """
    plain = _PLAIN_OFFSET.fullmatch(value)
    if plain:
        return int(plain.group(1)) * _UNIT_SECONDS[plain.group(2)]
    import pandas as pd

    try:
        delta = pd.Timedelta(pd.tseries.frequencies.to_offset(value))  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"'{value}' is not a fixed pandas offset such as 7D, 1D or 12h") \
            from exc
    return delta.total_seconds()


class CsvOptions(Section):
    delimiter: str = Field(",", description="Field separator, e.g. ',' ';' or '\\t' for TSV.")
    encoding: str = Field("utf-8", description="Text encoding of the file.")
    decimal: str = Field(".", description="Decimal mark of numbers.")


class TableConfig(Section):
    """Where a table lives: a file (CSV/TSV, Parquet, Excel) or a SQL table or query."""

    kind: Literal["csv", "parquet", "excel", "sql"] = Field(
        "csv", description="csv | parquet | excel | sql (SQLAlchemy URL or SQLite file)."
    )
    path: Path | None = Field(
        None, description="The file (relative to the config's folder); for sql, a SQLite file."
    )
    url: str | None = Field(
        None, description="sql: a SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db."
    )
    table: str | None = Field(None, description="sql: the table to read.")
    query: str | None = Field(None, description="sql: a SELECT to run instead of a table.")
    csv: CsvOptions = Field(default_factory=CsvOptions, description="CSV/TSV reading options.")
    sheet: str | int = Field(0, description="Excel sheet name or index.")

    @model_validator(mode="after")
    def _located(self) -> TableConfig:
        self._check_location()
        return self

    def _check_location(self) -> None:
        if self.kind == "sql":
            if (self.url is None) == (self.path is None):
                raise ValueError("a sql source needs exactly one of 'url' or 'path' (SQLite)")
            if (self.table is None) == (self.query is None):
                raise ValueError("a sql source needs exactly one of 'table' or 'query'")
        elif self.path is None:
            raise ValueError(f"a {self.kind} source needs 'path'")


class SourceConfig(TableConfig):
    kind: Literal["csv", "parquet", "excel", "sql", "inbox"] = Field(  # type: ignore[assignment]
        "csv",
        description="csv | parquet | excel | sql, or inbox: a folder where new files arrive.",
    )
    time_column: str = Field(..., description="Column with the event time; windows are cut on it.")
    pattern: str = Field("*", description="inbox: glob of the files to pick up, e.g. '*.csv'.")

    @model_validator(mode="after")
    def _located(self) -> SourceConfig:
        if self.kind == "inbox":
            if self.path is None:
                raise ValueError("an inbox source needs 'path' (the folder files arrive in)")
            return self
        self._check_location()
        return self


class EnrichConfig(TableConfig):
    """A secondary table joined to every batch by key (and as of time, when set)."""

    name: str = Field(..., description="A name for logs and events.")
    keys: list[str] = Field(..., min_length=1, description="Key columns present in both tables.")
    time_column: str | None = Field(
        None, description="As-of join: the secondary table's time column (nearest earlier row)."
    )
    stream_time_column: str | None = Field(
        None, description="The stream's column to match on time; null means source.time_column."
    )
    tolerance: str | None = Field(
        None, description="As-of join: the oldest match allowed, a pandas offset such as 1h."
    )
    columns: list[str] | None = Field(
        None, description="Columns to add; null means all but the keys and time."
    )
    prefix: str = Field("", description="Prefix for the added columns (avoids name clashes).")


class StreamConfig(Section):
    window: str = Field("7D", description="Pandas offset of one batch window, e.g. 7D, 1D, 12h.")
    rows: int | None = Field(
        None, ge=1, description="Batches of this many rows instead of time windows; null: windows."
    )
    initial_batches: int = Field(
        1, ge=1, description="Windows ingested by the first update before the first training."
    )

    @field_validator("window")
    @classmethod
    def _valid_offset(cls, value: str) -> str:
        if span_seconds(value) <= 0:
            raise ValueError("the window must be positive")
        return value
