"""Cut the time-ordered source into windows: the stream that updates consume.

Window ``i`` covers ``[origin + i * width, origin + (i + 1) * width)``, where the
origin is the source's first timestamp. The cursor is the next window index,
kept in the metadata store (the batches catalog).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Window:
    """One stream window."""

    index: int
    start: pd.Timestamp
    end: pd.Timestamp


def window_width(window: str) -> pd.Timedelta:
    """Return the width of a pandas offset such as ``7D``.

    >>> window_width("12h")
    Timedelta('0 days 12:00:00')
    """
    return pd.Timedelta(pd.tseries.frequencies.to_offset(window))  # type: ignore[arg-type]


def window_at(origin: pd.Timestamp, width: pd.Timedelta, index: int) -> Window:
    """Return window number ``index``.

    >>> w = window_at(pd.Timestamp("2013-01-01", tz="UTC"), pd.Timedelta("7D"), 2)
    >>> (w.start.date().isoformat(), w.end.date().isoformat())
    ('2013-01-15', '2013-01-22')
    """
    start = origin + index * width
    return Window(index=index, start=start, end=start + width)


def index_of(origin: pd.Timestamp, width: pd.Timedelta, time: pd.Timestamp) -> int:
    """Return the index of the window that holds ``time``.

    >>> origin = pd.Timestamp("2013-01-01", tz="UTC")
    >>> index_of(origin, pd.Timedelta("7D"), pd.Timestamp("2013-01-15", tz="UTC"))
    2
    """
    return int((time - origin) // width)
