"""Data-quality checks of one batch, per batch and per column, and the cleaning they call for.

Each check yields a value, its thresholds and a verdict (pass / warn / fail).
Checks named in ``quality.quarantine_on`` quarantine the whole batch when they
fail; other failures become actions of a :class:`CleanPlan` (drop a column,
coerce a type, clip to a range) that is stored with the batch, so cleaning is
reproducible from the raw batch and the plan.

Ranges, quartiles and known categories come from a :class:`Reference`: a
summary of the batches the production model was trained on, never the raw
rows of those batches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from conveyor.config import CleanConfig, QualityConfig, Threshold


@dataclass(frozen=True)
class ColumnReference:
    """What a column looked like in the reference window."""

    kind: str  # numeric | categorical | datetime
    min: float | None = None
    max: float | None = None
    q25: float | None = None
    q75: float | None = None
    levels: frozenset[str] | None = None


@dataclass(frozen=True)
class Reference:
    """Per-column summary of the reference window (the production model's batches)."""

    columns: dict[str, ColumnReference]
    batch_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class QualityCheck:
    """One measured check."""

    check: str
    value: float
    threshold: float | None
    verdict: str  # pass | warn | fail
    column: str | None = None
    note: str | None = None


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
    quarantine_on: tuple[str, ...] = ("rows", "duplicate_share", "missing_target_share",
                                      "missing_columns")
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


def judge(check: str, value: float, limits: Threshold, column: str | None = None,
          note: str | None = None) -> QualityCheck:
    """Compare a value with warn/fail limits (above a limit is bad).

    >>> judge("duplicate_share", 0.05, Threshold(warn=0.01, fail=0.2)).verdict
    'warn'
    >>> judge("duplicate_share", 0.2, Threshold(warn=0.01, fail=0.2)).verdict
    'warn'
    """
    if value > limits.fail:
        return QualityCheck(check, value, limits.fail, "fail", column, note)
    if value > limits.warn:
        return QualityCheck(check, value, limits.warn, "warn", column, note)
    return QualityCheck(check, value, limits.warn, "pass", column, note)


def duplicate_share(frame: pd.DataFrame) -> float:
    """Return the share of rows that repeat an earlier row exactly.

    >>> duplicate_share(pd.DataFrame({"a": [1, 1, 2, 1]}))
    0.5
    """
    return float(frame.duplicated().mean()) if len(frame) else 0.0


# the largest number a model can use: scikit-learn's trees and forests work in float32
USABLE_LIMIT = float(np.finfo(np.float32).max)


def usable_numbers(numbers: pd.Series) -> pd.Series:
    """Return a mask of the numbers models can use: finite and within ±3.4e38.

    >>> usable_numbers(pd.Series([1.0, np.inf, -1e308, np.nan])).tolist()
    [True, False, False, False]
    """
    return pd.Series(np.abs(numbers.to_numpy(dtype=float)) <= USABLE_LIMIT, index=numbers.index)


def type_violations(values: pd.Series) -> pd.Series:
    """Return a mask of present values that are not usable numbers.

    Text that is not a number, and numbers no model can use (±inf, beyond ±3.4e38),
    are violations of a numeric feature.

    >>> type_violations(pd.Series(["1", "x", None, "2.5", "inf"])).tolist()
    [False, True, False, False, True]
    >>> type_violations(pd.Series([1.0, np.nan, np.inf, 1e308])).tolist()
    [False, False, True, True]
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.notna() & ~usable_numbers(values)
    text = values.astype("string").str.strip()
    present = values.notna() & (text != "")
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    return present & ~usable_numbers(numbers)


def valid_range(column: str, ref: ColumnReference | None,
                config: QualityConfig) -> tuple[float, float] | None:
    """Return the range a column's values should lie in: from config, else learned.

    >>> valid_range("a", ColumnReference("numeric", min=0.0, max=10.0), QualityConfig())
    (-1.0, 11.0)
    """
    if column in config.ranges:
        low, high = config.ranges[column]
        return float(low), float(high)
    if ref is None or ref.min is None or ref.max is None:
        return None
    margin = config.range_margin * (ref.max - ref.min)
    return ref.min - margin, ref.max + margin


def outlier_share(values: pd.Series, ref: ColumnReference, k: float) -> float | None:
    """Share of values beyond the reference's Tukey fences (q25 - k·IQR, q75 + k·IQR).

    >>> outlier_share(pd.Series([0.0, 1.0, 2.0, 50.0]), ColumnReference("numeric", q25=0.5,
    ...               q75=1.5), k=3.0)
    0.25
    """
    if ref.q25 is None or ref.q75 is None or ref.q75 <= ref.q25 or values.empty:
        return None
    iqr = ref.q75 - ref.q25
    outside = (values < ref.q25 - k * iqr) | (values > ref.q75 + k * iqr)
    return float(outside.mean())


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype("float64").dropna()


def assess(frame: pd.DataFrame, features: list[str], target: str, config: QualityConfig,
           clean: CleanConfig | None = None, reference: Reference | None = None,
           numeric: list[str] | None = None) -> BatchQuality:
    """Measure the batch, judge each check and decide the cleaning plan.

    ``numeric`` names the features meant to be numbers (type checks, ranges,
    outliers); by default those numeric in the reference or in the batch.
    """
    clean = clean or CleanConfig()
    rows = len(frame)
    gate = tuple(config.quarantine_on)
    checks = [QualityCheck("rows", float(rows), float(config.min_rows),
                           "pass" if rows >= config.min_rows else "fail")]
    if rows == 0:
        return BatchQuality(checks, gate, CleanPlan())
    checks.append(judge("duplicate_share", duplicate_share(frame), config.duplicate_share))
    target_missing = float(frame[target].isna().mean()) if target in frame else 1.0
    checks.append(judge("missing_target_share", target_missing, config.missing_target_share))

    ref_columns = reference.columns if reference else {}
    expected = [c for c in features if c in ref_columns] if reference else list(features)
    missing_columns = [c for c in expected if c not in frame.columns]
    checks.append(QualityCheck("missing_columns", float(len(missing_columns)), 0.0,
                               "fail" if missing_columns else "pass",
                               note=", ".join(missing_columns) or None))
    if reference:
        extra = [c for c in features if c not in ref_columns]
        checks.append(QualityCheck("extra_columns", float(len(extra)), 0.0,
                                   "warn" if extra else "pass", note=", ".join(extra) or None))
    if numeric is None:
        numeric = [c for c in features if c in frame.columns and (
            ref_columns.get(c, ColumnReference("")).kind == "numeric"
            or (c not in ref_columns and pd.api.types.is_numeric_dtype(frame[c])))]

    drop_columns, coerce, ranges = [], [], {}
    for column in features:
        if column not in frame.columns:
            continue
        values = frame[column]
        ref = ref_columns.get(column)
        missing = judge("missing_share", float(values.isna().mean()), config.missing_share,
                        column)
        checks.append(missing)
        if missing.verdict == "fail" and clean.drop_failed_columns:
            drop_columns.append(column)
        if column in numeric:
            bad = type_violations(values)
            violations = judge("type_violation_share", float(bad.mean()),
                               config.type_violation_share, column)
            checks.append(violations)
            if bad.any():
                coerce.append(column)
            numbers = _numbers(values)
            bounds = valid_range(column, ref, config)
            if bounds is not None and len(numbers):
                outside = float(((numbers < bounds[0]) | (numbers > bounds[1])).mean())
                fixed = column in config.ranges
                source = "fixed" if fixed else "learned"
                checks.append(judge("out_of_range_share", outside, config.out_of_range_share,
                                    column, note=f"{source} range [{bounds[0]:.4g}, "
                                                 f"{bounds[1]:.4g}]"))
                # only ranges the user declared are enforced: a learned range is what the
                # reference happened to see (seasons move it), so leaving it is a signal
                if outside > 0 and fixed:
                    ranges[column] = bounds
            if ref is not None:
                share = outlier_share(numbers, ref, config.iqr_k)
                if share is not None:
                    checks.append(judge("outlier_share", share, config.outlier_share, column))
        elif ref is not None and ref.levels is not None:
            present = values.dropna().astype(str)
            if len(present):
                unseen = float((~present.isin(ref.levels)).mean())
                checks.append(judge("unseen_category_share", unseen,
                                    config.unseen_category_share, column))
    plan = CleanPlan(drop_columns=tuple(drop_columns), coerce=tuple(coerce), ranges=ranges,
                     drop_duplicates=clean.drop_duplicates,
                     type_violations=clean.type_violations, out_of_range=clean.out_of_range)
    return BatchQuality(checks, gate, plan)


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
    return Reference(columns, ids)
