"""The data-quality gate and the cleaning it calls for."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from conveyor.config.base import Section


def _default_quarantine() -> list[str]:
    """The checks marked to quarantine in the registry (imported late: it reads this
    section)."""
    from conveyor.analyze.checks import default_quarantine

    return default_quarantine()


class Threshold(Section):
    """A check's limits: above ``warn`` it warns, above ``fail`` it fails."""

    warn: float = Field(..., ge=0, description="Warn above this value.")
    fail: float = Field(..., ge=0, description="Fail above this value.")

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.warn > self.fail:
            raise ValueError(f"warn ({self.warn}) must not exceed fail ({self.fail})")
        return self


class QualityConfig(Section):
    min_rows: int = Field(20, ge=1, description="Fewer rows than this fails the batch.")
    missing_share: Threshold = Field(
        Threshold(warn=0.2, fail=0.5),
        description="Per feature: share of missing values (a failing feature is left out of "
        "training on that window).",
    )
    duplicate_share: Threshold = Field(
        Threshold(warn=0.01, fail=0.2), description="Share of rows repeating an earlier row."
    )
    missing_target_share: Threshold = Field(
        Threshold(warn=0.1, fail=0.5), description="Share of rows without a target."
    )
    type_violation_share: Threshold = Field(
        Threshold(warn=0.0, fail=0.05),
        description="Per numeric feature: share of values that are not numbers.",
    )
    out_of_range_share: Threshold = Field(
        Threshold(warn=0.01, fail=0.3),
        description="Per numeric feature: share outside quality.ranges (enforced by "
        "clean.out_of_range) or else the reference's range + margin (reported only).",
    )
    outlier_share: Threshold = Field(
        Threshold(warn=0.05, fail=0.5),
        description="Per numeric feature: share beyond the reference quartiles ± iqr_k·IQR.",
    )
    unseen_category_share: Threshold = Field(
        Threshold(warn=0.01, fail=0.5),
        description="Per categorical feature: share of levels the reference never saw.",
    )
    range_margin: float = Field(
        0.1, ge=0, description="Learned ranges are widened by this share of their width."
    )
    iqr_k: float = Field(3.0, gt=0, description="Outlier fence in interquartile ranges.")
    ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Fixed valid ranges per column, e.g. {age: [0, 120]}."
    )
    quarantine_on: list[str] = Field(
        default_factory=_default_quarantine,
        description="Checks whose failure quarantines the whole batch; other failures are "
        "cleaned.",
    )

    @field_validator("quarantine_on")
    @classmethod
    def _known_checks(cls, value: list[str]) -> list[str]:
        from conveyor.analyze.checks import quarantinable

        known = quarantinable()
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"unknown check(s) {unknown}; choose from {known}")
        return value


class CleanConfig(Section):
    drop_duplicates: bool = Field(True, description="Drop exact duplicate rows before training.")
    type_violations: Literal["coerce", "drop_rows"] = Field(
        "coerce", description="Values that are not numbers in a numeric feature: made missing "
        "(coerce) or their rows dropped."
    )
    out_of_range: Literal["clip", "drop_rows", "keep"] = Field(
        "clip", description="Values outside a range declared in quality.ranges: clipped to it, "
        "rows dropped, or kept."
    )
    drop_failed_columns: bool = Field(
        True, description="Leave features that fail missing_share out of training."
    )
