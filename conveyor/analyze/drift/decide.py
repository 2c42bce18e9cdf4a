"""Drift of a batch against the reference: every column scored by the registry's methods,
decided by the configured one, and the dataset alarm."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from conveyor.analyze.drift import methods
from conveyor.analyze.drift.methods import Kind
from conveyor.analyze.drift.profiles import CategoricalProfile, NumericProfile, Profile


@dataclass(frozen=True)
class BaseDriftSettings:
    """Which method decides per kind, and the dataset alarm's share; the methods'
    thresholds are added as fields by :func:`settings_class`.

    Tests (ks, chi2) flag a column when p < alpha and the effect (KS D, Cramér's V)
    exceeds min_effect: on thousands of rows p alone flags shifts too small to matter.
    """

    numeric_method: str = "ks"
    categorical_method: str = "chi2"
    share_threshold: float = 0.3  # share of drifted columns for the dataset alarm

    def __post_init__(self) -> None:
        for key, kind in (("numeric_method", "numeric"), ("categorical_method", "categorical")):
            valid = methods.names(cast(Kind, kind))
            if getattr(self, key) not in valid:
                raise ValueError(f"{key} {getattr(self, key)!r} is unknown; "
                                 f"choose one of {', '.join(valid)}")


@functools.cache
def _settings_class(registry: tuple[methods.DriftMethod, ...]) -> type[BaseDriftSettings]:
    fields = [(s.name, float, field(default=s.default)) for s in methods.settings(registry)]
    made = dataclasses.make_dataclass("DriftSettings", fields, bases=(BaseDriftSettings,),
                                      frozen=True)
    made.__doc__ = BaseDriftSettings.__doc__
    made.__module__ = __name__
    return cast(type[BaseDriftSettings], made)


def settings_class() -> type[BaseDriftSettings]:
    """DriftSettings for the registry as it is now: a field per method threshold."""
    return _settings_class(tuple(methods.METHODS.values()))


if TYPE_CHECKING:
    DriftSettings = BaseDriftSettings
else:
    DriftSettings = settings_class()


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


def _column(name: str, ref: Profile, cur: Profile, s: BaseDriftSettings) -> ColumnDrift | None:
    """Score a column profiled on both sides as the same kind; None when the kinds differ."""
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        if ref.edges != cur.edges:
            raise ValueError(f"column {name!r}: current profile's bin edges differ from the "
                             "reference's; profile the batch with the reference's edges")
        kind: Kind = "numeric"
        method = methods.METHODS[s.numeric_method]
    elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        kind, method = "categorical", methods.METHODS[s.categorical_method]
    else:
        return None
    scores = methods.scores(kind, ref, cur)
    p_value = scores[method.p_value] if method.p_value else None
    return ColumnDrift(name, kind, method.name, scores[method.statistic], p_value,
                       method.decide(scores, s), scores)


def compare(reference: dict[str, Profile], current: dict[str, Profile],
            settings: BaseDriftSettings | None = None) -> DriftReport:
    """Test every column profiled on both sides (of the same kind) and raise the dataset alarm.

    >>> from conveyor.analyze.drift.profiles import categorical_profile
    >>> ref = {"x": categorical_profile(["a"] * 50 + ["b"] * 50)}
    >>> report = compare(ref, {"x": categorical_profile(["b"] * 90 + ["c"] * 10)})
    >>> report.columns[0].drifted, report.share_drifted, report.drifted
    (True, 1.0, True)
    """
    s = settings or settings_class()()
    columns: list[ColumnDrift] = []
    for name, ref in reference.items():
        cur = current.get(name)
        column = _column(name, ref, cur, s) if cur is not None else None
        if column is not None:
            columns.append(column)
    share = sum(c.drifted for c in columns) / len(columns) if columns else 0.0
    return DriftReport(tuple(columns), share, bool(columns) and share >= s.share_threshold)
