"""What ``conveyor init`` reads from the values of a table, beyond column types.

- clock columns: text times of day (``12am``, ``1pm``, ``13:30``) and day names
  (``Mon``, ``Tuesday``) are features, not dates: kept as categories, plus their
  number (hour of day, weekday) through a derived feature;
- numeric copies of the time (a day index, a Unix time, a running count): every
  future row would be out of their training range, so they are excluded;
- target leakage: a column, or the sum or difference of two, that predicts the
  target almost perfectly on the sample is excluded with the evidence;
- calendar parts worth adding for the time column's resolution.

Each function is pure and returns its answer with the reason written as a comment.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from conveyor.collect.init.columns import is_text
from conveyor.prepare.features import DAY_NAMES, clock_hours

CLOCK_SHARE = 0.95  # of present values that must read as a time of day or a day name
TIME_COPY = 0.98  # |Spearman| of a numeric column with the time order
LEAK_R = 0.999  # |Pearson| of a column (or a sum or difference of two) with the target
LEAK_ACCURACY = 0.995  # a one-column rule that classifies this well gives the label away
LEAK_ROWS = 20_000  # rows of the sample the leak checks read (spread over it)
MAX_PAIR_COLUMNS = 200


def clock_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Return text columns holding times of day or day names: column -> ``time_of_day`` or
    ``day_of_week``.

    >>> clock_columns(pd.DataFrame({"hr": ["12am", "1pm", "11pm"], "d": ["Mon", "Sun", "Tue"],
    ...                             "t": ["2024-01-01", "2024-01-02", "2024-01-03"]}))
    {'hr': 'time_of_day', 'd': 'day_of_week'}
    """
    out: dict[str, str] = {}
    for column in frame.columns:
        values = frame[column]
        if not is_text(values):
            continue
        present = values.dropna().astype(str).str.strip()
        present = present[present != ""].head(5000)
        if present.nunique() < 2:
            continue
        if present.str.lower().str[:3].isin(DAY_NAMES).mean() >= CLOCK_SHARE:
            out[str(column)] = "day_of_week"
        elif clock_hours(present).notna().mean() >= CLOCK_SHARE:
            out[str(column)] = "time_of_day"
    return out


def time_copies(frame: pd.DataFrame, times: pd.Series, skip: set[str]) -> dict[str, str]:
    """Return numeric columns that are a copy of the time order, each with the evidence.

    >>> t = pd.Series(pd.date_range("2024-01-01", periods=50, freq="D"))
    >>> frame = pd.DataFrame({"day": range(50), "x": np.tile([1.0, 5.0], 25)})
    >>> for column, why in time_copies(frame, t, set()).items(): print(column, why[:42])
    day a numeric copy of the time (Spearman 1.000
    """
    order = pd.Series(times.to_numpy()).rank(method="average")
    out: dict[str, str] = {}
    for column in frame.columns:
        values = frame[column]
        if column in skip or not pd.api.types.is_numeric_dtype(values) \
                or pd.api.types.is_bool_dtype(values) or values.nunique() < 3:
            continue
        rho = pd.Series(values.to_numpy(dtype=float)).rank().corr(order)
        if np.isfinite(rho) and abs(rho) >= TIME_COPY:
            out[str(column)] = (f"a numeric copy of the time (Spearman {abs(rho):.3f} with it): "
                                "every new row would be beyond its training range")
    return out


