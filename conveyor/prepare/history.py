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

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from conveyor.collect.sources import parse_time
from conveyor.config import Config, HistoryFeature
from conveyor.config.source import span_seconds
from conveyor.errors import ConfigError, InputError

NS = 1_000_000_000
EWM_HALF_LIVES = 4  # an ewm window holds four half-lives: its oldest row weighs 1/16


def _ns(span: str | None) -> int:
    """A span in nanoseconds, read as the config validated it."""
    return 0 if span is None else round(span_seconds(span) * NS)


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
    # nanoseconds since the epoch (UTC whatever the zone shown), NaT as int64's minimum
    return np.asarray(times.array.as_unit("ns").asi8, dtype=np.int64)


def _key_text(value: Any) -> str | None:
    """A key value as compared: text; numbers as floats first, so 7 and 7.0 agree."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | float | np.number):
        number = float(value)
        return None if number != number else repr(number)
    return str(value)


def _keys(frame: pd.DataFrame, by: list[str], where: str) -> np.ndarray:
    """Each row's key as one text (object array; None where a key value is missing)."""
    missing = [c for c in by if c not in frame.columns]
    if missing:
        raise InputError(f"{where} lacks key column(s) {missing} of the history features")
    if not by:
        return np.full(len(frame), "", dtype=object)
    columns = [[_key_text(v) for v in frame[c].tolist()] for c in by]
    keys = np.empty(len(frame), dtype=object)
    keys[:] = [None if None in parts else "\x1f".join(parts)
               for parts in zip(*columns, strict=True)]
    return keys


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    return values.to_numpy(dtype=float, na_value=np.nan)


class _Keyed:
    """One column's past rows sorted by key, then time, with running sums that the window
    statistics difference (each key's values centred on its own mean, for precision)."""

    def __init__(self, keys: np.ndarray, times: np.ndarray, values: np.ndarray) -> None:
        known = np.array([k is not None for k in keys], dtype=bool)
        keys, times, values = keys[known], times[known], values[known]
        codes, uniques = pd.factorize(pd.Series(keys, dtype=object), sort=False)
        self.code_of = {key: i for i, key in enumerate(uniques)}
        order = np.lexsort((times, codes))
        self.codes, self.times, self.values = codes[order], times[order], values[order]
        self.moments = np.unique(self.times)  # every distinct time, for exact rank search
        self.stride = len(self.moments) + 1
        self.sorted_key = self.codes.astype(np.int64) * self.stride + np.searchsorted(
            self.moments, self.times)
        valid = ~np.isnan(self.values)
        n_keys = len(uniques)
        counts = np.bincount(self.codes, weights=valid, minlength=n_keys)
        sums = np.bincount(self.codes, weights=np.where(valid, self.values, 0.0),
                           minlength=n_keys)
        self.centre = np.divide(sums, counts, out=np.zeros(n_keys), where=counts > 0)
        centred = np.where(valid, self.values - self.centre[self.codes], 0.0)
        self.count = np.concatenate([[0], np.cumsum(valid)])
        self.sum = np.concatenate([[0.0], np.cumsum(centred)])
        self.sum2 = np.concatenate([[0.0], np.cumsum(centred ** 2)])
        # index of the latest valid value at or before each position (-1: none)
        positions = np.where(valid, np.arange(len(valid)), -1)
        self.last_valid = np.maximum.accumulate(positions) if len(positions) else positions
        self.first = np.searchsorted(self.codes, np.arange(n_keys))  # each key's first row

    def codes_of(self, keys: np.ndarray) -> np.ndarray:
        """The code of each key (-1: a key with no past rows, or a missing one)."""
        return np.fromiter((self.code_of.get(k, -1) for k in keys), dtype=np.int64,
                           count=len(keys))

    def upto(self, codes: np.ndarray, times: np.ndarray) -> np.ndarray:
        """For each query, the end (exclusive) of its key's rows with time <= ``times``."""
        rank = np.searchsorted(self.moments, times, side="right")
        return np.searchsorted(self.sorted_key, codes * self.stride + rank, side="left")


