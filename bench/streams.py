"""Seeded synthetic streams with known change points, for ``bench/generality.py``.

Every stream spans ``weeks`` weeks from :data:`START` (a Monday) with a ``time`` column
(naive timestamps, sorted) and a ``target`` column. Tabular streams spread
:data:`ROWS_PER_WEEK` rows evenly over each week; the hourly one has one row per hour.
The sizes are chosen so that ``conveyor init`` cuts one batch per week (window 7D: one
day would give too many batches, two weeks fewer than 20). Change points fall on whole
weeks, so each one is the start of a batch.

``changes`` are the true concept-change times (y | x changes; for the gradual stream, the
start of each transition); ``shifts`` are the times the input distribution moves
(covariate shift, y | x fixed). ``drift`` is abrupt, gradual, recurring or feature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

START = pd.Timestamp("2022-01-03")  # a Monday
WEEK = pd.Timedelta("7D")
ROWS_PER_WEEK = 1000


@dataclass(frozen=True)
class Stream:
    name: str
    task: str  # regression | classification
    drift: str  # abrupt | gradual | recurring | none | feature
    make: Callable[[int], pd.DataFrame]  # seed -> frame
    about: str
    changes: tuple[pd.Timestamp, ...] = ()
    shifts: tuple[pd.Timestamp, ...] = ()
    season: pd.Timedelta | None = None  # set for time series: the seasonal naive baseline
    series: bool = False
    keys: tuple[str, ...] = field(default=())


def week_of(weeks: int, share: float) -> int:
    """The whole week nearest to ``share`` of the stream (at least 1, before the end)."""
    return min(max(1, round(share * weeks)), weeks - 1)


def _times(weeks: int) -> pd.DatetimeIndex:
    step = WEEK / ROWS_PER_WEEK
    return pd.DatetimeIndex(START + step * np.arange(weeks * ROWS_PER_WEEK))


def _regime(weeks: int, at: list[int]) -> np.ndarray:
    """Each row's regime: how many of the change weeks ``at`` lie at or before its week."""
    week = np.arange(weeks * ROWS_PER_WEEK) // ROWS_PER_WEEK
    return np.searchsorted(np.array(at), week, side="right")


def hourly_counts(weeks: int, seed: int) -> pd.DataFrame:
    """Hourly counts, bike-share-like: a Poisson target driven by hour, weekday, a seasonal
    temperature and humidity, on a level that steps up at the first change, down at the
    second, then trends; plus ``station`` (a random id from a pool that keeps growing, no
    effect) and ``day_index`` (a numeric copy of the time)."""
    rng = np.random.default_rng(seed)
    time = pd.date_range(START, periods=weeks * 7 * 24, freq="h")
    days = (time - START) / pd.Timedelta("1D")
    hour = time.hour.to_numpy()
    season = np.sin(2 * np.pi * (days - 110) / 365.25)
    temperature = 12 + 11 * season + 4 * np.sin(2 * np.pi * (hour - 9) / 24) \
        + rng.normal(0, 3, len(time))
    humidity = np.clip(65 - 1.2 * (temperature - 12) + rng.normal(0, 12, len(time)), 10, 100)
    rush = np.exp(-((hour - 8) ** 2) / 3) + 1.2 * np.exp(-((hour - 17.5) ** 2) / 4)
    daytime = np.clip(np.sin(np.pi * (hour - 5) / 18), 0, None)
    weekend = time.weekday.to_numpy() >= 5
    profile = np.where(weekend, 0.2 + 1.1 * daytime, 0.15 + 0.5 * daytime + 1.6 * rush)
    comfort = np.exp(-((temperature - 22) ** 2) / 200) * (1.3 - 0.006 * humidity)
    first, second = 7 * week_of(weeks, 0.3), 7 * week_of(weeks, 0.65)
    level = 60 * np.where(days < first, 1.0,
                          np.where(days < second, 1.6, 1.1 + 0.004 * (days - second)))
    target = rng.poisson(level * profile * comfort)
    labels = [f"{(h - 1) % 12 + 1}{'am' if h < 12 else 'pm'}" for h in range(24)]
    pool = 20 + (days * 0.6).astype(int)  # new stations keep appearing
    station = (rng.random(len(time)) * pool).astype(int)
    return pd.DataFrame({
        "time": time, "hour": np.array(labels)[hour], "weekday": time.day_name().str[:3],
        "temperature": temperature.round(1), "humidity": humidity.round(0),
        "station": [f"ST{s:04d}" for s in station], "day_index": days.to_numpy().round(3),
        "target": target})


