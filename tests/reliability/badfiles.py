"""A corpus of malformed and hostile input files, built from real rows of the demo data.

Each case is a function that writes one file from a table of real rows (text, as a
user's CSV holds them) and declares the outcome a careful user should get:

- ``predict``: exit code 0 and a complete output with one finite prediction per row;
  ``same_as`` names a case whose predictions must be identical row for row (the
  change does not touch what the model reads) and ``check`` adds case-specific
  assertions (e.g. the route of the altered rows);
- ``error``: a non-zero exit code and one ``error: ...`` line holding every word of
  ``says`` (case-insensitive), nothing written.

``INFERENCE`` are files given to ``inference``; ``UPDATE`` are files arriving in an
inbox source, where the outcomes are ``ingest`` (the batch is catalogued),
``gate`` (catalogued and quarantined by the quality gate) or ``refuse`` (the file is
copied to the quarantine with its reason, nothing catalogued).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

Build = Callable[[pd.DataFrame, Path], Path]
Check = Callable[[pd.DataFrame, pd.DataFrame], None]  # (output, clean output)

NUMERIC = ["month", "day", "dep_time", "sched_dep_time", "dep_delay", "sched_arr_time",
           "distance", "hour", "minute"]


@dataclass(frozen=True)
class Case:
    name: str
    build: Build
    outcome: str
    says: tuple[str, ...] = ()
    same_as: str | None = None
    check: Check | None = None
    note: str = ""  # why this outcome is the right one (shown in docs/reliability.md)


@dataclass
class Corpus:
    cases: list[Case] = field(default_factory=list)

    def add(self, name: str, outcome: str, note: str, *, says: tuple[str, ...] = (),
            same_as: str | None = None, check: Check | None = None) -> Callable[[Build], Build]:
        def register(build: Build) -> Build:
            self.cases.append(Case(name, build, outcome, says, same_as, check, note))
            return build
        return register

    def __getitem__(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)


def csv_file(frame: pd.DataFrame, path: Path, **options: object) -> Path:
    frame.to_csv(path, index=False, **options)  # type: ignore[call-overload]
    return path


def routed(rows: slice, reason: str) -> Check:
    """The altered rows went to the fallback for ``reason``; the others are unchanged."""
    def check(out: pd.DataFrame, clean: pd.DataFrame) -> None:
        reasons = out["route_reason"].iloc[rows]
        assert reasons.str.startswith(reason).all(), reasons.tolist()
        rest = np.r_[0:rows.start, rows.stop:len(out)]
        # equal up to rounding: the champion now predicts a different set of rows at once
        np.testing.assert_allclose(out["predict"].astype(float).to_numpy()[rest],
                                   clean["predict"].astype(float).to_numpy()[rest], rtol=1e-12)
    return check


# -- inference ----------------------------------------------------------------------------

INFERENCE = Corpus()
add = INFERENCE.add


@add("clean", "predict", "the reference: real rows as the source wrote them")
def _clean(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base, stem.with_suffix(".csv"))


@add("extra_columns", "predict", "columns the model does not read (some with non-ASCII "
     "names) are carried through", same_as="clean")
def _extra(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.assign(notes="checked, ok", score=np.arange(len(base)).astype(str), blank="",
                        **{"größe": "1", "✈ vol": "x"})
    return csv_file(frame, stem.with_suffix(".csv"))


@add("line_break_in_a_column_name", "predict", "a quoted header cell on two lines (as "
     "Excel writes a wrapped header)", same_as="clean")
def _header_break(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base.assign(**{"departure\nnotes": "ok"}), stem.with_suffix(".csv"))


@add("reordered_columns", "predict", "columns are found by name, not position",
     same_as="clean")
def _reordered(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base[base.columns[::-1]], stem.with_suffix(".csv"))


@add("5000_extra_columns", "predict", "a very wide file: only the model's columns are read",
     same_as="clean")
def _wide(base: pd.DataFrame, stem: Path) -> Path:
    extra = np.random.default_rng(0).integers(0, 1000, size=(len(base), 5000)).astype(str)
    wide = pd.DataFrame(extra, columns=[f"x{i:04d}" for i in range(5000)], index=base.index)
    return csv_file(pd.concat([base, wide], axis=1), stem.with_suffix(".csv"))


@add("utf8_bom", "predict", "a byte-order mark (Excel's 'CSV UTF-8') is not part of a name",
     same_as="clean")
def _bom(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base, stem.with_suffix(".csv"), encoding="utf-8-sig")


@add("crlf_line_ends", "predict", "Windows line ends", same_as="clean")
def _crlf(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base, stem.with_suffix(".csv"), lineterminator="\r\n")


@add("every_field_quoted", "predict", "quoted numbers are numbers", same_as="clean")
def _quoted(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base, stem.with_suffix(".csv"), quoting=csv.QUOTE_ALL)


@add("numbers_written_differently", "predict", "' 517 ', '5.170000e+02', '+517': the "
     "same numbers", same_as="clean")
def _numbers(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    for i, column in enumerate(NUMERIC):
        values = frame[column]
        frame[column] = [v if v == "" else (f" {v}  ", f"{float(v):e}", f"+{v}" if not
                                            v.startswith("-") else v)[i % 3] for v in values]
    return csv_file(frame, stem.with_suffix(".csv"))


@add("parquet", "predict", "typed columns in Parquet", same_as="clean")
def _parquet(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column].replace("", None), errors="raise")
    path = stem.with_suffix(".parquet")
    frame.to_parquet(path, index=False)
    return path


def _all_one_prediction(out: pd.DataFrame, clean: pd.DataFrame) -> None:
    assert (out["route_reason"] == "missing").all()
    assert out["predict"].astype(float).nunique() == 1  # identical (empty) rows


@add("all_missing", "predict", "every feature empty: the fallback answers every row",
     check=_all_one_prediction)
def _all_missing(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base.map(lambda _: ""), stem.with_suffix(".csv"))


MARKERS = ["NA", "N/A", "null", "NaN", "None", "nan", "NULL", "#N/A", "n/a", "<NA>"]


@add("empty_cells", "predict", "numbers missing in ten rows (the twin of missing_markers)")
def _empty_cells(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[:10], ["dep_delay", "distance", "dep_time"]] = ""
    return csv_file(frame, stem.with_suffix(".csv"))


@add("missing_markers", "predict", "NA, null, N/A... are missing values, as when training "
     "reads the source", same_as="empty_cells")
def _markers(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    for column in ["dep_delay", "distance", "dep_time"]:
        frame.loc[frame.index[:10], column] = MARKERS
    return csv_file(frame, stem.with_suffix(".csv"))


@add("unseen_categories", "predict", "levels never seen in training go to the fallback",
     check=routed(slice(0, 6), "unseen_category:"))
def _unseen(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[:2], "carrier"] = "ZZ"
    frame.loc[frame.index[2:4], "dest"] = "Ünïcødé ✈"
    frame.loc[frame.index[4:6], "origin"] = "123"
    return csv_file(frame, stem.with_suffix(".csv"))


@add("infinity", "predict", "±inf is out of any range: the fallback answers",
     check=routed(slice(0, 4), "out_of_range:dep_delay"))
def _infinity(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[:4], "dep_delay"] = ["inf", "-inf", "Infinity", "-Infinity"]
    return csv_file(frame, stem.with_suffix(".csv"))


@add("huge_floats", "predict", "1e308 and the largest double are out of range: the fallback "
     "answers", check=routed(slice(0, 3), "out_of_range:distance"))
def _huge(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[:3], "distance"] = ["1e308", "-1e308", "1.7976931348623157e308"]
    return csv_file(frame, stem.with_suffix(".csv"))


@add("embedded_newlines", "predict", "quoted values holding line breaks stay one value",
     check=routed(slice(0, 3), "unseen_category:dest"))
def _newlines(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()  # dest: tailnum is identifier-like, an unseen one is not unusual
    frame.loc[frame.index[:3], "dest"] = ["N1\nN2", "line\r\nbreak", "\n"]
    return csv_file(frame, stem.with_suffix(".csv"))


@add("lone_carriage_returns", "predict", "a value holding a lone \\r (an old Mac line end) "
     "must come back quoted, or readers split the row there",
     check=routed(slice(0, 2), "unseen_category:dest"))
def _carriage_returns(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[:2], "dest"] = ["N1\rN2", "\r"]
    # with \r\n line ends pandas quotes a value holding \r (with \n it leaves it bare)
    return csv_file(frame, stem.with_suffix(".csv"), lineterminator="\r\n")


@add("hostile_strings", "predict", "commas and quotes in quoted values, NUL and ESC "
     "bytes, a 100,000-character value", check=routed(slice(0, 5), "unseen_category:dest"))
def _hostile(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[:5], "dest"] = ['N,1"2', '"", ,', "N\x00X", "\x1b[31mred\x07",
                                             "N" * 100_000]
    return csv_file(frame, stem.with_suffix(".csv"))


@add("offsets_same_instants", "predict", "the same instants written in New York time "
     "(-05:00)", same_as="clean")
def _offsets(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    times = pd.to_datetime(frame["time_hour"], utc=True).dt.tz_convert("America/New_York")
    frame["time_hour"] = times.map(lambda t: t.isoformat())
    return csv_file(frame, stem.with_suffix(".csv"))


@add("future_timestamps", "predict", "dates in 2099: calendar features still computed")
def _future(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame["time_hour"] = frame["time_hour"].str.replace("2013", "2099")
    return csv_file(frame, stem.with_suffix(".csv"))


def _first_row(out: pd.DataFrame, clean: pd.DataFrame) -> None:
    np.testing.assert_allclose(out["predict"].astype(float), clean["predict"].astype(float)[:1],
                               rtol=1e-12)


@add("one_row", "predict", "a single row", check=_first_row)
def _one_row(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base.head(1), stem.with_suffix(".csv"))


@add("empty_file", "error", "nothing to read", says=("empty",))
def _empty(base: pd.DataFrame, stem: Path) -> Path:
    path = stem.with_suffix(".csv")
    path.write_bytes(b"")
    return path


@add("header_only", "error", "a header and no rows", says=("no rows",))
def _header_only(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base.head(0), stem.with_suffix(".csv"))


@add("missing_column", "error", "a feature the model needs is absent",
     says=("lacks", "carrier"))
def _missing(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base.drop(columns=["carrier"]), stem.with_suffix(".csv"))


@add("header_case_and_spaces", "error", "'Carrier' and ' dest ' are not the model's columns; "
     "the error shows the near misses", says=("carrier", "'Carrier'", "' dest '"))
def _near_names(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base.rename(columns={"carrier": "Carrier", "dest": " dest "}),
                    stem.with_suffix(".csv"))


@add("semicolon_delimiter", "error", "a European CSV: one column; the error names the "
     "delimiter", says=("delimiter", "';'"))
def _semicolon(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base, stem.with_suffix(".csv"), sep=";")


@add("text_in_numeric_column", "error", "'12 min' is not a number: column and row named",
     says=("dep_delay", "row 8", "12 min"))
def _text_number(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[7], "dep_delay"] = "12 min"
    return csv_file(frame, stem.with_suffix(".csv"))


@add("decimal_comma", "error", "'3,5' (a decimal comma) is not a number here",
     says=("dep_delay", "3,5"))
def _decimal_comma(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[2], "dep_delay"] = "3,5"
    return csv_file(frame, stem.with_suffix(".csv"))


@add("bad_timestamp", "error", "'yesterday' is not a time", says=("time_hour", "yesterday"))
def _bad_time(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[4], "time_hour"] = "yesterday"
    return csv_file(frame, stem.with_suffix(".csv"))


@add("naive_and_aware_times", "error", "times with and without a UTC offset are ambiguous "
     "(as when the source is read)", says=("time_hour", "naive", "offset"))
def _mixed_zones(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[:5], "time_hour"] = "2013-01-01 10:00:00"
    return csv_file(frame, stem.with_suffix(".csv"))


@add("latin1_text", "error", "not UTF-8: the byte is named with the fix",
     says=("utf-8", "byte"))
def _latin1(base: pd.DataFrame, stem: Path) -> Path:
    frame = base.copy()
    frame.loc[frame.index[:3], "dest"] = "Café"
    return csv_file(frame, stem.with_suffix(".csv"), encoding="latin-1")


@add("binary_garbage", "error", "random bytes named .csv", says=("utf-8",))
def _garbage(base: pd.DataFrame, stem: Path) -> Path:
    path = stem.with_suffix(".csv")
    path.write_bytes(np.random.default_rng(7).bytes(20_000))
    return path


@add("text_named_parquet", "error", "a CSV with a .parquet name",
     says=("cannot read", "as parquet"))
def _csv_as_parquet(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base, stem.with_suffix(".parquet"))


@add("row_with_extra_field", "error", "one row has a field too many",
     says=("expected 18 columns", "got 19"))
def _ragged(base: pd.DataFrame, stem: Path) -> Path:
    path = csv_file(base, stem.with_suffix(".csv"))
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[5] += ",surplus"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@add("duplicate_column_names", "error", "two columns named 'carrier'",
     says=("repeats", "carrier"))
def _duplicate(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(pd.concat([base, base[["carrier"]]], axis=1), stem.with_suffix(".csv"))


@add("predict_column_present", "error", "the input already has the column inference adds",
     says=("predict", "rename"))
def _has_predict(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base.assign(predict="1"), stem.with_suffix(".csv"))


@add("unsupported_extension", "error", "a .json file",
     says=("unsupported extension '.json'", ".csv", ".parquet"))
def _json(base: pd.DataFrame, stem: Path) -> Path:
    path = stem.with_suffix(".json")
    base.to_json(path, orient="records")
    return path


@add("folder_not_file", "error", "a folder given as the file", says=("is a folder",))
def _folder(base: pd.DataFrame, stem: Path) -> Path:
    path = stem.with_suffix(".csv")
    path.mkdir()
    return path


@add("no_such_file", "error", "a path that does not exist", says=("not found",))
def _absent(base: pd.DataFrame, stem: Path) -> Path:
    return stem.with_suffix(".csv")


@add("a_million_repeated_names", "error", "a 2 MB header naming one column '1' a million "
     "times (counted in linear time)", says=("1,000,000 columns", "100,000"))
def _million_repeated(base: pd.DataFrame, stem: Path) -> Path:
    path = stem.with_suffix(".csv")
    path.write_text(",".join(["1"] * 1_000_000) + "\n" + ",".join(["2"] * 1_000_000) + "\n")
    return path


@add("a_million_distinct_names", "error", "a million distinct column names",
     says=("1,000,000 columns",))
def _million_distinct(base: pd.DataFrame, stem: Path) -> Path:
    path = stem.with_suffix(".csv")
    path.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n")
    return path


@add("one_line_of_100_mb", "error", "a 100 MB file on one line: the header is read from its "
     "first 8 MiB only", says=("header",))
def _one_line(base: pd.DataFrame, stem: Path) -> Path:
    path = stem.with_suffix(".csv")
    with path.open("w") as out:
        for _ in range(100):
            out.write("x" * 1_000_000)
    return path


@add("header_cell_of_100_mb", "error", "a header cell of 100 MB after real column names",
     says=("header",))
def _huge_cell(base: pd.DataFrame, stem: Path) -> Path:
    path = stem.with_suffix(".csv")
    with path.open("w") as out:
        out.write(",".join(base.columns) + ',"')
        for _ in range(100):
            out.write("y" * 1_000_000)
        out.write('"\n')
    return path


@add("fifo", "error", "a named pipe would block the reader forever", says=("not a regular file",))
def _fifo(base: pd.DataFrame, stem: Path) -> Path:
    path = stem.with_suffix(".csv")
    os.mkfifo(path)
    return path


@add("symlink_to_dev_zero", "error", "a .csv link to an endless device",
     says=("not a regular file", "symlink"))
def _dev_zero(base: pd.DataFrame, stem: Path) -> Path:
    path = stem.with_suffix(".csv")
    path.symlink_to("/dev/zero")
    return path


@add("line_break_in_the_file_name", "predict", "the printed output path stays one line",
     same_as="clean")
def _newline_name(base: pd.DataFrame, stem: Path) -> Path:
    return csv_file(base, stem.with_name(stem.name + "\nsecond line").with_suffix(".csv"))


# -- update (files arriving in an inbox) --------------------------------------------------

UPDATE = Corpus()
upd = UPDATE.add


@upd("good_day", "ingest", "the next day as the source writes it")
def _u_good(day: pd.DataFrame, stem: Path) -> Path:
    return csv_file(day, stem.with_suffix(".csv"))


@upd("empty_file", "refuse", "nothing to read", says=("empty",))
def _u_empty(day: pd.DataFrame, stem: Path) -> Path:
    return _empty(day, stem)


@upd("header_only", "refuse", "a header and no rows", says=("no rows",))
def _u_header(day: pd.DataFrame, stem: Path) -> Path:
    return csv_file(day.head(0), stem.with_suffix(".csv"))


@upd("missing_column", "refuse", "a column earlier batches had", says=("carrier",))
def _u_missing(day: pd.DataFrame, stem: Path) -> Path:
    return csv_file(day.drop(columns=["carrier"]), stem.with_suffix(".csv"))


@upd("text_in_numeric_column", "refuse", "'12 min' in a numeric column: column and row "
     "named", says=("dep_delay", "12 min"))
def _u_text(day: pd.DataFrame, stem: Path) -> Path:
    return _text_number(day, stem)


@upd("all_missing", "gate", "every value but the time empty: the gate quarantines it",
     says=("missing_target_share",))
def _u_all_missing(day: pd.DataFrame, stem: Path) -> Path:
    frame = day.map(lambda _: "").assign(time_hour=day["time_hour"])
    return csv_file(frame, stem.with_suffix(".csv"))


@upd("infinity_and_huge_floats", "ingest", "inf and 1e308 in features are not usable "
     "numbers: cleaning makes them missing (type violations), training goes on")
def _u_inf(day: pd.DataFrame, stem: Path) -> Path:
    frame = day.copy()
    frame.loc[frame.index[:10], "dep_delay"] = ["inf", "-inf"] * 5
    frame.loc[frame.index[10:20], "distance"] = ["1e308", "-1e308"] * 5
    frame.loc[frame.index[20:22], "arr_delay"] = ["inf", "1e308"]
    return csv_file(frame, stem.with_suffix(".csv"))


@upd("latin1_text", "refuse", "not UTF-8: names csv.encoding", says=("utf-8", "csv.encoding"))
def _u_latin1(day: pd.DataFrame, stem: Path) -> Path:
    return _latin1(day, stem)


@upd("utf8_bom", "ingest", "a byte-order mark")
def _u_bom(day: pd.DataFrame, stem: Path) -> Path:
    return _bom(day, stem)


@upd("semicolon_delimiter", "refuse", "one column: names the delimiter",
     says=("delimiter", "';'"))
def _u_semicolon(day: pd.DataFrame, stem: Path) -> Path:
    return _semicolon(day, stem)


@upd("embedded_newlines", "ingest", "quoted line breaks inside values")
def _u_newlines(day: pd.DataFrame, stem: Path) -> Path:
    return _newlines(day, stem)


@upd("naive_and_aware_times", "refuse", "times with and without offsets",
     says=("time_hour", "naive"))
def _u_zones(day: pd.DataFrame, stem: Path) -> Path:
    return _mixed_zones(day, stem)


@upd("bad_timestamp", "refuse", "'yesterday' is named as unparseable (not as a naive time)",
     says=("time_hour", "unparseable", "yesterday"))
def _u_bad_time(day: pd.DataFrame, stem: Path) -> Path:
    return _bad_time(day, stem)


@upd("row_with_extra_field", "refuse", "a row with a field too many", says=("line",))
def _u_ragged(day: pd.DataFrame, stem: Path) -> Path:
    return _ragged(day, stem)


@upd("future_timestamps", "ingest", "a day in 2099 is data (the stream's time may be "
     "simulated); it is catalogued as the next window")
def _u_future(day: pd.DataFrame, stem: Path) -> Path:
    return _future(day, stem)


@upd("5000_extra_columns", "ingest", "a very wide file is ingested; later files without "
     "those columns are still accepted")
def _u_wide(day: pd.DataFrame, stem: Path) -> Path:
    return _wide(day, stem)