def _window_stat(keyed: _Keyed, stat: str, lo: np.ndarray, hi: np.ndarray,
                 codes: np.ndarray, ends: np.ndarray, half_life: float,
                 min_count: int) -> np.ndarray:
    """A statistic of the rows ``[lo, hi)`` (of one key each) for each query."""
    n = keyed.count[hi] - keyed.count[lo]
    if stat == "count":
        return n.astype(float)
    out = np.full(len(lo), np.nan)
    enough = n >= max(min_count, 2 if stat == "std" else 1)
    s = keyed.sum[hi] - keyed.sum[lo]
    if stat == "mean":
        out[enough] = keyed.centre[codes[enough]] + s[enough] / n[enough]
    elif stat == "std":
        s2 = keyed.sum2[hi] - keyed.sum2[lo]
        var = (s2[enough] - s[enough] ** 2 / n[enough]) / (n[enough] - 1)
        out[enough] = np.sqrt(np.maximum(var, 0.0))
    elif stat == "last":
        idx = keyed.last_valid[np.maximum(hi - 1, 0)]
        ok = enough & (idx >= lo)
        out[ok] = keyed.values[idx[ok]]
    else:  # median, ewm: read each window (its cost is the window's rows)
        for i in np.flatnonzero(enough):
            values = keyed.values[lo[i]:hi[i]]
            kept = ~np.isnan(values)
            if stat == "median":
                out[i] = float(np.median(values[kept]))
            else:
                age = (ends[i] - keyed.times[lo[i]:hi[i]][kept]) / half_life
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
        self._keyed: dict[tuple[str, tuple[str, ...]], _Keyed] = {}
        if not self.reaches:
            return
        empty = history.empty  # nothing ingested before: every feature is missing
        times = np.zeros(0, dtype=np.int64) if empty \
            else _times(history, self.time_column, "the stored history")
        for reach in self.reaches:
            column, by = reach.spec.column, tuple(reach.spec.by)
            if (column, by) in self._keyed:
                continue
            if empty:
                self._keyed[(column, by)] = _Keyed(np.zeros(0, dtype=object), times,
                                                   np.zeros(0))
                continue
            if column not in history.columns:
                raise ConfigError(f"features.history: column '{column}' is not in the stream")
            values = _numbers(history, column)
            if history[column].notna().any() and np.isnan(values).all():
                raise ConfigError(f"features.history: column '{column}' holds text; history "
                                  "features read numbers (a category's past needs a numeric "
                                  "column, e.g. target.derive for a class)")
            keys = _keys(history, list(by), "the stored history")
            self._keyed[(column, by)] = _Keyed(keys, times, values)

    def features(self, rows: pd.DataFrame, where: str = "the input") -> pd.DataFrame:
        """The history features of ``rows`` (same index), from this index's history only."""
        out: dict[str, np.ndarray] = {}
        if not self.reaches:
            return pd.DataFrame(index=rows.index)
        times = _times(rows, self.time_column, where)
        unknown_time = times == np.iinfo(np.int64).min  # NaT
        codes_by: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
        for reach in self.reaches:
            spec = reach.spec
            lookup = (spec.column, tuple(spec.by))
            keyed = self._keyed[lookup]
            if lookup not in codes_by:
                codes_by[lookup] = keyed.codes_of(_keys(rows, spec.by, where))
            codes = codes_by[lookup]
            column = np.full(len(rows), np.nan)
            asked = np.flatnonzero((codes >= 0) & ~unknown_time)
            column[asked] = _lookup(keyed, reach, codes[asked], times[asked])
            if spec.stat == "count" and reach.window is not None:
                column[np.isnan(column) & ~unknown_time] = 0.0
            out[spec.output] = column
        return pd.DataFrame(out, index=rows.index)


def _lookup(keyed: _Keyed, reach: Reach, codes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """One feature for queries at ``times`` (nanoseconds) of keys ``codes``."""
    spec = reach.spec
    if reach.lag is not None:
        at = times - reach.lag
        hi = keyed.upto(codes, at)
        idx = keyed.last_valid[np.maximum(hi - 1, 0)]
        out = np.full(len(times), np.nan)
        ok = (hi > 0) & (idx >= keyed.first[codes])
        ok[ok] &= keyed.times[idx[ok]] > at[ok] - reach.tolerance
        out[ok] = keyed.values[idx[ok]]
        return out
    ends = times - reach.delay
    lo = keyed.upto(codes, ends - (reach.window or 0))
    hi = keyed.upto(codes, ends)
    half_life = (reach.window or NS) / EWM_HALF_LIVES
    return _window_stat(keyed, spec.stat, lo, hi, codes, ends, half_life, spec.min_count)
