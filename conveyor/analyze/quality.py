"""Data-quality checks of one batch, per batch and per column, and the cleaning they call for.

Each check of the registry in :mod:`conveyor.analyze.checks` yields a value, its
thresholds and a verdict (pass / warn / fail); :mod:`conveyor.analyze.measures`
holds what they measure.
Checks named in ``quality.quarantine_on`` quarantine the whole batch when they
fail; other failures become actions of a :class:`CleanPlan` (drop a column,
coerce a type, clip to a range) that is stored with the batch, so cleaning is
reproducible from the raw batch and the plan.

Ranges, quartiles and known categories come from a :class:`Reference`: a
summary of the batches the production model was trained on, never the raw
rows of those batches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from conveyor.analyze.checks import CHECKS, Batch, default_quarantine
from conveyor.analyze.measures import (
    USABLE_LIMIT,
    ColumnReference,
    QualityCheck,
    Reference,
    duplicate_share,
    judge,
    outlier_share,
    type_violations,
    usable_numbers,
    valid_range,
)
from conveyor.config import CleanConfig, QualityConfig

__all__ = ["USABLE_LIMIT", "BatchQuality", "CleanPlan", "ColumnReference", "QualityCheck",
           "Reference", "assess", "clean_plan", "duplicate_share", "judge", "outlier_share",
           "reference_from_stats", "type_violations", "usable_numbers", "valid_range"]


@dataclass(frozen=True)
class CleanPlan:
    """Cleaning actions decided for a batch (applied by ``analyze.clean.apply_plan``)."""

    drop_columns: tuple[str, ...] = ()
    coerce: tuple[str, ...] = ()
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    drop_duplicates: bool = True
    type_violations: str = "coerce"
    out_of_range: str = "clip"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CleanPlan:
        if not data:
            return cls()
        return cls(drop_columns=tuple(data.get("drop_columns", ())),
                   coerce=tuple(data.get("coerce", ())),
                   ranges={k: (float(v[0]), float(v[1]))
                           for k, v in data.get("ranges", {}).items()},
                   drop_duplicates=bool(data.get("drop_duplicates", True)),
                   type_violations=data.get("type_violations", "coerce"),
                   out_of_range=data.get("out_of_range", "clip"))


@dataclass(frozen=True)
class BatchQuality:
    """All checks of a batch, the gate's verdict and the cleaning plan."""

    checks: list[QualityCheck] = field(default_factory=list)
    quarantine_on: tuple[str, ...] = field(default_factory=lambda: tuple(default_quarantine()))
    plan: CleanPlan = field(default_factory=CleanPlan)

    @property
    def failed(self) -> list[QualityCheck]:
        return [c for c in self.checks if c.verdict == "fail"]

    @property
    def blocking(self) -> list[QualityCheck]:
        return [c for c in self.failed if c.check in self.quarantine_on]

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def verdict(self) -> str:
        """pass, cleaned (failures handled by cleaning) or quarantined."""
        if self.blocking:
            return "quarantined"
        plan = self.plan
        if plan.drop_columns or plan.coerce or plan.ranges:
            return "cleaned"
        return "pass"

    def reason(self) -> str:
        """Return a readable reason for quarantine ('' when the batch passed)."""
        return "; ".join(_describe(c) for c in self.blocking)

    def warnings(self) -> list[str]:
        return [_describe(c) for c in self.checks if c.verdict == "warn"]


def _describe(c: QualityCheck) -> str:
    where = f"[{c.column}]" if c.column else ""
    limit = "" if c.threshold is None else f" (threshold {c.threshold:.4g})"
    return f"{c.check}{where} = {c.value:.4g}{limit}"


def _numeric(frame: pd.DataFrame, features: list[str], reference: Reference | None) -> list[str]:
    """The features meant to be numbers: numeric in the reference, or (new) in the batch."""
    ref_columns = reference.columns if reference else {}
    return [c for c in features if c in frame.columns and (
        ref_columns.get(c, ColumnReference("")).kind == "numeric"
        or (c not in ref_columns and pd.api.types.is_numeric_dtype(frame[c])))]


