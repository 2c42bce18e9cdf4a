"""Seeded synthetic streams for ``bench/generality_bench.py``: nobody tuned conveyor on them.

Each generator returns a frame with a ``time`` column (naive UTC timestamps, sorted) and a
``target`` column, sized as ``batches`` windows of ``Stream.window`` (hourly: 35 days).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

START = pd.Timestamp("2022-01-03")  # a Monday


@dataclass(frozen=True)
class Stream:
    name: str
    task: str  # regression | classification
    window: str  # stream.window
    make: Callable[[int, int], pd.DataFrame]  # (batches, seed) -> frame
    about: str


def _spread(batches: int, per_batch: int, window: pd.Timedelta) -> pd.DatetimeIndex:
    """``per_batch`` evenly spaced times inside each of ``batches`` windows."""
    step = window / per_batch
    return pd.DatetimeIndex(START + step * np.arange(batches * per_batch))


def hourly_counts(batches: int, seed: int) -> pd.DataFrame:
    """Hourly counts, bike-share-like: a Poisson target driven by hour, weekday, a seasonal
    temperature and humidity, on a level that steps up, then down, then trends; plus an
    identifier (``station``: a random id from a pool that keeps growing, no effect) and a
    numeric copy of the time (``day_index``), which a model may read as a trend."""
    rng = np.random.default_rng(seed)
    time = pd.date_range(START, periods=batches * 35 * 24, freq="h")
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
    level = 60 * np.where(days < 0.3 * days.max(), 1.0,
                          np.where(days < 0.65 * days.max(), 1.6, 1.1 + 0.002 * days))
    target = rng.poisson(level * profile * comfort)
    labels = [f"{(h - 1) % 12 + 1}{'am' if h < 12 else 'pm'}" for h in range(24)]
    pool = 20 + (days * 0.6).astype(int)  # new stations keep appearing
    station = (rng.random(len(time)) * pool).astype(int)
    return pd.DataFrame({
        "time": time, "hour": np.array(labels)[hour], "weekday": time.day_name().str[:3],
        "temperature": temperature.round(1), "humidity": humidity.round(0),
        "station": [f"ST{s:04d}" for s in station], "day_index": days.to_numpy().round(3),
        "target": target})


def friedman_drift(batches: int, seed: int) -> pd.DataFrame:
    """Friedman #1 (y = 10 sin(pi x1 x2) + 20 (x3 - .5)^2 + 10 x4 + 5 x5 + N(0, 1), x1..x10
    uniform, x6..x10 noise) whose relevant inputs change abruptly at 30%, 55% and 80% of the
    stream (new inputs take the roles, coefficients change sign and scale)."""
    rng = np.random.default_rng(seed)
    n = batches * 1000
    X = rng.random((n, 10))
    t = np.arange(n) / n
    regimes = [  # (inputs in the roles of x1..x5, scale of each term)
        ((0, 1, 2, 3, 4), (10, 20, 10, 5)),
        ((5, 6, 7, 8, 9), (10, 20, 10, 5)),
        ((0, 1, 2, 3, 4), (-10, 20, -10, 15)),
        ((3, 7, 1, 9, 0), (20, -20, 5, 10)),
    ]
    regime = np.searchsorted([0.3, 0.55, 0.8], t, side="right")
    y = np.empty(n)
    for r, ((a, b, c, d, e), (k1, k2, k3, k4)) in enumerate(regimes):
        m = regime == r
        x = X[m]
        y[m] = (k1 * np.sin(np.pi * x[:, a] * x[:, b]) + k2 * (x[:, c] - 0.5) ** 2
                + k3 * x[:, d] + k4 * x[:, e])
    y += rng.normal(0, 1, n)
    frame = pd.DataFrame(X.round(4), columns=[f"x{i}" for i in range(1, 11)])
    frame.insert(0, "time", _spread(batches, 1000, pd.Timedelta("1D")))
    frame["target"] = y.round(4)
    return frame


def rotating_hyperplane(batches: int, seed: int) -> pd.DataFrame:
    """Rotating hyperplane: y = [w . x > w . 1/2] on 10 uniform inputs, w drifting gradually
    (5 of its weights move by 0.01 per 100 rows, each reversing direction with probability
    0.1 per 100 rows), 5% label noise."""
    rng = np.random.default_rng(seed)
    n, d = batches * 1000, 10
    X = rng.random((n, d))
    w = rng.random(d)
    sigma = np.where(np.arange(d) < 5, 1.0, 0.0)
    y = np.empty(n, dtype=int)
    for start in range(0, n, 100):
        x = X[start:start + 100]
        y[start:start + 100] = (x @ w > 0.5 * w.sum()).astype(int)
        w = w + 0.01 * sigma
        flip = rng.random(d) < 0.1
        sigma = np.where(flip, -sigma, sigma)
    noise = rng.random(n) < 0.05
    y = np.where(noise, 1 - y, y)
    frame = pd.DataFrame(X.round(4), columns=[f"x{i}" for i in range(1, d + 1)])
    frame.insert(0, "time", _spread(batches, 1000, pd.Timedelta("1D")))
    frame["target"] = np.where(y == 1, "pos", "neg")
    return frame


def sea_thresholds(batches: int, seed: int) -> pd.DataFrame:
    """SEA concepts: y = [x1 + x2 <= theta] on three inputs uniform on [0, 10] (x3 irrelevant),
    theta switching abruptly 8 -> 9 -> 7 -> 9.5 at 25%, 50% and 75% of the stream, 10% label
    noise."""
    rng = np.random.default_rng(seed)
    n = batches * 1000
    X = rng.uniform(0, 10, (n, 3))
    t = np.arange(n) / n
    theta = np.array([8.0, 9.0, 7.0, 9.5])[np.searchsorted([0.25, 0.5, 0.75], t, side="right")]
    y = (X[:, 0] + X[:, 1] <= theta).astype(int)
    noise = rng.random(n) < 0.10
    y = np.where(noise, 1 - y, y)
    frame = pd.DataFrame(X.round(4), columns=["x1", "x2", "x3"])
    frame.insert(0, "time", _spread(batches, 1000, pd.Timedelta("1D")))
    frame["target"] = np.where(y == 1, "yes", "no")
    return frame


STREAMS: dict[str, Stream] = {s.name: s for s in [
    Stream("hourly", "regression", "35D", hourly_counts,
           "hourly Poisson counts, 840 rows per 35-day batch, level shifts, station id, "
           "day index"),
    Stream("friedman", "regression", "1D", friedman_drift,
           "Friedman #1, 1,000 rows per batch, abrupt changes at 30/55/80%"),
    Stream("hyperplane", "classification", "1D", rotating_hyperplane,
           "rotating hyperplane, 10 inputs, 1,000 rows per batch, gradual drift, 5% noise"),
    Stream("sea", "classification", "1D", sea_thresholds,
           "SEA thresholds, 1,000 rows per batch, abrupt drift at 25/50/75%, 10% noise"),
]}
