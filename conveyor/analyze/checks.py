"""The registry of data-quality checks: what each measures, on what, and how it decides.

A check is one :class:`Check` in :data:`CHECKS`: a function that measures a
batch (or one of its columns) and judges the value against the config's
``quality`` section, returning a :class:`~conveyor.analyze.measures.QualityCheck`
with its verdict (pass / warn / fail), or None when it does not apply.
``quality.quarantine_on`` accepts the names of the checks that can fail, and
defaults to those marked ``quarantines``; ``calls_for`` names the cleaning
its result calls for (see :func:`conveyor.analyze.quality.clean_plan`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from conveyor.analyze.measures import (
    ColumnReference,
    QualityCheck,
    Reference,
    duplicate_share,
    judge,
    longest_run,
    outlier_share,
    present_numbers,
    type_violations,
    valid_range,
)
from conveyor.config import QualityConfig

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Batch:
    """What a check looks at: the rows, their roles, the quality section, the reference."""

    frame: pd.DataFrame
    features: list[str]
    target: str
    config: QualityConfig
    reference: Reference | None
    numeric: list[str]  # the features meant to be numbers

    @property
    def ref_columns(self) -> dict[str, ColumnReference]:
        return self.reference.columns if self.reference else {}


@dataclass(frozen=True)
class Check:
    """A quality check: ``measure(batch, column)`` runs once per batch (``on="batch"``,
    column None) or per feature present in the batch of the kind ``on`` names."""

    name: str
    measures: str  # what, in a sentence
    on: Literal["batch", "column", "numeric", "categorical"]
    measure: Callable[[Batch, str | None], QualityCheck | None]
    can_fail: bool = True  # so it may be named in quality.quarantine_on
    quarantines: bool = False  # in quality.quarantine_on by default
    empty_ok: bool = False  # runs on a batch without rows (the others do not)
    calls_for: Literal["drop_column", "coerce", "enforce_range"] | None = None

    def applies_to(self, batch: Batch, column: str) -> bool:
        """Whether this check runs on ``column`` (never, for a batch-level check)."""
        kind = "numeric" if column in batch.numeric else "categorical"
        return self.on in ("column", kind)


def _rows(b: Batch, _: str | None) -> QualityCheck:
    rows, least = len(b.frame), b.config.min_rows
    return QualityCheck("rows", float(rows), float(least), "pass" if rows >= least else "fail")


SHORT_BATCH = 0.5  # of a reference batch's median rows: fewer warns
STUCK_ROWS = 12  # a run of one value this long (and 5% of the batch) outside the range


def _short(b: Batch, _: str | None) -> QualityCheck | None:
    typical = b.reference.rows if b.reference else None
    if not typical:
        return None
    share = len(b.frame) / typical
    return QualityCheck("short_batch", share, SHORT_BATCH,
                        "warn" if share < SHORT_BATCH else "pass",
                        note=f"{len(b.frame)} rows; a reference batch has {typical:.0f}")


def _stuck(b: Batch, column: str | None) -> QualityCheck | None:
    ref = b.ref_columns.get(str(column))
    if ref is None or ref.min is None or ref.max is None:
        return None
    import pandas as pd

    numbers = pd.to_numeric(b.frame[column], errors="coerce")
    length, value = longest_run(numbers)
    outside = value is not None and not (ref.min <= value <= ref.max)
    stuck = outside and length >= max(STUCK_ROWS, 0.05 * len(b.frame))
    return QualityCheck("stuck_value", float(length), float(STUCK_ROWS),
                        "warn" if stuck else "pass", column,
                        note=f"{float(value):g} in {length} consecutive rows" if stuck else None)


def _duplicates(b: Batch, _: str | None) -> QualityCheck:
    return judge("duplicate_share", duplicate_share(b.frame), b.config.duplicate_share)


def _missing_target(b: Batch, _: str | None) -> QualityCheck:
    share = float(b.frame[b.target].isna().mean()) if b.target in b.frame else 1.0
    return judge("missing_target_share", share, b.config.missing_target_share)


def _missing_columns(b: Batch, _: str | None) -> QualityCheck:
    expected = [c for c in b.features if c in b.ref_columns] if b.reference else b.features
    missing = [c for c in expected if c not in b.frame.columns]
    return QualityCheck("missing_columns", float(len(missing)), 0.0,
                        "fail" if missing else "pass", note=", ".join(missing) or None)


def _extra_columns(b: Batch, _: str | None) -> QualityCheck | None:
    if not b.reference:
        return None
    extra = [c for c in b.features if c not in b.ref_columns]
    return QualityCheck("extra_columns", float(len(extra)), 0.0, "warn" if extra else "pass",
                        note=", ".join(extra) or None)


def _missing(b: Batch, column: str | None) -> QualityCheck:
    share = float(b.frame[column].isna().mean())
    return judge("missing_share", share, b.config.missing_share, column)


def _type_violations(b: Batch, column: str | None) -> QualityCheck:
    share = float(type_violations(b.frame[column]).mean())
    return judge("type_violation_share", share, b.config.type_violation_share, column)


def _out_of_range(b: Batch, column: str | None) -> QualityCheck | None:
    assert column is not None
    numbers = present_numbers(b.frame[column])
    bounds = valid_range(column, b.ref_columns.get(column), b.config)
    if bounds is None or not len(numbers):
        return None
    outside = float(((numbers < bounds[0]) | (numbers > bounds[1])).mean())
    source = "fixed" if column in b.config.ranges else "learned"
    return judge("out_of_range_share", outside, b.config.out_of_range_share, column,
                 note=f"{source} range [{bounds[0]:.4g}, {bounds[1]:.4g}]")


def _outliers(b: Batch, column: str | None) -> QualityCheck | None:
    ref = b.ref_columns.get(str(column))
    share = None if ref is None else outlier_share(present_numbers(b.frame[column]), ref,
                                                   b.config.iqr_k)
    return None if share is None else judge("outlier_share", share, b.config.outlier_share,
                                            column)


def _unseen(b: Batch, column: str | None) -> QualityCheck | None:
    ref = b.ref_columns.get(str(column))
    if ref is None or ref.levels is None:
        return None
    present = b.frame[column].dropna().astype(str)
    if not len(present):
        return None
    unseen = float((~present.isin(ref.levels)).mean())
    return judge("unseen_category_share", unseen, b.config.unseen_category_share, column)


CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("rows", "rows in the batch; fewer than quality.min_rows fails", "batch", _rows,
          quarantines=True, empty_ok=True),
    Check("short_batch", "rows as a share of a reference batch's median (under 0.5 warns)",
          "batch", _short, can_fail=False),
    Check("stuck_value", "longest run of one value; a value the reference never reached "
          "(outside its min..max) held for 12+ rows and 5% of the batch warns: a stuck "
          "sensor or a placeholder", "numeric", _stuck, can_fail=False),
    Check("duplicate_share", "share of rows repeating an earlier row", "batch", _duplicates,
          quarantines=True),
    Check("missing_target_share", "share of rows without a target", "batch", _missing_target,
          quarantines=True),
    Check("missing_columns", "features of the reference absent from the batch (any fails)",
          "batch", _missing_columns, quarantines=True),
    Check("extra_columns", "features the reference never had (any warns)", "batch",
          _extra_columns, can_fail=False),
    Check("missing_share", "share of missing values", "column", _missing,
          calls_for="drop_column"),
    Check("type_violation_share", "share of present values that are not usable numbers",
          "numeric", _type_violations, calls_for="coerce"),
    Check("out_of_range_share", "share of numbers outside the declared or learned range",
          "numeric", _out_of_range, calls_for="enforce_range"),
    Check("outlier_share", "share of numbers beyond the reference quartiles ± iqr_k·IQR",
          "numeric", _outliers),
    Check("unseen_category_share", "share of levels the reference never saw", "categorical",
          _unseen),
)}


def register(check: Check) -> None:
    """Add a check; assess runs it from then on."""
    if check.name in CHECKS:
        raise ValueError(f"quality check '{check.name}' is already registered")
    CHECKS[check.name] = check


def unregister(name: str) -> None:
    """Remove a check added by :func:`register`."""
    del CHECKS[name]


def quarantinable() -> list[str]:
    """The checks ``quality.quarantine_on`` may name: those that can fail.

    >>> quarantinable()[:4]
    ['rows', 'duplicate_share', 'missing_target_share', 'missing_columns']
    """
    return [c.name for c in CHECKS.values() if c.can_fail]


def default_quarantine() -> list[str]:
    """The checks that quarantine a batch unless the config says otherwise."""
    return [c.name for c in CHECKS.values() if c.quarantines]