def assess(frame: pd.DataFrame, features: list[str], target: str, config: QualityConfig,
           clean: CleanConfig | None = None, reference: Reference | None = None,
           numeric: list[str] | None = None) -> BatchQuality:
    """Run every registered check on the batch and decide the cleaning plan.

    ``numeric`` names the features meant to be numbers (type checks, ranges,
    outliers); by default those numeric in the reference or in the batch.
    """
    gate = tuple(config.quarantine_on)
    rows = len(frame)
    batch = Batch(frame, list(features), target, config, reference,
                  _numeric(frame, features, reference) if numeric is None else numeric)
    checks = [check.measure(batch, None) for check in CHECKS.values()
              if check.on == "batch" and (rows or check.empty_ok)]
    if rows == 0:
        return BatchQuality([c for c in checks if c is not None], gate, CleanPlan())
    checks += [check.measure(batch, column) for column in features if column in frame.columns
               for check in CHECKS.values() if check.applies_to(batch, column)]
    done = [c for c in checks if c is not None]
    return BatchQuality(done, gate, clean_plan(done, config, clean or CleanConfig()))


def clean_plan(checks: Iterable[QualityCheck], config: QualityConfig,
               clean: CleanConfig) -> CleanPlan:
    """The cleaning the checks call for: drop features that failed (when
    ``clean.drop_failed_columns``), coerce those with type violations, and enforce the
    ranges declared in ``quality.ranges`` that values left; a learned range is what the
    reference happened to see (seasons move it), so leaving it is only reported."""
    drop_columns, coerce, ranges = [], [], {}
    for c in checks:
        action = CHECKS[c.check].calls_for if c.check in CHECKS else None
        if c.column is None or action is None:
            continue
        if action == "drop_column" and c.verdict == "fail" and clean.drop_failed_columns:
            drop_columns.append(c.column)
        elif action == "coerce" and c.value > 0:
            coerce.append(c.column)
        elif action == "enforce_range" and c.value > 0 and c.column in config.ranges:
            ranges[c.column] = valid_range(c.column, None, config)
    return CleanPlan(drop_columns=tuple(drop_columns), coerce=tuple(coerce),
                     ranges={k: v for k, v in ranges.items() if v is not None},
                     drop_duplicates=clean.drop_duplicates,
                     type_violations=clean.type_violations, out_of_range=clean.out_of_range)


def reference_from_stats(stats: pd.DataFrame,
                         levels: dict[str, set[str]] | None = None) -> Reference:
    """Merge per-batch column statistics into a reference summary.

    Minimum and maximum merge exactly; quartiles are the row-weighted mean of the
    batches' quartiles (an approximation that needs no raw rows).
    """
    columns: dict[str, ColumnReference] = {}
    levels = levels or {}
    for column, part in stats.groupby("column", sort=False):
        kinds = part["dtype"].mode()
        kind = str(kinds.iloc[0]) if len(kinds) else "categorical"
        if kind == "numeric":
            weights = part["rows"].astype(float) if "rows" in part else None

            def mean(name: str, p: pd.DataFrame = part, w: Any = weights) -> float | None:
                values = p[name].astype(float)
                ok = values.notna()
                if not ok.any():
                    return None
                if w is None:
                    return float(values[ok].mean())
                return float(np.average(values[ok], weights=w[ok]))

            columns[str(column)] = ColumnReference(
                "numeric",
                min=float(part["min"].min()) if part["min"].notna().any() else None,
                max=float(part["max"].max()) if part["max"].notna().any() else None,
                q25=mean("q25"), q75=mean("q75"))
        else:
            known = levels.get(str(column))
            columns[str(column)] = ColumnReference(
                kind, levels=frozenset(known) if known is not None else None)
    ids = tuple(int(i) for i in stats["batch_id"].unique()) if "batch_id" in stats else ()
    rows = (float(stats.groupby("batch_id")["rows"].max().median())
            if {"batch_id", "rows"} <= set(stats.columns) and len(stats) else None)
    return Reference(columns, ids, rows=rows)
