"""Column roles for ``conveyor init``: the time column, the task, the excluded columns.

Pure functions of a sample frame; each returns its answer with the reason
written as a comment in the config.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from conveyor.collect.sources import NUMERIC_MAJORITY
from conveyor.errors import InputError

TIME_SHARE = 0.95
MISSING_SHARE = 0.95
TIME_WORDS = ("time", "date", "timestamp", "datetime")
ID_WORDS = {"id", "uuid", "guid", "key", "index", "idx", "no", "nr", "number", "row",
            "rownames", "rowname", "rownum"}
PLAUSIBLE_YEARS = (1700, 2300)
UNIQUE_TEXT = 0.5  # a text column with more distinct values than this share of rows
MIN_ID_ROWS = 20
MAX_CLASS_CODES = 10


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if w]


def _named_like_time(name: str) -> bool:
    return any(w in TIME_WORDS or w.endswith(("time", "date", "timestamp"))
               or w.startswith(("time", "date")) for w in _words(name))


def is_text(values: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(values) or values.dtype == object


def time_candidates(frame: pd.DataFrame) -> list[str]:
    """Return the columns that hold dates or times, in table order.

    >>> time_candidates(pd.DataFrame({"when": ["2024-01-01 10:00", "2024-01-02"],
    ...                               "code": ["12", "13"], "x": [1.0, 2.0]}))
    ['when']
    """
    from conveyor.collect.init.understand import clock_columns

    clocks = clock_columns(frame)  # "1pm" parses as a date; it is a time of day
    found = []
    for column in frame.columns:
        values = frame[column]
        if column in clocks:
            continue
        if pd.api.types.is_datetime64_any_dtype(values):
            if values.nunique() > 1:
                found.append(str(column))
            continue
        if not is_text(values):
            continue
        present = values.dropna().astype(str).str.strip()
        present = present[present != ""].head(1000)
        if present.nunique() < 2 or pd.to_numeric(present, errors="coerce").notna().mean() > 0.5:
            continue
        parsed = pd.to_datetime(present, errors="coerce", utc=True, format="mixed")
        # "ST0012" parses as 0001-01-12: a code, not a date
        plausible = parsed.notna() & parsed.dt.year.between(*PLAUSIBLE_YEARS)
        if plausible.mean() >= TIME_SHARE:
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
    if is_text(values):
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
        elif is_text(values) and len(present) >= MIN_ID_ROWS \
                and present.nunique() > UNIQUE_TEXT * len(present):
            out[column] = (f"nearly unique text ({present.nunique() / len(present):.0%} of "
                           "values distinct): an identifier or free text, a category with a "
                           "level for most rows")
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
        if column in skip or not is_text(values):
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
