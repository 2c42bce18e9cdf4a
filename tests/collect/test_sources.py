"""Readers of the collect stage: CSV options, Excel sheets, SQL tables and queries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from conveyor.collect.sources import read_file, read_table
from conveyor.config import CsvOptions, TableConfig
from conveyor.errors import SourceError


def test_csv_delimiter_and_decimal_mark(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("t;price;name\n2024-01-01;3,5;a\n2024-01-02;-1,25;b\n", encoding="utf-8")
    frame = read_file(path, "csv", CsvOptions(delimiter=";", decimal=","))
    assert list(frame.columns) == ["t", "price", "name"]
    assert frame["price"].tolist() == [3.5, -1.25]
    # with the default decimal mark the same column is text
    assert read_file(path, "csv", CsvOptions(delimiter=";"))["price"].tolist() == ["3,5", "-1,25"]


def test_a_tsv_file_is_read_with_tabs_whatever_the_delimiter(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("a\tb\n1\t2,5\n", encoding="utf-8")
    frame = read_file(path, "csv", CsvOptions(delimiter=","))
    assert frame.to_dict("list") == {"a": [1], "b": ["2,5"]}


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "cp1252"])
def test_csv_encoding(tmp_path, encoding):
    path = tmp_path / "cities.csv"
    path.write_bytes("city,temp\nZürich,1\nMálaga,2\n".encode(encoding))
    frame = read_file(path, "csv", CsvOptions(encoding=encoding))
    assert frame["city"].tolist() == ["Zürich", "Málaga"]
    assert frame["temp"].tolist() == [1, 2]


def test_excel_sheet_by_name_and_by_index(tmp_path):
    path = tmp_path / "book.xlsx"
    first = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    second = pd.DataFrame({"tailnum": ["N1", "N2", "N3"], "seats": [100, 50, 8]})
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        first.to_excel(writer, sheet_name="first", index=False)
        second.to_excel(writer, sheet_name="planes", index=False)
    assert read_file(path, "excel", CsvOptions()).to_dict("list") == first.to_dict("list")
    for sheet in ("planes", 1):
        frame = read_file(path, "excel", CsvOptions(), sheet=sheet)
        assert frame.to_dict("list") == second.to_dict("list")
    with pytest.raises(SourceError, match="cannot read file .* as excel"):
        read_file(path, "excel", CsvOptions(), sheet="nope")


@pytest.fixture
def readings_db(tmp_path):
    path = tmp_path / "r.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    pd.DataFrame({"sensor": ["a", "b", "b", "a"], "value": [1.5, 3.0, 2.0, 4.0]}).to_sql(
        "readings", engine, index=False)
    engine.dispose()
    return path


def test_sql_table_and_query_on_sqlite(readings_db):
    table = read_table(TableConfig(kind="sql", path=readings_db, table="readings"))
    assert table.to_dict("list") == {"sensor": ["a", "b", "b", "a"], "value": [1.5, 3.0, 2.0, 4.0]}
    query = "SELECT sensor, value * 2 AS doubled FROM readings WHERE sensor = 'b' ORDER BY value"
    for located in ({"path": readings_db}, {"url": f"sqlite:///{readings_db}"}):
        frame = read_table(TableConfig(kind="sql", query=query, **located))
        assert frame.to_dict("list") == {"sensor": ["b", "b"], "doubled": [4.0, 6.0]}


def test_sql_errors_name_the_source(readings_db, tmp_path):
    with pytest.raises(SourceError, match=r"cannot read sql source sqlite:///.*r\.sqlite"):
        read_table(TableConfig(kind="sql", path=readings_db, table="nope"))
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(SourceError, match="SQLite file .*missing.sqlite' not found"):
        read_table(TableConfig(kind="sql", path=missing, table="readings"))
    assert not missing.exists()  # no empty database was created by looking
    with pytest.raises(ValidationError, match="exactly one of 'table' or 'query'"):
        TableConfig(kind="sql", path=readings_db, table="readings", query="SELECT 1")


def test_a_failing_query_names_the_source(readings_db):
    with pytest.raises(SourceError, match="cannot read sql source .*query"):
        read_table(TableConfig(kind="sql", path=readings_db, query="SELECT nope FROM readings"))


# Text values start with a letter so that CSV's type inference keeps them text (a value
# such as "1" or "NA" would come back as a number or missing: that is CSV, not the reader).
# A lone "\r" is left out: pandas' writer does not quote it, so no reader could tell it
# from a line end; "\r\n" inside a value is quoted and kept.
pieces = [*'",;\t\n|\' aé€日本\U0001f600\\x', "\r\n", '""']
special = st.lists(st.sampled_from(pieces), max_size=10).map("".join)
texts = st.builds(lambda head, tail: head + tail, st.sampled_from("abcÉж"), special)
floats = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), floats, texts),
                     min_size=1, max_size=15),
       delimiter=st.sampled_from([",", ";", "\t", "|"]))
def test_csv_round_trip_keeps_values(tmp_path_factory, rows, delimiter):
    frame = pd.DataFrame(rows, columns=["count", "reading", "label"])
    path = tmp_path_factory.mktemp("rt") / "t.csv"
    frame.to_csv(path, sep=delimiter, index=False, encoding="utf-8")
    back = read_file(path, "csv", CsvOptions(delimiter=delimiter))
    assert list(back.columns) == ["count", "reading", "label"]
    assert back["count"].tolist() == frame["count"].tolist()
    np.testing.assert_array_equal(back["reading"].to_numpy(float),
                                  frame["reading"].to_numpy(float))
    assert back["label"].tolist() == frame["label"].tolist()
