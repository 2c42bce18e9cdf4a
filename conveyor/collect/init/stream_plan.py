"""How ``conveyor init`` cuts the stream: a time window, or row-count batches."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from conveyor.collect.stream import window_width
from conveyor.config import QualityConfig
from conveyor.errors import InputError

WINDOWS = ("1h", "6h", "12h", "1D", "7D", "14D", "30D")
MIN_BATCHES, TARGET_BATCHES = 20, 50
DEFAULT_MIN_ROWS = QualityConfig().min_rows  # below it a batch is quarantined
MIN_BATCH_ROWS = DEFAULT_MIN_ROWS  # a typical window must not be quarantined for its size
INITIAL_ROWS = 200


@dataclass(frozen=True)
class StreamPlan:
    """How the stream is cut: the ``stream`` section and what it gives."""

    section: dict[str, Any]
    batches: int
    typical_rows: int
    min_rows: int
    notes: dict[str, str]

    def describe(self) -> str:
        how = (f"window {self.section['window']}" if "window" in self.section
               else f"batches of {self.section['rows']:,} rows")
        return (f"{how} ({self.batches} batches of ~{self.typical_rows:,} rows, "
                f"{self.section['initial_batches']} in the first update)")



def _initial_batches(counts: pd.Series, batches: int) -> int:
    reached = counts.cumsum().to_numpy() >= INITIAL_ROWS
    needed = int(reached.argmax()) + 1 if reached.any() else batches
    return max(2, min(needed, batches // 2))


def _min_rows(small_batch: float) -> int:
    return int(max(1, min(DEFAULT_MIN_ROWS, small_batch // 2)))


def choose_stream(times: pd.Series) -> StreamPlan:
    """Return how to cut the stream: a window from :data:`WINDOWS`, or row-count batches.

    >>> hours = pd.Series(pd.date_range("2024-01-01", periods=2400, freq="15min", tz="UTC"))
    >>> choose_stream(hours).section
    {'window': '12h', 'initial_batches': 5}
    """
    times = times.dropna().sort_values(ignore_index=True)
    if times.empty:
        raise InputError("the time column has no values")
    origin = times.iloc[0]
    options = []
    for window in WINDOWS:
        width = window_width(window)
        counts = ((times - origin) // width).value_counts().sort_index()
        if len(counts) >= MIN_BATCHES and counts.median() >= MIN_BATCH_ROWS:
            options.append((abs(len(counts) - TARGET_BATCHES), -width, window, counts))
    if options:
        _, _, window, counts = min(options, key=lambda o: o[:2])
        batches, typical = len(counts), int(counts.median())
        initial = _initial_batches(counts, batches)
        section = {"window": window, "initial_batches": initial}
        span = times.iloc[-1] - origin
        notes = {"stream.window": f"{batches} non-empty windows of ~{typical:,} rows over "
                                  f"{span / pd.Timedelta('1D'):.1f} days",
                 "stream.initial_batches": f"~{int(counts.iloc[:initial].sum()):,} rows for "
                                           "the first training"}
        return StreamPlan(section, batches, typical, _min_rows(counts.quantile(0.1)), notes)
    n = len(times)
    size = max(MIN_BATCH_ROWS, math.ceil(n / TARGET_BATCHES))
    if n // size < 5:
        size = max(1, n // 5)
    batches = math.ceil(n / size)
    counts = pd.Series([size] * (n // size) + ([n % size] if n % size else []))
    initial = _initial_batches(counts, batches)
    notes = {"stream.rows": f"the time span is too short for {MIN_BATCHES}+ windows of "
                            f"{MIN_BATCH_ROWS}+ rows: {batches} batches of {size:,} rows",
             "stream.initial_batches": f"{initial * size:,} rows for the first training"}
    return StreamPlan({"rows": size, "initial_batches": initial}, batches, size,
                      _min_rows(size), notes)
