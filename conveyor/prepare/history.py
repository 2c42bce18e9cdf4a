"""History features: lags and rolling aggregates of the stream's own past, point in time.

A row's history is the rows conveyor had ingested before the row's own batch (for a
file or an API request: every ingested row). Of those, a feature of column ``c`` reads
only rows whose time is at most ``t - delay``, where ``t`` is the row's time and
``delay`` is ``target.label_delay`` for the target (its label is known that long after
its time) and nothing for other columns. A window statistic reads the rows in
``(t - delay - window, t - delay]``; a lag reads the latest row at or before
``t - lag`` (and after ``t - lag - tolerance``). With ``by`` keys, only rows with the
same key values count.

One class computes every feature for every caller: :class:`HistoryIndex` holds each
key's past rows sorted by time with running sums, so a lookup is two binary searches
(training windows, prequential scores, inference files and API requests alike).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from conveyor.collect.sources import parse_time
from conveyor.config import Config, HistoryFeature
from conveyor.errors import ConfigError, InputError

NS = 1_000_000_000
EWM_HALF_LIVES = 4  # an ewm window holds four half-lives: its oldest row weighs 1/16


def _ns(span: str | None) -> int:
    return 0 if span is None else int(pd.Timedelta(span).value)


@dataclass(frozen=True)
class Reach:
    """One history feature with its spans in nanoseconds."""

    spec: HistoryFeature
    delay: int
    lag: int | None
    window: int | None
    tolerance: int

    @property
    def span(self) -> int:
        """How far back before a row's time it reads."""
        if self.lag is not None:
            return self.lag + self.tolerance
        return self.delay + (self.window or 0)


def reaches(config: Config) -> list[Reach]:
    """The configured history features, resolved: the target's delay is its label delay."""
    label_delay = _ns(config.target.label_delay or config.stream.window)
    out = []
    for spec in config.features.history:
        is_target = spec.column in (config.target.column, config.target.source_column)
        delay = _ns(spec.delay) if spec.delay else (label_delay if is_target else 0)
        lag = None if spec.lag is None else _ns(spec.lag)
        out.append(Reach(spec, delay, lag, None if spec.window is None else _ns(spec.window),
                         _ns(spec.tolerance) if spec.tolerance else (lag or 0)))
    return out


def horizon(config: Config) -> pd.Timedelta:
    """How far back the history features read (zero without them)."""
    return pd.Timedelta(max((r.span for r in reaches(config)), default=0), unit="ns")


def _times(frame: pd.DataFrame, column: str, where: str) -> np.ndarray:
    if column not in frame.columns:
        raise InputError(f"{where} lacks the time column '{column}' that history features "
                         "are computed from")
    times = frame[column]
    if times.empty:
        return np.zeros(0, dtype=np.int64)
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        times = parse_time(frame, column, where)  # a bad value is named, with its row
    return times.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns").to_numpy(
        dtype=np.int64, na_value=np.iinfo(np.int64).min)


def _keys(frame: pd.DataFrame, by: list[str], where: str) -> list[tuple[Any, ...]]:
    missing = [c for c in by if c not in frame.columns]
    if missing:
        raise InputError(f"{where} lacks key column(s) {missing} of the history features")
    if not by:
        return [()] * len(frame)
    texts = []
    for column in by:  # compared as text; numbers as floats first, so 7 and 7.0 agree
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            values = values.astype(float)
        text = values.astype("string")
        texts.append([None if missing else value
                      for value, missing in zip(text.tolist(), text.isna(), strict=True)])
    return list(zip(*texts, strict=True))


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    return values.to_numpy(dtype=float, na_value=np.nan)


class _Series:
    """One key's past rows of one column, sorted by time, with running sums."""

    def __init__(self, times: np.ndarray, values: np.ndarray) -> None:
        order = np.argsort(times, kind="stable")
        self.times, self.values = times[order], values[order]
        valid = ~np.isnan(self.values)
        centred = np.where(valid, self.values - (self.values[valid].mean()
                                                 if valid.any() else 0.0), 0.0)
        self.centre = float(self.values[valid].mean()) if valid.any() else 0.0
        self.count = np.concatenate([[0], np.cumsum(valid)])
        self.sum = np.concatenate([[0.0], np.cumsum(centred)])
        self.sum2 = np.concatenate([[0.0], np.cumsum(centred ** 2)])
        # index of the latest valid value at or before each position (-1: none)
        positions = np.where(valid, np.arange(len(valid)), -1)
        self.last_valid = np.maximum.accumulate(positions) if len(positions) else positions


