"""Mergeable per-column profiles: counts over fixed bin edges for numbers, level counts
otherwise; a window's profile is the sum of its batches' profiles."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


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
