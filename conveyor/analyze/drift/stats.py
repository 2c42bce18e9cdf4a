"""Drift statistics over two profiles' counts: KS, Wasserstein, PSI, Jensen-Shannon,
chi-square and Cramér's V."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import stats
from scipy.special import rel_entr

from conveyor.analyze.drift.profiles import _floats, numeric_profile


class StatResult(NamedTuple):
    """A test statistic and its p-value."""

    statistic: float
    p_value: float



def _shares(counts: Any) -> np.ndarray:
    c = np.asarray(counts, dtype="float64")
    return c / c.sum() if c.sum() > 0 else c


def ks_from_counts(ref_counts: Any, cur_counts: Any) -> StatResult:
    """Two-sample Kolmogorov–Smirnov test on counts over shared bins.

    D = max |F_ref - F_cur| at the bin edges; p from the law of D for
    en = n·m/(n+m) samples: ``kstwo`` as scipy's ``ks_2samp(method="asymp")`` up to
    en = 100, beyond that (where ``kstwo`` costs milliseconds) Kolmogorov's limit
    with Stephens' correction, ``kstwobign.sf((√en + 0.12 + 0.11/√en)·D)``, within
    0.012 of it (https://en.wikipedia.org/wiki/Kolmogorov-Smirnov_test; Stephens 1970).

    >>> round(ks_from_counts([2, 2, 0], [0, 2, 2]).statistic, 3)
    0.5
    """
    r, c = np.asarray(ref_counts), np.asarray(cur_counts)
    n, m = int(r.sum()), int(c.sum())
    if n == 0 or m == 0:
        return StatResult(0.0, 1.0)
    d = float(np.max(np.abs(np.cumsum(r) / n - np.cumsum(c) / m)))
    en = max(1.0, float(np.round(n * m / (n + m))))  # scipy's rounding; 1 vs 1 sample gives 0
    if en <= 100:
        p = stats.kstwo.sf(d, en)
    else:
        p = stats.kstwobign.sf((np.sqrt(en) + 0.12 + 0.11 / np.sqrt(en)) * d)
    return StatResult(d, float(np.clip(p, 0.0, 1.0)))


def ks_samples(a: Any, b: Any) -> StatResult:
    """KS test on raw samples: bins at every distinct value make the statistic exact.

    >>> ks_samples([1.0, 2.0, 3.0], [2.5, 3.5, 4.5]).statistic
    0.6666666666666667
    """
    x, y = _floats(a), _floats(b)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    e = np.unique(np.concatenate(([-np.inf, np.inf], x, y)))
    return ks_from_counts(numeric_profile(x, e).counts, numeric_profile(y, e).counts)


def _points(edges: Sequence[float] | np.ndarray) -> np.ndarray:
    low, high = np.asarray(edges[:-1], dtype="float64"), np.asarray(edges[1:], dtype="float64")
    return np.where(np.isinf(low), high, np.where(np.isinf(high), low, (low + high) / 2))


def wasserstein_from_counts(edges: Sequence[float], ref_counts: Any, cur_counts: Any) -> float:
    """First Wasserstein distance between binned distributions, mass at bin midpoints.

    W1 = ∫ |F_ref - F_cur| dx (https://en.wikipedia.org/wiki/Wasserstein_metric);
    an infinite outer bin sits at its finite edge.

    >>> wasserstein_from_counts([-np.inf, 0.0, 2.0, 4.0, np.inf], [0, 1, 0, 0], [0, 0, 1, 0])
    2.0
    """
    r, c = _shares(ref_counts), _shares(cur_counts)
    if len(edges) < 3 or r.sum() == 0 or c.sum() == 0:
        return 0.0
    gaps = np.diff(_points(edges))
    return float(np.sum(np.abs(np.cumsum(r) - np.cumsum(c))[:-1] * gaps))


def spread(edges: Sequence[float], counts: Any) -> float:
    """Interquartile range interpolated from a profile; its std when the IQR is 0.

    >>> spread([-np.inf, 0.0, 1.0, 2.0, 3.0, 4.0, np.inf], [0, 1, 1, 1, 1, 0])
    2.0
    """
    e, w = np.asarray(edges, dtype="float64"), _shares(counts)
    if e.size < 3 or w.sum() == 0:
        return 0.0
    cdf = np.cumsum(w)[:-1]  # F at each finite edge
    q25, q75 = np.interp([0.25, 0.75], cdf, e[1:-1])
    if q75 > q25:
        return float(q75 - q25)
    x = _points(e)
    return float(np.sqrt(np.sum(w * (x - np.sum(w * x)) ** 2)))


def wasserstein_normalised(edges: Sequence[float], ref_counts: Any, cur_counts: Any) -> float:
    """Wasserstein distance in units of the reference's :func:`spread` (inf if it is 0).

    >>> wasserstein_normalised([-np.inf, 0.0, 2.0, 4.0, np.inf], [0, 1, 1, 0], [0, 0, 1, 1])
    0.75
    """
    w, s = wasserstein_from_counts(edges, ref_counts, cur_counts), spread(edges, ref_counts)
    return w / s if s > 0 else (0.0 if w == 0 else float("inf"))


def psi(ref_counts: Any, cur_counts: Any, eps: float = 1e-4) -> float:
    """Population Stability Index Σ (c - r)·ln(c / r) over shares, empty bins set to eps.

    Yurdakul (2018), "Statistical properties of population stability index".

    >>> round(psi([50, 50], [25, 75]), 4)  # 0.25·ln(1.5) + 0.25·ln(2) = 0.25·ln(3)
    0.2747
    """
    r, c = _shares(ref_counts), _shares(cur_counts)
    if r.sum() == 0 or c.sum() == 0:
        return 0.0
    r, c = np.where(r > 0, r, eps), np.where(c > 0, c, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(ref_counts: Any, cur_counts: Any) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]): sqrt of the JS divergence.

    https://en.wikipedia.org/wiki/Jensen-Shannon_divergence

    >>> jensen_shannon([1, 0], [0, 1])
    1.0
    """
    r, c = _shares(ref_counts), _shares(cur_counts)
    if r.sum() == 0 or c.sum() == 0:
        return 0.0
    m = (r + c) / 2
    div = (np.sum(rel_entr(r, m)) + np.sum(rel_entr(c, m))) / (2 * np.log(2))
    return float(np.sqrt(np.clip(div, 0.0, 1.0)))


def align(ref_counts: dict[str, int], cur_counts: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return both level counts over the union of levels (reference's first).

    >>> align({"a": 2}, {"b": 1, "a": 3})
    (array([2, 0]), array([3, 1]))
    """
    levels = list(ref_counts) + [k for k in cur_counts if k not in ref_counts]
    return (np.array([ref_counts.get(k, 0) for k in levels], dtype="int64"),
            np.array([cur_counts.get(k, 0) for k in levels], dtype="int64"))


def chi_square(ref_counts: dict[str, int], cur_counts: dict[str, int]) -> StatResult:
    """Pearson's chi-square test of homogeneity on the 2 x k table of level counts.

    https://en.wikipedia.org/wiki/Pearson%27s_chi-squared_test; (0, 1) when degenerate.

    >>> chi_square({"a": 10, "b": 10}, {"a": 10, "b": 10})
    StatResult(statistic=0.0, p_value=1.0)
    """
    table = np.vstack(align(ref_counts, cur_counts)).astype("float64")
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or np.any(rows == 0):
        return StatResult(0.0, 1.0)
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return StatResult(statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1)))


def cramers_v(statistic: float, n: int, levels: int) -> float:
    """Cramér's V of a 2 x k table: sqrt(χ² / (n·(min(2, k) - 1))).

    https://en.wikipedia.org/wiki/Cram%C3%A9r%27s_V

    >>> cramers_v(25.0, 100, 3)
    0.5
    """
    return float(np.sqrt(statistic / (n * (min(2, levels) - 1)))) if n and levels > 1 else 0.0