FRIEDMAN_REGIMES = [  # (inputs in the roles of x1..x5, scale of each term)
    ((0, 1, 2, 3, 4), (10, 20, 10, 5)),
    ((5, 6, 7, 8, 9), (10, 20, 10, 5)),
    ((0, 1, 2, 3, 4), (-10, 20, -10, 15)),
    ((3, 7, 1, 9, 0), (20, -20, 5, 10)),
]


def _friedman(X: np.ndarray, roles: tuple[int, ...], scales: tuple[int, ...]) -> np.ndarray:
    a, b, c, d, e = roles
    k1, k2, k3, k4 = scales
    return (k1 * np.sin(np.pi * X[:, a] * X[:, b]) + k2 * (X[:, c] - 0.5) ** 2
            + k3 * X[:, d] + k4 * X[:, e])


def _frame(X: np.ndarray, weeks: int, target: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(X.round(4), columns=[f"x{i}" for i in range(1, X.shape[1] + 1)])
    frame.insert(0, "time", _times(weeks))
    frame["target"] = target
    return frame


def friedman_drift(weeks: int, seed: int) -> pd.DataFrame:
    """Friedman #1 (y = 10 sin(pi x1 x2) + 20 (x3 - .5)^2 + 10 x4 + 5 x5 + N(0, 1), x1..x10
    uniform, x6..x10 noise) whose relevant inputs change abruptly at 30%, 55% and 80% of the
    stream (new inputs take the roles, coefficients change sign and scale)."""
    rng = np.random.default_rng(seed)
    X = rng.random((weeks * ROWS_PER_WEEK, 10))
    regime = _regime(weeks, [week_of(weeks, s) for s in (0.3, 0.55, 0.8)])
    y = np.empty(len(X))
    for r, (roles, scales) in enumerate(FRIEDMAN_REGIMES):
        y[regime == r] = _friedman(X[regime == r], roles, scales)
    return _frame(X, weeks, (y + rng.normal(0, 1, len(X))).round(4))


def covariate_shift(weeks: int, seed: int) -> pd.DataFrame:
    """Friedman #1 with one fixed function and a moving input distribution: x1..x5 drawn
    from Beta(2, 5) (mostly low), then uniform from 35% of the stream, then Beta(5, 2)
    (mostly high) from 70%; x6..x10 uniform noise throughout. y | x never changes."""
    rng = np.random.default_rng(seed)
    n = weeks * ROWS_PER_WEEK
    regime = _regime(weeks, [week_of(weeks, s) for s in (0.35, 0.7)])
    a = np.array([2.0, 1.0, 5.0])[regime][:, None]
    b = np.array([5.0, 1.0, 2.0])[regime][:, None]
    X = np.hstack([rng.beta(np.repeat(a, 5, 1), np.repeat(b, 5, 1)), rng.random((n, 5))])
    y = _friedman(X, *FRIEDMAN_REGIMES[0]) + rng.normal(0, 1, n)
    return _frame(X, weeks, y.round(4))


def _weights(weeks: int, transitions: list[tuple[int, int]], rng: np.random.Generator,
             d: int) -> np.ndarray:
    """Per-row hyperplane weights: fixed, then rotating linearly to new random weights over
    each transition [start week, end week), fixed again after it."""
    week = np.arange(weeks * ROWS_PER_WEEK) / ROWS_PER_WEEK
    anchors = [rng.random(d) for _ in range(len(transitions) + 1)]
    w = np.repeat(anchors[0][None, :], len(week), 0)
    for k, (start, end) in enumerate(transitions):
        share = np.clip((week - start) / (end - start), 0, 1)[:, None]
        moving = week >= start
        w[moving] = ((1 - share) * anchors[k] + share * anchors[k + 1])[moving]
    return w


def rotating_hyperplane(weeks: int, seed: int) -> pd.DataFrame:
    """Hyperplane: y = [w . x > w . 1/2] on 10 uniform inputs, 5% label noise; w fixed, then
    rotating gradually to new random weights over 30-50% of the stream, fixed, rotating
    again over 65-85%, fixed."""
    rng = np.random.default_rng(seed)
    d = 10
    X = rng.random((weeks * ROWS_PER_WEEK, d))
    transitions = [(week_of(weeks, 0.3), week_of(weeks, 0.5)),
                   (week_of(weeks, 0.65), week_of(weeks, 0.85))]
    w = _weights(weeks, transitions, rng, d)
    y = ((X * w).sum(1) > 0.5 * w.sum(1)).astype(int)
    y = np.where(rng.random(len(X)) < 0.05, 1 - y, y)
    return _frame(X, weeks, np.where(y == 1, "pos", "neg"))


def _sea(weeks: int, seed: int, thetas: list[float], shares: list[float]) -> pd.DataFrame:
    """SEA concepts: y = [x1 + x2 <= theta] on three inputs uniform on [0, 10] (x3
    irrelevant), theta switching at whole weeks, 10% label noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 10, (weeks * ROWS_PER_WEEK, 3))
    theta = np.array(thetas)[_regime(weeks, [week_of(weeks, s) for s in shares])]
    y = (X[:, 0] + X[:, 1] <= theta).astype(int)
    y = np.where(rng.random(len(X)) < 0.10, 1 - y, y)
    return _frame(X, weeks, np.where(y == 1, "yes", "no"))


def sea_thresholds(weeks: int, seed: int) -> pd.DataFrame:
    """SEA with theta 8 -> 9 -> 7 -> 9.5 at 25%, 50% and 75% of the stream."""
    return _sea(weeks, seed, [8.0, 9.0, 7.0, 9.5], [0.25, 0.5, 0.75])


def sea_recurring(weeks: int, seed: int) -> pd.DataFrame:
    """SEA with two concepts that come back: theta 7 (A) and 9.5 (B), A B A B switching at
    25%, 50% and 75% of the stream (about a fifth of the rows change label)."""
    return _sea(weeks, seed, [7.0, 9.5, 7.0, 9.5], [0.25, 0.5, 0.75])


def _at(weeks: int, *shares: float) -> tuple[pd.Timestamp, ...]:
    return tuple(START + WEEK * week_of(weeks, s) for s in shares)


def streams(weeks: int) -> dict[str, Stream]:
    """The synthetic streams, each ``weeks`` weeks long (one batch per week)."""
    n = f"{ROWS_PER_WEEK:,} rows a week"

    def bind(make: Callable[[int, int], pd.DataFrame]) -> Callable[[int], pd.DataFrame]:
        return lambda seed: make(weeks, seed)

    return {s.name: s for s in [
        Stream("hourly", "regression", "abrupt", bind(hourly_counts),
               "hourly Poisson counts (168 rows a week), level up at 30%, down at 65% then "
               "a trend; station id, day index", _at(weeks, 0.3, 0.65),
               season=WEEK, series=True),
        Stream("friedman", "regression", "abrupt", bind(friedman_drift),
               f"Friedman #1, {n}, roles change abruptly at 30/55/80%",
               _at(weeks, 0.3, 0.55, 0.8)),
        Stream("covariate", "regression", "feature", bind(covariate_shift),
               f"Friedman #1, {n}, inputs low -> uniform -> high at 35/70%, y|x fixed",
               shifts=_at(weeks, 0.35, 0.7)),
        Stream("hyperplane", "classification", "gradual", bind(rotating_hyperplane),
               f"hyperplane, 10 inputs, {n}, rotates over 30-50% and 65-85%, 5% noise",
               _at(weeks, 0.3, 0.65)),
        Stream("sea", "classification", "abrupt", bind(sea_thresholds),
               f"SEA, {n}, theta 8/9/7/9.5 from 0/25/50/75%, 10% noise",
               _at(weeks, 0.25, 0.5, 0.75)),
        Stream("sea_recurring", "classification", "recurring", bind(sea_recurring),
               f"SEA, {n}, concepts A B A B (theta 7/9.5) from 0/25/50/75%, 10% noise",
               _at(weeks, 0.25, 0.5, 0.75)),
    ]}
