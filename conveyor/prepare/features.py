"""Feature engineering declared in ``features:`` of the config, as one sklearn transformer.

The transformer is the first step of every model pipeline, so ``update``,
``inference`` and any other caller compute exactly the same features from the
same raw columns. It adds columns and keeps the input's.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

CALENDAR_PARTS = ("hour", "weekday", "month", "day", "weekend", "holiday")
OPERATIONS = ("diff", "ratio", "log1p", "clip", "frequency", "time_of_day", "day_of_week")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?(?::\d{2})?\s*([ap])?\.?m?\.?$", re.IGNORECASE)


def clock_hours(values: pd.Series) -> pd.Series:
    """Return text times of day as hours (``1pm`` -> 13.0, ``07:30`` -> 7.5); NaN where a
    value is not a time of day (a bare number is not one).

    >>> clock_hours(pd.Series(["12am", "1pm", "12 PM", "07:30", "25:00", "7", None])).tolist()
    [0.0, 13.0, 12.0, 7.5, nan, nan, nan]
    """
    parts = values.astype("string").str.strip().str.extract(_CLOCK)
    hour = pd.to_numeric(parts[0], errors="coerce")
    minute = pd.to_numeric(parts[1], errors="coerce")
    half = parts[2].str.lower()
    clocked = minute.notna() | half.notna()  # "7" alone is a number, not a time
    pm = (half == "p").fillna(False).astype(bool)
    am = (half == "a").fillna(False).astype(bool)
    hour = hour.where(~(am | pm) | hour.between(1, 12))
    hour = hour.where(~am, hour % 12).where(~pm, hour % 12 + 12)
    out = hour + minute.fillna(0) / 60
    return out.where(clocked & hour.between(0, 23) & minute.fillna(0).between(0, 59)) \
        .astype("float64")


def day_numbers(values: pd.Series) -> pd.Series:
    """Return day names as numbers, Monday 0 (``Mon``, ``monday``, ``Tues``); NaN otherwise.

    >>> day_numbers(pd.Series(["Mon", "sunday", "Tues", "x"])).tolist()
    [0.0, 6.0, 1.0, nan]
    """
    codes = {name: float(i) for i, name in enumerate(DAY_NAMES)}
    return values.astype("string").str.strip().str.lower().str[:3].map(codes) \
        .astype("float64")


def _holidays(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """US federal holidays between two dates (whole years, computed once per range)."""
    return _holidays_in_years(start.year, end.year)


@functools.lru_cache(maxsize=64)
def _holidays_in_years(first: int, last: int) -> pd.DatetimeIndex:
    # pandas builds the calendar rule by rule: ~50 ms per call, and permutation importance
    # predicts hundreds of times, so the answer for a range of years is kept
    from pandas.tseries.holiday import USFederalHolidayCalendar

    return USFederalHolidayCalendar().holidays(start=f"{first}-01-01", end=f"{last}-12-31")


class FeatureMaker(TransformerMixin, BaseEstimator):
    """Add calendar parts of a time column and derived columns.

    Parameters
    ----------
    time_column : column with timestamps for calendar parts, or None.
    timezone : IANA zone the calendar parts are read in (e.g. America/New_York).
    calendar : parts to add: hour, weekday, month, day, weekend, holiday (US federal).
    derived : list of dicts ``{name, op, columns, lower, upper}`` with op one of
        diff (a - b), ratio (a / b, NaN where b is 0), log1p (sign-preserving),
        clip (to lower/upper), frequency (share of the level in the training data),
        time_of_day (text such as ``1pm`` or ``13:30`` as hours), day_of_week (day names
        as 0 for Monday to 6).

    Examples
    --------
    >>> frame = pd.DataFrame({"t": pd.to_datetime(["2024-07-04 15:00", "2024-07-06 09:00"],
    ...                                           utc=True), "a": [3.0, 5.0], "b": [1.0, 0.0],
    ...                       "c": ["x", "y"]})
    >>> maker = FeatureMaker("t", "UTC", ["hour", "weekend", "holiday"],
    ...     [{"name": "a_b", "op": "ratio", "columns": ["a", "b"]},
    ...      {"name": "c_freq", "op": "frequency", "columns": ["c"]}])
    >>> maker.fit_transform(frame)[["t_hour", "t_weekend", "t_holiday", "a_b", "c_freq"]]
       t_hour  t_weekend  t_holiday  a_b  c_freq
    0    15.0        0.0        1.0  3.0     0.5
    1     9.0        1.0        0.0  NaN     0.5
    """

    def __init__(self, time_column: str | None = None, timezone: str = "UTC",
                 calendar: list[str] | None = None,
                 derived: list[dict[str, Any]] | None = None) -> None:
        self.time_column = time_column
        self.timezone = timezone
        self.calendar = calendar
        self.derived = derived

    def fit(self, X: pd.DataFrame, y: object = None) -> FeatureMaker:
        self.frequencies_: dict[str, dict[str, float]] = {}
        for spec in self.derived or []:
            if spec["op"] == "frequency":
                values = X[spec["columns"][0]].astype("string")
                shares = values.value_counts(normalize=True, dropna=True)
                self.frequencies_[spec["name"]] = {str(k): float(v) for k, v in shares.items()}
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def output_names(self) -> list[str]:
        """Return the names of the columns this transformer adds."""
        names = [f"{self.time_column}_{part}" for part in (self.calendar or [])]
        return names + [spec["name"] for spec in self.derived or []]

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        if self.calendar:
            times = pd.to_datetime(out[self.time_column], utc=True).dt.tz_convert(self.timezone)
            for part in self.calendar:
                name = f"{self.time_column}_{part}"
                if part == "hour":
                    out[name] = times.dt.hour
                elif part == "weekday":
                    out[name] = times.dt.day_of_week
                elif part == "month":
                    out[name] = times.dt.month
                elif part == "day":
                    out[name] = times.dt.day
                elif part == "weekend":
                    out[name] = (times.dt.day_of_week >= 5).astype("Int64")
                elif part == "holiday":
                    dates = times.dt.tz_localize(None).dt.normalize()
                    valid = dates.dropna()
                    days = (_holidays(valid.min(), valid.max()) if len(valid)
                            else pd.DatetimeIndex([]))
                    out[name] = dates.isin(days).astype("Int64")
                out[name] = out[name].astype("float64")
        for spec in self.derived or []:
            out[spec["name"]] = self._derive(out, spec)
        return out

    def _derive(self, frame: pd.DataFrame, spec: dict[str, Any]) -> pd.Series:
        op, columns = spec["op"], spec["columns"]
        if op == "frequency":
            table = self.frequencies_.get(spec["name"], {})
            return frame[columns[0]].astype("string").map(table).astype("float64").fillna(0.0)
        if op == "time_of_day":
            return clock_hours(frame[columns[0]])
        if op == "day_of_week":
            return day_numbers(frame[columns[0]])
        first = pd.to_numeric(frame[columns[0]], errors="coerce").astype("float64")
        if op == "log1p":
            return np.sign(first) * np.log1p(first.abs())
        if op == "clip":
            return first.clip(lower=spec.get("lower"), upper=spec.get("upper"))
        second = pd.to_numeric(frame[columns[1]], errors="coerce").astype("float64")
        if op == "diff":
            return first - second
        return (first / second.where(second != 0)).astype("float64")

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray([*self.feature_names_in_, *self.output_names()], dtype=object)
