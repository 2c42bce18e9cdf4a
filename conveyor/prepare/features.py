"""Feature engineering declared in ``features:`` of the config, as one sklearn transformer.

The transformer is the first step of every model pipeline, so ``update``,
``inference`` and any other caller compute exactly the same features from the
same raw columns. It adds columns and keeps the input's.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

CALENDAR_PARTS = ("hour", "weekday", "month", "day", "weekend", "holiday")
OPERATIONS = ("diff", "ratio", "log1p", "clip", "frequency")


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
        clip (to lower/upper), frequency (share of the level in the training data).

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
