"""Data drift of a batch against the reference window, from mergeable per-column profiles.

A batch is summarised per column by a profile stored as JSON (counts over fixed
bin edges for numbers, level counts otherwise); the reference window's profile
is the sum of its batches' profiles, so raw rows are never re-read. Bins are
right-closed, ``(edges[i], edges[i+1]]`` like an ECDF ``P(X <= x)``, so KS on
counts is the exact statistic evaluated at the edges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import rel_entr

NUMERIC_METHODS = ("ks", "wasserstein", "psi", "js")
CATEGORICAL_METHODS = ("chi2", "psi", "js")


@dataclass(frozen=True)
class NumericProfile:
    """Counts of a numeric column's values in right-closed bins, and its missing count."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    missing: int = 0


@dataclass(frozen=True)
class CategoricalProfile:
    """Counts of a column's levels (as text), and its missing count."""

    counts: dict[str, int]
    missing: int = 0


Profile = NumericProfile | CategoricalProfile


class StatResult(NamedTuple):
    """A test statistic and its p-value."""

    statistic: float
    p_value: float


def _floats(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index):
        numbers = pd.to_numeric(pd.Series(values), errors="coerce")
        return numbers.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(values, dtype="float64")


def edges_for(values: Any, bins: int = 20) -> np.ndarray:
    """Return bin edges from reference values: unique quantiles inside ``±inf``.

    An extra edge just below the minimum gives values under the reference's
    range a bin of their own, as ``(max, inf]`` does above it.

    >>> edges_for(np.array([1.0, 2.0, 3.0, 4.0, np.nan]), bins=2).tolist()
    [-inf, 0.9999999999999999, 1.0, 2.5, 4.0, inf]
    >>> edges_for(np.array([5.0, 5.0]), bins=4)[1:-1].tolist()
    [4.999999999999999, 5.0]
    >>> edges_for(np.array([])).tolist()
    [-inf, inf]
    """
    x = _floats(values)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.array([-np.inf, np.inf])
    inner = np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1)))
    return np.concatenate(([-np.inf, np.nextafter(inner[0], -np.inf)], inner, [np.inf]))


def numeric_profile(values: Any, edges: Sequence[float] | np.ndarray) -> NumericProfile:
    """Count values per bin ``(edges[i], edges[i+1]]``; NaN/NA count as missing.

    >>> numeric_profile(pd.Series([0.5, 1.0, 2.0, None], dtype="Float64"), [-np.inf, 1.0, np.inf])
    NumericProfile(edges=(-inf, 1.0, inf), counts=(2, 1), missing=1)
    """
    e = np.asarray(edges, dtype="float64")
    if e.size < 2 or e[0] != -np.inf or e[-1] != np.inf or np.any(np.diff(e) <= 0):
        raise ValueError(f"bin edges must increase strictly from -inf to inf, got {e.tolist()}")
    x = _floats(values)
    present = x[~np.isnan(x)]
    index = np.clip(np.searchsorted(e, present, side="left") - 1, 0, e.size - 2)
    counts = np.bincount(index, minlength=e.size - 1)
    return NumericProfile(tuple(e.tolist()), tuple(counts.tolist()), int(x.size - present.size))


