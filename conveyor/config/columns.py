"""What to predict and from which columns: target, feature columns, engineered features."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from conveyor.config.base import Section


class TargetDerive(Section):
    source: str = Field(..., description="Column the target is computed from; it is never a "
                        "feature (it would leak the answer).")
    op: Literal["gt", "ge", "lt", "le", "eq", "ne", "in"] = Field(
        ..., description="Comparison of `source` with `value`: gt, ge, lt, le, eq, ne, in."
    )
    value: float | str | list[float | str] = Field(..., description="What `source` is compared "
                                                   "with (a list for `in`).")
    labels: tuple[str, str] = Field(("yes", "no"), description="Class names when the "
                                    "comparison holds / does not hold.")


class TargetConfig(Section):
    column: str = Field(..., description="Column to predict.")
    task: Literal["regression", "classification"] = Field(
        "regression", description="Kind of prediction."
    )
    derive: TargetDerive | None = Field(
        None, description="Compute the target from another column (e.g. delayed = arr_delay "
        "> 15) when batches are read; the raw batch stays as the source wrote it."
    )

    @property
    def source_column(self) -> str:
        """The column the source must have: the target, or what it is derived from."""
        return self.derive.source if self.derive else self.column


class ColumnsConfig(Section):
    features: list[str] | None = Field(
        None, description="Feature columns; null means every column but target, time and exclude."
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Columns never used as features (ids, values known only after the fact).",
    )
    categorical: list[str] | None = Field(
        None,
        description="Numeric-looking columns to treat as categories (codes); text columns "
        "always are.",
    )


class DerivedFeature(Section):
    name: str = Field(..., description="Name of the new column.")
    op: Literal["diff", "ratio", "log1p", "clip", "frequency", "time_of_day",
                "day_of_week"] = Field(
        ..., description="diff: a - b; ratio: a / b; log1p: sign(a)·log(1+|a|); clip: a to "
        "[lower, upper]; frequency: share of a's level in the training window; time_of_day: "
        "text such as 1pm or 13:30 as hours (13.0, 13.5); day_of_week: day names (Mon, "
        "Tuesday) as 0 (Monday) to 6."
    )
    columns: list[str] = Field(..., min_length=1, max_length=2, description="Input columns.")
    lower: float | None = Field(None, description="clip: lower bound.")
    upper: float | None = Field(None, description="clip: upper bound.")

    @model_validator(mode="after")
    def _arity(self) -> DerivedFeature:
        needed = 2 if self.op in ("diff", "ratio") else 1
        if len(self.columns) != needed:
            raise ValueError(f"op '{self.op}' takes {needed} column(s), got {self.columns}")
        return self


class FeaturesConfig(Section):
    calendar: list[Literal["hour", "weekday", "month", "day", "weekend", "holiday"]] = Field(
        default_factory=list,
        description="Parts of source.time_column to add as features (holiday: US federal).",
    )
    timezone: str = Field("UTC", description="IANA time zone the calendar parts are read in.")
    derived: list[DerivedFeature] = Field(
        default_factory=list, description="Columns computed from other columns."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'; use an IANA name such as "
                             "America/New_York") from None
        return value
