"""Data drift of a batch against the reference window, from mergeable per-column profiles.

A batch is summarised per column by a profile stored as JSON (counts over fixed
bin edges for numbers, level counts otherwise); the reference window's profile
is the sum of its batches' profiles, so raw rows are never re-read. Bins are
right-closed, ``(edges[i], edges[i+1]]`` like an ECDF ``P(X <= x)``, so KS on
counts is the exact statistic evaluated at the edges.

``profiles`` builds and merges profiles, ``stats`` holds the statistics,
``methods`` the registry of drift methods (a new method is one entry there) and
``decide`` scores and decides a batch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.analyze.drift.decide import (
        BaseDriftSettings,
        ColumnDrift,
        DriftReport,
        DriftSettings,
        compare,
        settings_class,
    )
    from conveyor.analyze.drift.methods import METHODS, DriftMethod, Setting, register, unregister
    from conveyor.analyze.drift.profiles import (
        CategoricalProfile,
        NumericProfile,
        Profile,
        categorical_profile,
        edges_for,
        merge_profiles,
        merge_reference,
        numeric_profile,
        profile_frame,
        profile_from_json,
        profile_to_json,
    )
    from conveyor.analyze.drift.stats import (
        StatResult,
        align,
        chi_square,
        cramers_v,
        jensen_shannon,
        ks_from_counts,
        ks_samples,
        psi,
        spread,
        wasserstein_from_counts,
        wasserstein_normalised,
    )

# what each submodule gives the package; imported on first use (PEP 562), so reading the
# method registry (the config does) does not load pandas and scipy
_WHERE = {
    "decide": ["BaseDriftSettings", "ColumnDrift", "DriftReport", "DriftSettings", "compare",
                "settings_class"],
    "methods": ["METHODS", "DriftMethod", "Setting", "register", "unregister"],
    "profiles": ["CategoricalProfile", "NumericProfile", "Profile", "categorical_profile",
                 "edges_for", "merge_profiles", "merge_reference", "numeric_profile",
                 "profile_frame", "profile_from_json", "profile_to_json"],
    "stats": ["StatResult", "align", "chi_square", "cramers_v", "jensen_shannon",
              "ks_from_counts", "ks_samples", "psi", "spread", "wasserstein_from_counts",
              "wasserstein_normalised"],
}
_MODULE = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _MODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE[name]}"), name)


__all__ = [
    "METHODS", "BaseDriftSettings", "CategoricalProfile", "ColumnDrift", "DriftMethod",
    "DriftReport", "DriftSettings", "NumericProfile", "Profile", "Setting", "StatResult",
    "align", "categorical_profile", "chi_square", "compare", "cramers_v", "edges_for",
    "jensen_shannon", "ks_from_counts", "ks_samples", "merge_profiles", "merge_reference",
    "numeric_profile", "profile_frame", "profile_from_json", "profile_to_json", "psi",
    "register", "settings_class", "spread", "unregister", "wasserstein_from_counts",
    "wasserstein_normalised",
]
