"""History features ``conveyor init`` proposes when the table is a time series.

A time series here is one row per regular time step (few repeated times, one step
between most neighbours) with a numeric target. Its label becomes known one stream
window after its time (``target.label_delay``'s default), so only lags of at least one
window can be read. For each season (a day, a week) the smallest multiple of it that is
at least the window is a candidate lag, as is the window itself (the latest known value);
a lag is proposed when the target's autocorrelation at it is at least :data:`STRONG`, and
then also the mean of the latest known window (the series' level) when its correlation
with the target is that strong too. Each comes with its
evidence, written as a comment beside it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from conveyor.collect.stream import window_width

STRONG = 0.3          # autocorrelation at which a lag is worth a feature
REGULAR_SHARE = 0.8   # share of neighbour steps equal to the typical one
MAX_REPEATS = 0.05    # share of rows whose time repeats an earlier row's
MIN_PAIRS = 30        # pairs of values an autocorrelation needs
SEASONS = (pd.Timedelta("1D"), pd.Timedelta("7D"))


def _span(delta: pd.Timedelta) -> str:
    """A lag as the config writes it: 7D, 36h, 30min."""
    for unit, size in (("D", pd.Timedelta("1D")), ("h", pd.Timedelta("1h")),
                       ("min", pd.Timedelta("1min"))):
        if delta % size == pd.Timedelta(0):
            return f"{delta // size}{unit}"
    return f"{int(delta.total_seconds())}s"


def regular_series(times: pd.Series, values: pd.Series) -> pd.Series | None:
    """The target on its regular time grid (missing steps as NaN), or None when the table
    is not one row per regular step."""
    frame = pd.DataFrame({"t": pd.to_datetime(times, utc=True).to_numpy(),
                          "y": pd.to_numeric(values, errors="coerce").to_numpy()})
    frame = frame.dropna(subset=["t"]).sort_values("t", kind="stable")
    if len(frame) < 2 * MIN_PAIRS or frame["t"].duplicated().mean() > MAX_REPEATS:
        return None
    steps = frame["t"].drop_duplicates().diff().dropna()
    step = steps.mode().iloc[0]
    if step <= pd.Timedelta(0) or (steps == step).mean() < REGULAR_SHARE:
        return None
    series = frame.drop_duplicates("t", keep="last").set_index("t")["y"]
    return series.asfreq(step)


def autocorrelation(series: pd.Series, lag: pd.Timedelta) -> float | None:
    """Pearson correlation of the series with itself ``lag`` earlier (None: too few pairs).

    >>> t = pd.date_range("2024-01-01", periods=24 * 28, freq="h", tz="UTC")
    >>> daily = pd.Series(np.sin(2 * np.pi * t.hour / 24), index=t)
    >>> round(autocorrelation(daily, pd.Timedelta("1D")), 3)
    1.0
    """
    earlier = series.shift(freq=lag).reindex(series.index)
    both = series.notna() & earlier.notna()
    if both.sum() < MIN_PAIRS or series[both].std() == 0 or earlier[both].std() == 0:
        return None
    return float(np.corrcoef(series[both], earlier[both])[0, 1])


def history_features(times: pd.Series, values: pd.Series, target: str, window: str | None,
                     task: str) -> list[tuple[dict[str, Any], str]]:
    """The history features to propose for ``target`` (each with its evidence), none
    when the table is not a regular time series with a strong autocorrelation."""
    if task != "regression" or window is None:
        return []
    series = regular_series(times, values)
    if series is None:
        return []
    delay = window_width(window)
    lags = {delay} | {season * math.ceil(delay / season) for season in SEASONS}
    found: list[tuple[dict[str, Any], str]] = []
    for lag in sorted(lags):
        r = autocorrelation(series, lag)
        if r is not None and r >= STRONG:
            found.append(({"column": target, "lag": _span(lag)},
                          f"autocorrelation {r:.2f} at {_span(lag)} (labels are known "
                          f"one window, {window}, after their time)"))
    if found:
        level = series.rolling(delay, min_periods=1).mean().shift(freq=delay)
        level = level.reindex(series.index)
        both = series.notna() & level.notna()
        r = float(np.corrcoef(series[both], level[both])[0, 1]) if both.sum() >= MIN_PAIRS \
            else float("nan")
        if np.isfinite(r) and r >= STRONG:
            found.append(({"column": target, "window": window, "stat": "mean"},
                          f"the latest known window's mean; correlation {r:.2f} with the "
                          "target"))
    return found