def _spread_rows(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    present = frame[frame[target].notna()]
    if len(present) > LEAK_ROWS:
        present = present.iloc[np.linspace(0, len(present) - 1, LEAK_ROWS).astype(int)]
    return present


def leaks(frame: pd.DataFrame, target: str, task: str, skip: set[str]) -> dict[str, str]:
    """Return the columns that give the target away on the sample, each with the evidence.

    Regression: a numeric column, or the sum or difference of two, whose correlation with
    the target is at least :data:`LEAK_R` in absolute value. Classification: a column
    whose one-column rule (a level's majority class, or a cut of a number fitted on the
    first half of the sample) reaches :data:`LEAK_ACCURACY` on the second half, where
    guessing the most common class would not.

    >>> frame = pd.DataFrame({"a": np.arange(40.0) % 7, "b": np.arange(40.0) % 5,
    ...                       "c": np.arange(40.0) % 3})
    >>> frame["y"] = frame["a"] + frame["b"]
    >>> sorted(leaks(frame, "y", "regression", set()))
    ['a', 'b']
    """
    rows = _spread_rows(frame, target)
    columns = [c for c in rows.columns if c != target and c not in skip]
    if len(rows) < 20 or not columns:
        return {}
    if task == "regression":
        return _regression_leaks(rows, target, columns)
    return _classification_leaks(rows, target, columns)


def _regression_leaks(rows: pd.DataFrame, target: str, columns: list[str]) -> dict[str, str]:
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(rows[c])
               and not pd.api.types.is_bool_dtype(rows[c]) and rows[c].nunique() > 1]
    numeric = numeric[:MAX_PAIR_COLUMNS]
    if not numeric:
        return {}
    values = rows[numeric].astype(float)
    X = values.fillna(values.mean()).to_numpy()
    y = rows[target].astype(float).to_numpy()
    cov = np.cov(np.column_stack([X, y]), rowvar=False)
    var, with_y, var_y = np.diag(cov)[:-1], cov[:-1, -1], cov[-1, -1]
    out: dict[str, str] = {}
    for i, name in enumerate(numeric):
        r = with_y[i] / np.sqrt(var[i] * var_y)
        if abs(r) >= LEAK_R:
            out[name] = f"target leakage: correlation {r:.4f} with {target} on the sample"
    for i, j in itertools.combinations(range(len(numeric)), 2):
        if numeric[i] in out or numeric[j] in out:
            continue
        for sign, word in ((1.0, "+"), (-1.0, "-")):
            spread = var[i] + var[j] + 2 * sign * cov[i, j]
            if spread <= 0:
                continue
            r = (with_y[i] + sign * with_y[j]) / np.sqrt(spread * var_y)
            if abs(r) >= LEAK_R:
                why = (f"target leakage: {numeric[i]} {word} {numeric[j]} has correlation "
                       f"{r:.4f} with {target} on the sample")
                out[numeric[i]], out[numeric[j]] = why, why
                break
    return out


def _classification_leaks(rows: pd.DataFrame, target: str,
                          columns: list[str]) -> dict[str, str]:
    half = len(rows) // 2
    y = rows[target].astype(str).to_numpy()
    first, second = y[:half], y[half:]
    guess = float((second == pd.Series(first).mode().iloc[0]).mean())
    out: dict[str, str] = {}
    for column in columns:
        values = rows[column]
        if values.nunique() > max(half // 20, 2) and not pd.api.types.is_numeric_dtype(values):
            continue  # near-identifiers memorise; they are not a rule
        accuracy = _one_column_accuracy(values, y, half)
        if accuracy >= LEAK_ACCURACY and accuracy > guess + 0.01:
            out[str(column)] = (f"target leakage: {column} alone classifies {accuracy:.1%} "
                                f"of the sample's rows right (the most common class: "
                                f"{guess:.1%})")
    return out


def _one_column_accuracy(values: pd.Series, y: np.ndarray, half: int) -> float:
    """Accuracy on the second half of a one-column rule fitted on the first."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        from sklearn.tree import DecisionTreeClassifier

        x = values.astype(float).fillna(values.astype(float).median()).to_numpy()[:, None]
        if not np.isfinite(x).all():
            return 0.0
        rule = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x[:half], y[:half])
        return float((rule.predict(x[half:]) == y[half:]).mean())
    levels = values.astype(str).to_numpy()
    table = pd.Series(y[:half]).groupby(levels[:half]).agg(lambda s: s.mode().iloc[0])
    predicted = pd.Series(levels[half:]).map(table)
    return float((predicted.to_numpy() == y[half:]).mean())


def calendar_parts(times: pd.Series) -> tuple[list[str], str]:
    """Return the calendar parts of the time column worth adding, and why.

    >>> calendar_parts(pd.Series(pd.date_range("2024-01-01", periods=2000, freq="h")))[0]
    ['hour', 'weekday', 'month']
    >>> calendar_parts(pd.Series(pd.date_range("2024-01-01", periods=100, freq="D")))[0]
    ['weekday', 'month']
    """
    present = pd.Series(pd.to_datetime(times, utc=True)).dropna()
    if len(present) < 2:
        return [], ""
    span = present.max() - present.min()
    step = present.sort_values().diff().dropna()
    step = step[step > pd.Timedelta(0)]
    typical = step.median() if len(step) else span
    parts: list[str] = []
    if typical < pd.Timedelta("1D") and present.dt.hour.nunique() > 1:
        parts.append("hour")
    if typical < pd.Timedelta("7D"):
        parts.append("weekday")
    if span >= pd.Timedelta("60D"):
        parts.append("month")
    return parts, (f"the time column's typical step is {_step(typical)} over "
                   f"{span.days:,} days: these parts repeat within the stream")


def _step(delta: pd.Timedelta) -> str:
    for unit, size in (("day", pd.Timedelta("1D")), ("hour", pd.Timedelta("1h")),
                       ("minute", pd.Timedelta("1min"))):
        if delta >= size:
            count = delta / size
            return f"{count:g} {unit}{'s' if count != 1 else ''}"
    return f"{delta.total_seconds():g} seconds"
