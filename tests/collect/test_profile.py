"""Batch meta-parameters against numpy/pandas computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conveyor.collect.profile import MAX_LEVELS, TOP_LEVELS, batch_profile, column_profile


def test_numeric_profile_matches_numpy():
    values = [4.0, 1.0, None, 10.0, 7.0, 2.0, None, 3.0]
    present = np.array([4.0, 1.0, 10.0, 7.0, 2.0, 3.0])
    p = column_profile(pd.Series(values))
    assert p["dtype"] == "numeric"
    assert p["missing_share"] == 2 / 8 and p["n_unique"] == 6
    assert p["mean"] == pytest.approx(27 / 6)
    assert p["std"] == pytest.approx(np.std(present, ddof=1))
    # sorted 1 2 3 4 7 10: linear interpolation at (n - 1) * q
    assert (p["q25"], p["q50"], p["q75"]) == pytest.approx((2.25, 3.5, 6.25))
    assert (p["q25"], p["q50"], p["q75"]) == pytest.approx(
        tuple(np.quantile(present, [0.25, 0.5, 0.75])))
    assert (p["min"], p["max"]) == (1.0, 10.0)
    assert p["top"] is None and p["levels"] is None


def test_std_uses_ddof_1_and_is_none_for_one_value():
    p = column_profile(pd.Series([2, 4], dtype="int64"))
    assert p["std"] == pytest.approx(math.sqrt(2))  # ((2-3)^2 + (4-3)^2) / (2-1)
    assert column_profile(pd.Series([5.0, None]))["std"] is None


def test_infinite_values_are_reported_as_missing_statistics():
    p = column_profile(pd.Series([1.0, np.inf, 3.0]))
    assert p["mean"] is None and p["max"] is None and p["std"] is None
    assert p["min"] == 1.0 and p["q25"] == 2.0  # interpolated between 1 and 3


def test_an_all_missing_numeric_column_has_no_statistics():
    p = column_profile(pd.Series([np.nan, np.nan]))
    assert p["dtype"] == "numeric" and p["missing_share"] == 1.0 and p["n_unique"] == 0
    assert all(p[k] is None for k in ("mean", "std", "min", "q25", "q50", "q75", "max"))


def test_top_shares_count_missing_rows_in_the_denominator():
    series = pd.Series(["b", "a", "b", None, "c", "b", "a", None, "d", "e", "f"])
    p = column_profile(series)
    assert p["dtype"] == "categorical" and p["missing_share"] == 2 / 11
    assert p["top"]["b"] == 3 / 11 and p["top"]["a"] == 2 / 11
    assert len(p["top"]) == TOP_LEVELS == 5
    assert sum(p["levels"].values()) == 9 and p["levels"]["f"] == 1  # every level kept here
    assert p["mean"] is None and p["q50"] is None


def test_levels_are_capped_at_the_most_frequent():
    # level i appears i + 1 times for the first 1,200 levels (distinct counts)
    codes = np.repeat(np.arange(MAX_LEVELS + 200), np.arange(MAX_LEVELS + 200) + 1)
    p = column_profile(pd.Series([f"L{i}" for i in codes]))
    assert len(p["levels"]) == MAX_LEVELS
    kept = {f"L{i}" for i in range(200, MAX_LEVELS + 200)}  # the 200 rarest are dropped
    assert set(p["levels"]) == kept
    assert p["levels"][f"L{MAX_LEVELS + 199}"] == MAX_LEVELS + 200
    assert list(p["top"]) == [f"L{MAX_LEVELS + 199 - k}" for k in range(TOP_LEVELS)]
    assert p["n_unique"] == MAX_LEVELS + 200  # the count is not capped


def test_booleans_and_datetimes():
    flags = column_profile(pd.Series([True, False, True, True]))
    assert flags["dtype"] == "categorical" and flags["top"] == {"True": 0.75, "False": 0.25}
    stamps = column_profile(pd.Series(pd.to_datetime(["2024-01-01", None, "2024-01-03"])))
    assert stamps["dtype"] == "datetime" and stamps["missing_share"] == pytest.approx(1 / 3)
    assert stamps["mean"] is None and stamps["levels"] is None


def test_batch_profile_has_one_row_per_column_in_order():
    frame = pd.DataFrame({"x": [1.0, 2.0], "c": ["u", "v"], 3: [0, 0]})
    rows = batch_profile(frame)
    assert [r["column"] for r in rows] == ["x", "c", "3"]
    assert [r["dtype"] for r in rows] == ["numeric", "categorical", "numeric"]
    assert rows[0]["mean"] == 1.5 and rows[1]["top"] == {"u": 0.5, "v": 0.5}
