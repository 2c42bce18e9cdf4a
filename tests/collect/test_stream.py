"""Stream windows: boundaries by hand, the cursor walking over windows and row batches."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.collect import sources
from conveyor.collect.ingest import next_from_stream
from conveyor.collect.stream import index_of, window_at, window_width
from conveyor.config import parse_config

ORIGIN = pd.Timestamp("2024-01-03 10:00", tz="UTC")


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_seven_day_windows_by_hand():
    width = window_width("7D")
    assert width == pd.Timedelta(days=7)
    window = window_at(ORIGIN, width, 3)  # 21 days after 3 January, 10:00
    assert (window.index, window.start, window.end) == (
        3, utc("2024-01-24 10:00"), utc("2024-01-31 10:00"))
    assert index_of(ORIGIN, width, ORIGIN) == 0
    assert index_of(ORIGIN, width, utc("2024-01-10 09:59:59.999999")) == 0
    assert index_of(ORIGIN, width, utc("2024-01-10 10:00")) == 1  # the end opens the next one
    assert index_of(ORIGIN, width, utc("2024-01-31 09:00")) == 3


def test_twelve_hour_windows_by_hand():
    width = window_width("12h")
    window = window_at(ORIGIN, width, 5)  # 60 hours after 3 January, 10:00
    assert (window.start, window.end) == (utc("2024-01-05 22:00"), utc("2024-01-06 10:00"))
    assert index_of(ORIGIN, width, utc("2024-01-04 21:59")) == 2  # 35 h 59 min
    assert index_of(ORIGIN, width, utc("2024-01-04 22:00")) == 3  # 36 h
    # the same instant written in another zone falls in the same window
    assert index_of(ORIGIN, width, pd.Timestamp("2024-01-04 17:00", tz="America/New_York")) == 3


@given(window=st.sampled_from(["1h", "6h", "12h", "1D", "7D", "14D", "30D"]),
       seconds=st.integers(0, 10 * 365 * 86_400))
def test_a_time_lies_in_the_window_of_its_index(window, seconds):
    width = window_width(window)
    time = ORIGIN + pd.Timedelta(seconds=seconds)
    found = window_at(ORIGIN, width, index_of(ORIGIN, width, time))
    assert found.start <= time < found.end
    assert found.end - found.start == width


# -- the cursor: the next non-empty window at or after an index ---------------------------


TIMES = ["2024-01-01 00:00", "2024-01-01 11:59", "2024-01-01 12:00",
         # no rows from 2 January 00:00 to 3 January 00:00: windows 2 and 3 are empty
         "2024-01-03 00:00", "2024-01-03 06:00", "2024-01-03 13:00"]


@pytest.fixture
def stream_source(tmp_path):
    frame = pd.DataFrame({"t": TIMES, "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                          "y": [10, 20, 30, 40, 50, 60]})
    frame.sample(frac=1, random_state=3).to_csv(tmp_path / "s.csv", index=False)  # unsorted

    def make(stream: dict):
        config = parse_config({"source": {"kind": "csv", "path": "s.csv", "time_column": "t"},
                               "target": {"column": "y"}, "stream": stream}, tmp_path)
        cache = sources.build_cache(config.source, "y", tmp_path / "cache")
        return config, cache

    return make


def walk(config, cache) -> list[tuple[int, pd.Timestamp, pd.Timestamp, list[float]]]:
    """Advance the cursor as update does: after a batch, the next index is its index + 1."""
    seen, cursor = [], 0
    while (found := next_from_stream(config, cache, cursor)) is not None:
        window, frame = found
        seen.append((window.index, window.start, window.end, frame["x"].tolist()))
        cursor = window.index + 1
        assert len(seen) < 10
    return seen


def test_the_cursor_skips_an_empty_window_in_the_middle(stream_source):
    config, cache = stream_source({"window": "12h"})
    assert walk(config, cache) == [
        (0, utc("2024-01-01 00:00"), utc("2024-01-01 12:00"), [1.0, 2.0]),
        (1, utc("2024-01-01 12:00"), utc("2024-01-02 00:00"), [3.0]),
        (4, utc("2024-01-03 00:00"), utc("2024-01-03 12:00"), [4.0, 5.0]),
        (5, utc("2024-01-03 12:00"), utc("2024-01-04 00:00"), [6.0]),
    ]
    # a cursor inside the gap lands on the first window after it; past the end: nothing
    assert next_from_stream(config, cache, 3)[0].index == 4
    assert next_from_stream(config, cache, 6) is None


def test_row_count_batches_follow_time_order(stream_source):
    config, cache = stream_source({"rows": 4})
    assert walk(config, cache) == [
        (0, utc("2024-01-01 00:00"), utc("2024-01-03 00:00"), [1.0, 2.0, 3.0, 4.0]),
        (1, utc("2024-01-03 06:00"), utc("2024-01-03 13:00"), [5.0, 6.0]),
    ]


def test_read_window_is_half_open(stream_source):
    config, cache = stream_source({"window": "12h"})
    rows = sources.read_window(cache, "t", utc("2024-01-01 11:59"), utc("2024-01-03 00:00"))
    assert rows["x"].tolist() == [2.0, 3.0]  # 11:59 included, 3 January 00:00 excluded
    assert sources.first_time_at_or_after(cache, "t", utc("2024-01-01 12:00:01")) \
        == utc("2024-01-03 00:00")
    assert sources.time_bounds(cache, "t") == (utc("2024-01-01 00:00"), utc("2024-01-03 13:00"))