def _window_stat(series: _Series, stat: str, lo: np.ndarray, hi: np.ndarray,
                 ends: np.ndarray, half_life: float, min_count: int) -> np.ndarray:
    """A statistic of the rows in ``[lo, hi)`` of ``series`` for each query."""
    n = series.count[hi] - series.count[lo]
    if stat == "count":
        return n.astype(float)
    out = np.full(len(lo), np.nan)
    enough = n >= max(min_count, 2 if stat == "std" else 1)
    s = series.sum[hi] - series.sum[lo]
    if stat == "mean":
        out[enough] = series.centre + s[enough] / n[enough]
    elif stat == "std":
        s2 = series.sum2[hi] - series.sum2[lo]
        var = (s2[enough] - s[enough] ** 2 / n[enough]) / (n[enough] - 1)
        out[enough] = np.sqrt(np.maximum(var, 0.0))
    elif stat == "last":
        idx = series.last_valid[np.maximum(hi - 1, 0)]
        ok = enough & (hi > lo) & (idx >= lo)
        out[ok] = series.values[idx[ok]]
    else:  # median, ewm: read each window (its cost is the window's rows)
        for i in np.flatnonzero(enough):
            values = series.values[lo[i]:hi[i]]
            kept = ~np.isnan(values)
            if stat == "median":
                out[i] = float(np.median(values[kept]))
            else:
                age = (ends[i] - series.times[lo[i]:hi[i]][kept]) / half_life
                weights = np.exp2(-age)
                out[i] = float(np.dot(weights, values[kept]) / weights.sum())
    return out


class HistoryIndex:
    """The history rows of each history feature's key, ready for point-in-time lookups."""

    def __init__(self, config: Config, history: pd.DataFrame,
                 names: list[str] | None = None) -> None:
        self.reaches = [r for r in reaches(config) if names is None or r.spec.output in names]
        self.time_column = config.source.time_column
        self.names = tuple(r.spec.output for r in self.reaches)
        self._series: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], _Series]] = {}
        if not self.reaches:
            return
        if history.empty:  # nothing ingested before: every feature is missing
            self._series = {(r.spec.column, tuple(r.spec.by)): {} for r in self.reaches}
            return
        times = _times(history, self.time_column, "the stored history")
        for reach in self.reaches:
            column, by = reach.spec.column, tuple(reach.spec.by)
            if (column, by) in self._series:
                continue
            if column not in history.columns:
                raise ConfigError(f"features.history: column '{column}' is not in the stream")
            values = _numbers(history, column)
            if history[column].notna().any() and np.isnan(values).all():
                raise ConfigError(f"features.history: column '{column}' holds text; history "
                                  "features read numbers (a category's past needs a numeric "
                                  "column, e.g. target.derive for a class)")
            keys = _keys(history, list(by), "the stored history")
            self._series[(column, by)] = {key: _Series(times[rows], values[rows])
                                          for key, rows in _grouped(keys)}

    def features(self, rows: pd.DataFrame, where: str = "the input") -> pd.DataFrame:
        """The history features of ``rows`` (same index), from this index's history only."""
        out = pd.DataFrame(index=rows.index)
        if not self.reaches:
            return out
        times = _times(rows, self.time_column, where)
        unknown_time = times == np.iinfo(np.int64).min  # NaT
        for reach in self.reaches:
            spec = reach.spec
            column = np.full(len(rows), np.nan)
            keyed = self._series[(spec.column, tuple(spec.by))]
            for key, positions in _grouped(_keys(rows, spec.by, where)):
                series = keyed.get(key)
                if series is None:
                    continue
                chosen = positions[~unknown_time[positions]]
                column[chosen] = _lookup(series, reach, times[chosen])
            if spec.stat == "count" and reach.window is not None:
                column[np.isnan(column) & ~unknown_time] = 0.0
            out[spec.output] = column
        return out


def _grouped(keys: list[tuple[Any, ...]]) -> Iterable[tuple[tuple[Any, ...], np.ndarray]]:
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, key in enumerate(keys):
        if None not in key:
            groups.setdefault(key, []).append(i)
    return ((k, np.asarray(v, dtype=np.int64)) for k, v in groups.items())


def _lookup(series: _Series, reach: Reach, times: np.ndarray) -> np.ndarray:
    """One feature for queries at ``times`` (nanoseconds) of one key."""
    spec = reach.spec
    if reach.lag is not None:
        at = times - reach.lag
        hi = np.searchsorted(series.times, at, side="right")
        idx = series.last_valid[np.maximum(hi - 1, 0)]
        out = np.full(len(times), np.nan)
        ok = (hi > 0) & (idx >= 0)
        ok[ok] &= series.times[idx[ok]] > at[ok] - reach.tolerance
        out[ok] = series.values[idx[ok]]
        return out
    ends = times - reach.delay
    lo = np.searchsorted(series.times, ends - (reach.window or 0), side="right")
    hi = np.searchsorted(series.times, ends, side="right")
    half_life = (reach.window or NS) / EWM_HALF_LIVES
    return _window_stat(series, spec.stat, lo, hi, ends, half_life, spec.min_count)
