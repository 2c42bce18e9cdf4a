"""What to predict and from which columns: target, feature columns, engineered features."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from conveyor.config.base import Section
from conveyor.config.source import span_seconds


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
    label_delay: str | None = Field(
        None, description="How long after a row's time its target is known; history features "
        "of the target end this long before a row. null: one stream.window."
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


class HistoryFeature(Section):
    column: str = Field(..., description="Stream column (the target too) whose past is read.")
    by: list[str] = Field(default_factory=list, description="Key columns: only past rows "
                          "with the same values count (empty: the whole stream).")
    lag: str | None = Field(None, description="The value at the same key's latest row at or "
                            "before this long ago (e.g. 7D: the same hour last week).")
    window: str | None = Field(None, description="Aggregate the past rows of this span (e.g. "
                               "3h, 7D) with `stat`; it ends `delay` before the row's time.")
    stat: Literal["mean", "median", "std", "count", "last", "ewm"] = Field(
        "mean", description="Window statistic; ewm: exponentially weighted mean with a "
        "half-life of a quarter of the window.")
    min_count: int = Field(1, ge=1, description="Fewer past rows in the window than this: "
                           "the feature is missing.")
    delay: str | None = Field(None, description="How long before a row its past ends; null: "
                              "target.label_delay for the target, nothing for other columns.")
    tolerance: str | None = Field(None, description="lag: how much older than the lag the "
                                  "value may be; null: the lag itself.")
    name: str | None = Field(None, description="Name of the new column; null: built from the "
                             "settings, e.g. cnt_lag_7D or arr_delay_mean_7D_by_carrier.")

    @model_validator(mode="after")
    def _one_reach(self) -> HistoryFeature:
        if (self.lag is None) == (self.window is None):
            raise ValueError(f"history feature of '{self.column}': give exactly one of lag "
                             "and window")
        for key in ("lag", "window", "delay", "tolerance"):
            value = getattr(self, key)
            if value is not None and not positive_span(value):
                raise ValueError(f"history feature of '{self.column}': {key} '{value}' is not "
                                 "a positive time span such as 3h, 7D or 30min")
        return self

    @property
    def output(self) -> str:
        """The column it adds."""
        if self.name:
            return self.name
        by = f"_by_{'_'.join(self.by)}" if self.by else ""
        if self.lag is not None:
            return f"{self.column}_lag_{self.lag}{by}"
        return f"{self.column}_{self.stat}_{self.window}{by}"


def positive_span(value: str) -> bool:
    """Whether ``value`` is a positive fixed time span (:func:`span_seconds`)."""
    try:
        return span_seconds(value) > 0
    except ValueError:
        return False


class FeaturesConfig(Section):
    calendar: list[Literal["hour", "weekday", "month", "day", "weekend", "holiday"]] = Field(
        default_factory=list,
        description="Parts of source.time_column to add as features (holiday: US federal).",
    )
    timezone: str = Field("UTC", description="IANA time zone the calendar parts are read in.")
    derived: list[DerivedFeature] = Field(
        default_factory=list, description="Columns computed from other columns."
    )
    history: list[HistoryFeature] = Field(
        default_factory=list, description="Lags and rolling aggregates of the stream's own "
        "past, point-in-time correct: a row sees only earlier batches' rows, and the target "
        "only target.label_delay before its time (docs/your-data.md)."
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