def categorical_profile(values: Any) -> CategoricalProfile:
    """Count each level as ``str(level)``; NA counts as missing.

    >>> categorical_profile(pd.Series(["a", "b", "a", None], dtype="string"))
    CategoricalProfile(counts={'a': 2, 'b': 1}, missing=1)
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype="object")
    counts: Counter[str] = Counter()
    for level, n in series.value_counts(dropna=True, sort=False).items():
        if n:  # a categorical dtype lists its unused categories with 0
            counts[str(level)] += int(n)
    return CategoricalProfile(dict(counts), int(series.isna().sum()))


def merge_profiles(profiles: Iterable[Profile]) -> Profile:
    """Sum the profiles of several batches (numeric ones must share their edges).

    >>> merge_profiles([CategoricalProfile({"a": 1}), CategoricalProfile({"a": 2, "b": 1}, 3)])
    CategoricalProfile(counts={'a': 3, 'b': 1}, missing=3)
    """
    items = list(profiles)
    if not items:
        raise ValueError("merge_profiles needs at least one profile, got none")
    missing = sum(p.missing for p in items)
    cats = [p for p in items if isinstance(p, CategoricalProfile)]
    nums = [p for p in items if isinstance(p, NumericProfile)]
    if cats and nums:
        raise ValueError("cannot merge numeric with categorical profiles of one column")
    if cats:
        total: Counter[str] = Counter()
        for c in cats:
            total.update(c.counts)
        return CategoricalProfile(dict(total), missing)
    for n in nums:
        if n.edges != nums[0].edges:
            raise ValueError(f"numeric profiles have different bin edges ({nums[0].edges} vs "
                             f"{n.edges}); profile every batch with the reference's edges")
    counts = np.sum([n.counts for n in nums], axis=0)
    return NumericProfile(nums[0].edges, tuple(int(c) for c in counts), missing)


def profile_to_json(p: Profile) -> dict[str, Any]:
    """Return a JSON-safe dict (infinite edges as the strings ``"-inf"``/``"inf"``).

    >>> profile_to_json(NumericProfile((-np.inf, 0.5, np.inf), (1, 2), 0))["edges"]
    ['-inf', 0.5, 'inf']
    """
    if isinstance(p, CategoricalProfile):
        return {"kind": "categorical", "counts": dict(p.counts), "missing": p.missing}
    edges = [e if np.isfinite(e) else ("inf" if e > 0 else "-inf") for e in p.edges]
    return {"kind": "numeric", "edges": edges, "counts": list(p.counts), "missing": p.missing}


def profile_from_json(d: dict[str, Any]) -> Profile:
    """Rebuild a profile from :func:`profile_to_json`'s dict (exact round trip).

    >>> profile_from_json({"kind": "numeric", "edges": ["-inf", "inf"], "counts": [3],
    ...                    "missing": 0})
    NumericProfile(edges=(-inf, inf), counts=(3,), missing=0)
    """
    if d["kind"] == "categorical":
        return CategoricalProfile({str(k): int(v) for k, v in d["counts"].items()},
                                  int(d["missing"]))
    return NumericProfile(tuple(float(e) for e in d["edges"]),
                          tuple(int(c) for c in d["counts"]), int(d["missing"]))


def merge_reference(stored: dict[str, list[dict[str, Any]]]) -> dict[str, Profile]:
    """Merge each column's stored batch profiles into one reference profile; a column
    that changed kind inside the window is left out (not comparable).

    >>> merge_reference({"x": [{"kind": "numeric", "edges": ["-inf", "inf"], "counts": [3],
    ...                         "missing": 0}] * 2})
    {'x': NumericProfile(edges=(-inf, inf), counts=(6,), missing=0)}
    """
    merged = {}
    for column, profiles in stored.items():
        try:
            merged[column] = merge_profiles(profile_from_json(p) for p in profiles)
        except ValueError:
            continue
    return merged


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


@dataclass(frozen=True)
class DriftSettings:
    """Which method decides per kind, and its threshold.

    Tests (ks, chi2) flag a column when p < alpha and the effect (KS D, Cramér's V)
    exceeds min_effect: on thousands of rows p alone flags shifts too small to matter.
    """

    numeric_method: str = "ks"
    categorical_method: str = "chi2"
    alpha: float = 0.01
    min_effect: float = 0.1
    psi_threshold: float = 0.2
    js_threshold: float = 0.1
    wasserstein_threshold: float = 0.1  # in reference IQRs
    share_threshold: float = 0.3  # share of drifted columns for the dataset alarm

    def __post_init__(self) -> None:
        for key, valid in (("numeric_method", NUMERIC_METHODS),
                           ("categorical_method", CATEGORICAL_METHODS)):
            if getattr(self, key) not in valid:
                raise ValueError(f"{key} {getattr(self, key)!r} is unknown; "
                                 f"choose one of {', '.join(valid)}")


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column: the deciding method's result, and every method's score."""

    column: str
    kind: str
    method: str
    statistic: float
    p_value: float | None
    drifted: bool
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift and the dataset-level alarm."""

    columns: tuple[ColumnDrift, ...]
    share_drifted: float
    drifted: bool

    def to_rows(self) -> list[dict[str, Any]]:
        """Return one dict per column for the ``drift`` table."""
        return [{"column": c.column, "kind": c.kind, "method": c.method,
                 "statistic": c.statistic, "p_value": c.p_value, "drifted": c.drifted,
                 "scores": dict(c.scores)} for c in self.columns]


def _numeric_scores(name: str, ref: NumericProfile, cur: NumericProfile) -> dict[str, float]:
    if ref.edges != cur.edges:
        raise ValueError(f"column {name!r}: current profile's bin edges differ from the "
                         "reference's; profile the batch with the reference's edges")
    ks = ks_from_counts(ref.counts, cur.counts)
    return {"ks": ks.statistic, "ks_p": ks.p_value,
            "wasserstein": wasserstein_from_counts(ref.edges, ref.counts, cur.counts),
            "wasserstein_norm": wasserstein_normalised(ref.edges, ref.counts, cur.counts),
            "psi": psi(ref.counts, cur.counts), "js": jensen_shannon(ref.counts, cur.counts)}


def _categorical_scores(ref: CategoricalProfile, cur: CategoricalProfile) -> dict[str, float]:
    chi = chi_square(ref.counts, cur.counts)
    r, c = align(ref.counts, cur.counts)
    v = cramers_v(chi.statistic, int(r.sum() + c.sum()), int(np.count_nonzero(r + c)))
    return {"chi2": chi.statistic, "chi2_p": chi.p_value, "cramers_v": v,
            "psi": psi(r, c), "js": jensen_shannon(r, c)}


def _decide(name: str, kind: str, method: str, scores: dict[str, float],
            s: DriftSettings) -> ColumnDrift:
    if method in ("ks", "chi2"):  # significant AND large enough to matter
        p, effect = scores[f"{method}_p"], scores["ks" if method == "ks" else "cramers_v"]
        return ColumnDrift(name, kind, method, scores[method], p,
                           p < s.alpha and effect > s.min_effect, scores)
    key = "wasserstein_norm" if method == "wasserstein" else method
    limit = {"wasserstein": s.wasserstein_threshold, "psi": s.psi_threshold,
             "js": s.js_threshold}[method]
    return ColumnDrift(name, kind, method, scores[key], None, scores[key] > limit, scores)


def compare(reference: dict[str, Profile], current: dict[str, Profile],
            settings: DriftSettings | None = None) -> DriftReport:
    """Test every column profiled on both sides (of the same kind) and raise the dataset alarm.

    >>> ref = {"x": categorical_profile(["a"] * 50 + ["b"] * 50)}
    >>> report = compare(ref, {"x": categorical_profile(["b"] * 90 + ["c"] * 10)})
    >>> report.columns[0].drifted, report.share_drifted, report.drifted
    (True, 1.0, True)
    """
    s = settings or DriftSettings()
    columns: list[ColumnDrift] = []
    for name, ref in reference.items():
        cur = current.get(name)
        if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
            columns.append(_decide(name, "numeric", s.numeric_method,
                                   _numeric_scores(name, ref, cur), s))
        elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
            columns.append(_decide(name, "categorical", s.categorical_method,
                                   _categorical_scores(ref, cur), s))
    share = sum(c.drifted for c in columns) / len(columns) if columns else 0.0
    return DriftReport(tuple(columns), share, bool(columns) and share >= s.share_threshold)


def profile_frame(frame: pd.DataFrame,
                  edges: dict[str, np.ndarray] | None = None) -> dict[str, Profile]:
    """Profile each column: numbers over ``edges`` (or edges from this frame), the rest
    by level; booleans are categorical, datetimes are skipped.

    >>> p = profile_frame(pd.DataFrame({"x": [1.0, 1.0], "b": [True, False]}))
    >>> p["x"].counts, p["b"].counts
    ((0, 2, 0), {'True': 1, 'False': 1})
    """
    profiles: dict[str, Profile] = {}
    for name, values in frame.items():
        dtype = values.dtype
        if (pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype)
                or pd.api.types.is_timedelta64_dtype(dtype)):
            continue
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            given = edges.get(str(name)) if edges is not None else None
            bins = edges_for(values) if given is None else given
            profiles[str(name)] = numeric_profile(values, bins)
        else:
            profiles[str(name)] = categorical_profile(values)
    return profiles
