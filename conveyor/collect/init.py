"""``conveyor init``: a first, commented ``conveyor.yaml`` inferred from a data file.

A user with a table conveyor has never seen runs ``conveyor init sales.csv
--target revenue`` and gets a config that ``conveyor update`` runs on without
edits. Inference looks at a sample (the first :data:`SAMPLE_ROWS` rows: CSV via
``nrows``, Parquet by row groups, Excel via ``nrows``) and, where cheap, at the
time column of the whole file (CSV: that column only; Parquet: that column
only; Excel: the sample). The rules, in order:

source
    The kind comes from the extension (``.csv .tsv .txt`` CSV, ``.parquet``,
    ``.xlsx``). A CSV's delimiter is sniffed among comma, semicolon, tab and
    pipe (the one that splits the first lines into the most, equally wide,
    fields); its encoding is UTF-8 or else cp1252 / latin-1; with a
    non-comma delimiter, text columns that are all numbers written with a
    decimal comma (``3,14``) make the decimal mark ``,``. Only options that
    differ from the defaults are written.
time column
    ``--time``, or the one column that holds dates: a datetime column, or a
    text column whose sample parses with ``pd.to_datetime(format="mixed")``
    for at least 95 % of its non-missing values (and is not just numbers).
    Among several, the one whose name has a word like time, date or
    timestamp; none, or still several: an error that lists the candidates and
    says to pass ``--time``. The chosen column must parse as conveyor parses
    it on update (:func:`conveyor.collect.sources.parse_time`).
task
    ``--task``, or: a text or boolean target is classification; an integer
    target (integer-valued, missing values allowed) with at most 10 distinct
    values is classification; anything else numeric is regression.
excluded columns
    Never the target or the time column. A column is excluded when at least
    95 % of it is missing, when it is constant, when it is an identifier
    (a different value in every row of a sample of 20+ rows, not a float:
    text, or integers that are sequential, dense, or named like ``id``/
    ``key``), or when it is another date/time column (as text it would be a
    category with a level per value). Each reason is written as a comment.
    A text column that is numbers but for a few stray values (which stops an
    update) is listed under ``columns.categorical`` instead, with a comment.
stream
    The pandas offset among :data:`WINDOWS` whose non-empty windows number
    20 or more, closest to 50, with a median of at least
    :data:`MIN_BATCH_ROWS` rows each (ties: the wider window). When no window
    qualifies (a short time span), row-count batches (``stream.rows``) of
    about a fiftieth of the rows, at least :data:`MIN_BATCH_ROWS`.
    ``initial_batches`` is 2, or as many as the first
    :data:`INITIAL_ROWS` rows need, but at most half of the batches.
    ``quality.min_rows`` is 20, lowered to half of a small batch so that
    ordinary batches are not quarantined for their size.
metric
    The library's default selection metric for the task
    (:attr:`conveyor.config.Config.metric`).
families and features
    The library defaults (no feature engineering). A default grid parameter
    that the task's estimator does not take is fitted to it and written with
    a comment (the linear grid's Ridge ``alpha`` becomes LogisticRegression's
    ``C = 1 / alpha`` for classification); otherwise ``train`` is not written.

The config is validated with :func:`conveyor.config.parse_config` and against
the sample's column roles before it is written, atomically, and never over an
existing file unless ``force``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import yaml

from conveyor.collect.sources import FILE_KINDS, NUMERIC_MAJORITY, parse_time
from conveyor.collect.stream import window_width
from conveyor.config import Config, QualityConfig, default_families, parse_config
from conveyor.errors import ConveyorError, InputError, SourceError
from conveyor.io.atomic import atomic_write_text
from conveyor.io.tables import TableRead, Wording, read_user_table
from conveyor.io.userfiles import check_regular_file
from conveyor.prepare.roles import resolve_roles
from conveyor.train.families import build_estimator

log = logging.getLogger(__name__)

SAMPLE_ROWS = 200_000
DELIMITERS = (",", ";", "\t", "|")
ENCODINGS = ("utf-8", "cp1252", "latin-1")
TIME_SHARE = 0.95
MISSING_SHARE = 0.95
TIME_WORDS = ("time", "date", "timestamp", "datetime")
ID_WORDS = {"id", "uuid", "guid", "key", "index", "idx", "no", "nr", "number"}
MIN_ID_ROWS = 20
MAX_CLASS_CODES = 10
WINDOWS = ("1h", "6h", "12h", "1D", "7D", "14D", "30D")
MIN_BATCHES, TARGET_BATCHES = 20, 50
DEFAULT_MIN_ROWS = QualityConfig().min_rows  # below it a batch is quarantined
MIN_BATCH_ROWS = DEFAULT_MIN_ROWS  # a typical window must not be quarantined for its size
INITIAL_ROWS = 200
_DECIMAL_COMMA = re.compile(r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+$")


@dataclass(frozen=True)
class Sample:
    """The first rows of a data file and how they were read."""

    path: Path
    kind: str
    frame: pd.DataFrame
    truncated: bool
    options: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


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


@dataclass(frozen=True)
class InitResult:
    """What ``conveyor init`` inferred and wrote."""

    path: Path
    config: dict[str, Any]
    text: str
    rows_sampled: int
    total_rows: int
    time_column: str
    task: str
    task_reason: str
    stream: StreamPlan
    excluded: dict[str, str]

    def summary(self) -> str:
        """Return the one-line summary the CLI prints."""
        excluded = ", ".join(f"{c} ({r.split(':')[0]})" for c, r in self.excluded.items())
        return (f"sampled {self.rows_sampled:,} of {self.total_rows:,} rows; time column "
                f"'{self.time_column}'; task {self.task}; {self.stream.describe()}; "
                f"excluded: {excluded or 'none'}")


# -- reading a sample ---------------------------------------------------------------------


def source_kind(path: Path) -> str:
    """Return the reader kind of a data file from its extension."""
    try:
        return FILE_KINDS[path.suffix.lower()]
    except KeyError:
        raise InputError(f"cannot tell the format of '{path}' from its extension; use one of "
                         f"{', '.join(sorted(FILE_KINDS))}") from None


def sniff_delimiter(text: str) -> str:
    """Return the delimiter that splits the first lines into the most, equally wide, fields.

    >>> sniff_delimiter("a;b;c\\n1;2,5;3\\n")
    ';'
    >>> sniff_delimiter('x,"y;z"\\n1,2\\n')
    ','
    """
    best, best_width = ",", 1
    for delimiter in DELIMITERS:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r][:50]
        if not rows:
            continue
        width = len(rows[0])
        if width > best_width and sum(len(r) == width for r in rows) >= 0.9 * len(rows):
            best, best_width = delimiter, width
    return best


def _head_text(path: Path, size: int = 1 << 16) -> tuple[str, str]:
    """Return the first complete lines of a text file and the encoding that decodes them."""
    with open(path, "rb") as handle:
        data = handle.read(size)
    if len(data) == size and b"\n" in data:
        data = data[: data.rindex(b"\n") + 1]  # a newline never splits a UTF-8 character
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding).removeprefix("\ufeff"), encoding
        except UnicodeDecodeError:
            continue
    raise InputError(f"file '{path}' is not text in {', '.join(ENCODINGS)}")  # pragma: no cover


def _decimal_comma(frame: pd.DataFrame) -> bool:
    """Return whether some text column is all numbers written with a decimal comma."""
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
            continue
        present = values.dropna().astype(str).str.strip()
        if len(present) and present.str.match(_DECIMAL_COMMA).mean() >= TIME_SHARE:
            return True
    return False


SAMPLE_FILE = Wording(
    InputError, "data file", empty="file '{path}' is empty",
    unreadable="cannot read '{path}' as {kind}: {reason}", undecodable=None,
    kinds={"csv": "CSV", "parquet": "Parquet", "excel": "an Excel workbook"})


def _read_csv(path: Path, options: dict[str, Any], rows: int | None = None,
              columns: list[str] | None = None) -> pd.DataFrame:
    read = TableRead(options["delimiter"], options["encoding"], options["decimal"], rows=rows,
                     columns=columns)
    return read_user_table(path, "csv", read, SAMPLE_FILE)


def read_sample(path: Path, max_rows: int = SAMPLE_ROWS) -> Sample:
    """Read the first ``max_rows`` rows of a data file, sniffing CSV options."""
    kind = source_kind(path)
    check_regular_file(path, "data file")
    notes: dict[str, str] = {}
    options: dict[str, Any] = {}
    total: int | None = None
    if kind == "csv":
        text, head_encoding = _head_text(path)
        if not text.strip():
            raise InputError(f"file '{path}' is empty")
        delimiter = "\t" if path.suffix.lower() == ".tsv" else sniff_delimiter(text)
        options = {"delimiter": delimiter, "encoding": head_encoding, "decimal": "."}
        frame = None
        for encoding in ENCODINGS[ENCODINGS.index(head_encoding):]:
            options["encoding"] = encoding
            try:
                frame = _read_csv(path, options, max_rows)
                break
            except UnicodeDecodeError:  # the head decoded, a later line does not
                continue
        assert frame is not None  # latin-1 decodes any byte
        if delimiter != "," and _decimal_comma(frame):
            options["decimal"] = ","
            frame = _read_csv(path, options, max_rows)
        notes["source.csv"] = "sniffed from the file's first lines"
    else:
        frame = read_user_table(path, kind, TableRead(rows=max_rows), SAMPLE_FILE)
        if kind == "parquet":
            total = pq.ParquetFile(path).metadata.num_rows
    if frame.empty:
        raise InputError(f"file '{path}' has no data rows")
    frame.columns = [str(c) for c in frame.columns]
    truncated = total > len(frame) if total is not None else len(frame) >= max_rows
    return Sample(path, kind, frame, truncated, options, notes)


def read_times(sample: Sample, column: str) -> pd.Series:
    """Return the time column of the whole file (of the sample for Excel), parsed to UTC."""
    where = f"'{sample.path}'"
    frame = sample.frame
    if sample.truncated and sample.kind == "csv":
        frame = _read_csv(sample.path, sample.options, columns=[column])
    elif sample.truncated and sample.kind == "parquet":
        frame = pq.read_table(sample.path, columns=[column]).to_pandas()
    elif sample.truncated:
        log.info("the time span is taken from the first %d rows of %s", len(frame), where)
    if pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
        raise InputError(f"time column '{column}' of {where} holds numbers, not dates or times; "
                         "write it as text such as 2024-05-01T10:00:00Z, or pass another --time")
    try:
        return parse_time(frame, column, where)
    except SourceError as exc:
        raise InputError(str(exc)) from None


# -- inference (pure) ---------------------------------------------------------------------


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if w]


def _named_like_time(name: str) -> bool:
    return any(w in TIME_WORDS or w.endswith(("time", "date", "timestamp"))
               or w.startswith(("time", "date")) for w in _words(name))


def _is_text(values: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(values) or values.dtype == object


def time_candidates(frame: pd.DataFrame) -> list[str]:
    """Return the columns that hold dates or times, in table order.

    >>> time_candidates(pd.DataFrame({"when": ["2024-01-01 10:00", "2024-01-02"],
    ...                               "code": ["12", "13"], "x": [1.0, 2.0]}))
    ['when']
    """
    found = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            if values.nunique() > 1:
                found.append(str(column))
            continue
        if not _is_text(values):
            continue
        present = values.dropna().astype(str).str.strip()
        present = present[present != ""].head(1000)
        if present.nunique() < 2 or pd.to_numeric(present, errors="coerce").notna().mean() > 0.5:
            continue
        parsed = pd.to_datetime(present, errors="coerce", utc=True, format="mixed")
        if parsed.notna().mean() >= TIME_SHARE:
            found.append(str(column))
    return found


def find_time_column(frame: pd.DataFrame, target: str, requested: str | None = None) -> str:
    """Return ``requested`` (checked), or the one column that holds the event time."""
    if requested is not None:
        if requested not in frame.columns:
            raise InputError(f"--time '{requested}' is not a column; columns: "
                             f"{', '.join(frame.columns)}")
        if requested == target:
            raise InputError(f"'{requested}' cannot be both the target and the time column")
        return requested
    candidates = [c for c in time_candidates(frame) if c != target]
    if len(candidates) == 1:
        return candidates[0]
    named = [c for c in candidates if _named_like_time(c)]
    if len(named) == 1:
        return named[0]
    if not candidates:
        raise InputError("no time column found: no column holds dates or times in at least "
                         f"{TIME_SHARE:.0%} of its values (candidates: columns "
                         f"{', '.join(c for c in frame.columns if c != target)}); pass --time "
                         "COLUMN")
    raise InputError(f"several columns could be the time column ({', '.join(named or candidates)})"
                     "; pass --time COLUMN to choose one")


def infer_task(values: pd.Series, requested: str | None = None) -> tuple[str, str]:
    """Return the task for a target column and the reason, as printed by the CLI.

    >>> infer_task(pd.Series([0, 1, 1, 0]))
    ('classification', 'integer target with 2 distinct values (at most 10: classes)')
    >>> infer_task(pd.Series([0.5, 1.25, 3.0]))[0]
    'regression'
    """
    name = values.name
    present = values.dropna()
    if present.empty:
        raise InputError(f"target column '{name}' has no values in the sample")
    distinct = int(present.nunique())
    if distinct < 2:
        raise InputError(f"target column '{name}' has a single value ({_show(present.iloc[0])}); "
                         "there is nothing to learn")
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if requested is not None:
        if requested == "regression" and not numeric:
            raise InputError(f"--task regression needs a numeric target; '{name}' holds "
                             f"{values.dtype} values such as {_show(present.iloc[0])}")
        return requested, "as given by --task"
    if not numeric:
        kind = "boolean" if pd.api.types.is_bool_dtype(values) else "text"
        return "classification", f"{kind} target with {distinct} classes"
    if bool((present % 1 == 0).all()) and distinct <= MAX_CLASS_CODES:
        return "classification", (f"integer target with {distinct} distinct values "
                                  f"(at most {MAX_CLASS_CODES}: classes)")
    return "regression", f"numeric target with {distinct:,} distinct values"


def _show(value: Any) -> str:
    """Return a value as a user wrote it: ``'a'``, ``5``, ``2024-01-01 00:00:00``."""
    if hasattr(value, "item") and not isinstance(value, pd.Timestamp):
        value = value.item()
    return repr(value) if isinstance(value, str | int | float | bool) else str(value)


def _identifier(values: pd.Series) -> bool:
    """Whether a column is an identifier: unique per row, not a float measurement."""
    n = len(values)
    if n < MIN_ID_ROWS or values.isna().any() or values.nunique() != n:
        return False
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_float_dtype(values):
        return False
    if _is_text(values):
        return True
    if not pd.api.types.is_integer_dtype(values):
        return False
    span = int(values.max()) - int(values.min()) + 1
    named = bool(set(_words(str(values.name))) & ID_WORDS)
    return named or values.is_monotonic_increasing or values.is_monotonic_decreasing \
        or span <= 2 * n


def excluded_columns(frame: pd.DataFrame, keep: set[str]) -> dict[str, str]:
    """Return the columns to leave out of the features, each with its reason.

    >>> frame = pd.DataFrame({"id": range(30), "k": ["a"] * 30, "x": [1.5, 2.5] * 15})
    >>> excluded_columns(frame, keep=set())
    {'id': 'identifier: a different value in every row', 'k': "constant: always 'a'"}
    """
    times = set(time_candidates(frame))
    out: dict[str, str] = {}
    for column in frame.columns:
        if column in keep:
            continue
        values = frame[column]
        present = values.dropna()
        missing = 1 - len(present) / max(len(values), 1)
        if missing >= MISSING_SHARE:
            out[column] = f"almost empty: {missing:.1%} of values are missing"
        elif present.nunique() <= 1:
            out[column] = f"constant: always {_show(present.iloc[0])}"
        elif _identifier(values):
            out[column] = "identifier: a different value in every row"
        elif column in times:
            out[column] = ("another date/time column: as text it would be a category with a "
                           "level per value")
    return out


def stray_text_columns(frame: pd.DataFrame, skip: set[str]) -> dict[str, str]:
    """Return text columns that are numbers but for a few values, each with a note.

    Such a column stops an update (:func:`conveyor.collect.sources.check_types`)
    unless it is declared categorical.
    """
    out: dict[str, str] = {}
    for column in frame.columns:
        values = frame[column]
        if column in skip or not _is_text(values):
            continue
        present = values.dropna().astype(str).str.strip()
        present = present[present != ""]
        if present.empty:
            continue
        numbers = pd.to_numeric(present, errors="coerce")
        share = float(numbers.notna().mean())
        if NUMERIC_MAJORITY <= share < 1.0:
            example = present[numbers.isna()].iloc[0]
            out[column] = (f"numbers but {int(numbers.isna().sum())} text value(s) such as "
                           f"{example!r}: read as a category; fix the data and remove it from "
                           "this list to use it as a number")
    return out


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


def families_for(task: str, seed: int) -> tuple[dict[str, Any] | None, str]:
    """Return the library's default families with grids the task's estimators take.

    None when the defaults fit as they are (nothing is written). A grid parameter
    the task's estimator lacks is dropped, except the regression ``alpha`` of the
    linear family, which becomes LogisticRegression's ``C = 1 / alpha``.
    """
    families: dict[str, Any] = {}
    changed: list[str] = []
    for name, family in default_families().items():
        valid = build_estimator(name, task, {}, seed).get_params()
        grid: dict[str, list[Any]] = {}
        for key, values in family.grid.items():
            if key in valid:
                grid[key] = list(values)
            elif key == "alpha" and "C" in valid:
                grid["C"] = sorted(1 / v for v in values)
                changed.append(f"{name}: alpha -> C = 1/alpha")
            else:
                changed.append(f"{name}: {key} dropped")
        families[name] = {"enabled": family.enabled, "grid": grid}
    if not changed:
        return None, ""
    return families, (f"the library's default grids, fitted to {task} "
                      f"({'; '.join(changed)})")


def build_config(sample: Sample, source_path: str, target: str, time_column: str, task: str,
                 task_reason: str, excluded: dict[str, str], categorical: dict[str, str],
                 stream: StreamPlan) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the config mapping and its comments (keyed by dotted path).

    ``validate.metric`` is left to the caller: it is the library's default for the
    task, read from the parsed config.
    """
    source: dict[str, Any] = {"kind": sample.kind, "path": source_path,
                              "time_column": time_column}
    notes = {"workspace": "state folder: database, raw batches, models, reports",
             "seed": "seed of every random choice",
             "source.kind": f"from the extension {sample.path.suffix}",
             "source.time_column": "the stream is cut into windows on it",
             "target.task": task_reason,
             "columns.features": "null: every column except target, time and exclude",
             "columns.categorical": "null: text columns are categories, numbers are numbers",
             "quality.min_rows": "a batch with fewer rows is quarantined (kept, not trained on)",
             **sample.notes, **stream.notes}
    defaults = {"delimiter": ",", "encoding": "utf-8", "decimal": "."}
    options = {k: v for k, v in sample.options.items() if defaults.get(k) != v}
    if options:
        source["csv"] = options
    else:
        notes.pop("source.csv", None)
    columns = {"features": None, "exclude": list(excluded),
               "categorical": list(categorical) or None}
    notes.update({f"columns.exclude[{c}]": r for c, r in excluded.items()})
    notes.update({f"columns.categorical[{c}]": r for c, r in categorical.items()})
    if categorical:
        notes["columns.categorical"] = "numeric-looking columns read as categories"
    config = {"workspace": "workspace", "seed": 42, "source": source,
              "target": {"column": target, "task": task}, "columns": columns,
              "stream": stream.section, "quality": {"min_rows": stream.min_rows}}
    families, why = families_for(task, 42)
    if families is not None:
        config["train"] = {"families": families}
        notes["train.families"] = why
    return config, notes


# -- rendering and writing ----------------------------------------------------------------


COMMENT_COLUMN = 30
FLOW_WIDTH = 70  # a section or list without inner comments stays on one line up to this


def _reads_back(text: str, value: str) -> bool:
    try:
        return (yaml.safe_load(f"k: {text}\n") == {"k": value}
                and yaml.safe_load(f"- {text}\n") == [value])
    except yaml.YAMLError:
        return False


def _scalar(value: Any) -> str:
    """Return a value as a YAML flow scalar that reads back as itself after ``key:`` or ``-``."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000)
    text = text.removesuffix("\n...\n").strip()
    if isinstance(value, str) and not _reads_back(text, value):
        text = yaml.safe_dump(value, default_style='"', allow_unicode=True, width=10_000).strip()
    return text


def _line(text: str, note: str | None) -> str:
    if not note:
        return text
    return f"{text.ljust(COMMENT_COLUMN - 1)} # {note}"


def _has_notes(path: str, notes: dict[str, str]) -> bool:
    return any(key.startswith((f"{path}.", f"{path}[")) for key in notes)


def _render(mapping: dict[str, Any], notes: dict[str, str], prefix: str,
            indent: int) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        head = f"{pad}{_scalar(key)}:"
        flow = _scalar(value)
        if isinstance(value, dict | list) and value and (
                _has_notes(path, notes) or (isinstance(value, dict) and indent == 0)
                or len(head) + len(flow) > FLOW_WIDTH):
            if indent == 0 and lines:
                lines.append("")
            lines.append(_line(head, notes.get(path)))
            if isinstance(value, dict):
                lines.extend(_render(value, notes, f"{path}.", indent + 2))
            else:
                lines.extend(_line(f"{pad}  - {_scalar(item)}", notes.get(f"{path}[{item}]"))
                             for item in value)
        else:
            lines.append(_line(f"{head} {flow}", notes.get(path)))
    return lines


def render_config(config: dict[str, Any], notes: dict[str, str], header: str = "") -> str:
    """Return the config as YAML text with a short comment after each inferred value.

    >>> print(render_config({"target": {"column": "y", "task": "regression"},
    ...                      "columns": {"exclude": ["id"]}},
    ...                     {"target.task": "numeric", "columns.exclude[id]": "identifier"}))
    target:
      column: y
      task: regression            # numeric
    <BLANKLINE>
    columns:
      exclude:
        - id                      # identifier
    <BLANKLINE>
    """
    body = "\n".join(_render(config, notes, "", 0))
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return f"{comment}\n{body}\n" if comment else f"{body}\n"


def write_config(path: Path, text: str, force: bool = False) -> Path:
    """Write the config text atomically; refuse to replace a file unless ``force``."""
    if path.exists() and not force:
        raise InputError(f"'{path}' already exists; pass --force to overwrite it")
    if path.is_dir():
        raise InputError(f"'{path}' is a folder; pass --out FILE")
    return atomic_write_text(path, text)


def _relative(data_file: Path, folder: Path) -> str:
    """Return the data file's path as the config holds it: relative to the config's folder
    when they share a folder below the root (the pair can move together), else absolute."""
    try:
        shared = Path(os.path.commonpath([data_file, folder]))
    except ValueError:  # another drive on Windows
        return data_file.as_posix()
    if shared == Path(shared.anchor):
        return data_file.as_posix()
    return Path(os.path.relpath(data_file, folder)).as_posix()


def init_config(data_file: Path, target: str, out: Path, time: str | None = None,
                task: str | None = None, force: bool = False,
                max_rows: int = SAMPLE_ROWS) -> InitResult:
    """Infer a config for ``data_file``, validate it and write it to ``out``."""
    data_file, out = Path(data_file).resolve(), Path(out).resolve()
    if out.exists() and not force:  # fail before reading a large file
        raise InputError(f"'{out}' already exists; pass --force to overwrite it")
    sample = read_sample(data_file, max_rows)
    frame = sample.frame
    if target not in frame.columns:
        raise InputError(f"no target column '{target}' in '{data_file}'; columns: "
                         f"{', '.join(frame.columns)}")
    time_column = find_time_column(frame, target, time)
    times = read_times(sample, time_column)
    if stray_text_columns(frame[[target]], set()):
        raise InputError(f"target column '{target}' is numeric but for a few text values; "
                         "fix them in the data before training on it")
    task, task_reason = infer_task(frame[target], task)
    log.info("time column: %s", time_column)
    log.info("task: %s (%s)", task, task_reason)
    roles = {target, time_column}
    excluded = excluded_columns(frame, keep=roles)
    categorical = stray_text_columns(frame, skip=roles | set(excluded))
    stream = choose_stream(times)
    config, notes = build_config(sample, _relative(data_file, out.parent), target, time_column,
                                 task, task_reason, excluded, categorical, stream)
    metric = _validated(config, out).metric  # the library's default for the task
    config["validate"] = {"metric": metric}
    notes["validate.metric"] = f"the default selection metric for {task}"
    header = (f"conveyor configuration for {data_file.name}, written by `conveyor init`\n"
              f"from {len(frame):,} sampled rows. Every key is documented in "
              "docs/configuration.md;\nsee docs/your-data.md for what to check and edit. "
              "Paths are relative to this file.")
    text = render_config(config, notes, header)
    if yaml.safe_load(text) != config:
        raise ConveyorError("conveyor init rendered a config that does not read back as "
                            "built; please report this with the data file's header")
    parsed = _validated(yaml.safe_load(text), out)
    try:
        resolve_roles(frame, parsed.columns, target, time_column)
    except ConveyorError as exc:
        raise InputError(f"the inferred config leaves no usable features: {exc}") from None
    if (out.parent / "workspace").exists():
        log.warning("%s already exists: `update` continues from the batches and models kept "
                    "there; delete it to start the stream over",
                    out.parent / "workspace")
    write_config(out, text, force)
    return InitResult(out, config, text, len(frame), len(times), time_column,
                      task, task_reason, stream, excluded)


def _validated(data: dict[str, Any], out: Path) -> Config:
    try:
        return parse_config(data, out.parent)
    except ConveyorError as exc:
        raise ConveyorError(f"conveyor init built an invalid config ({exc}); please report "
                            "this with the data file's header") from None
