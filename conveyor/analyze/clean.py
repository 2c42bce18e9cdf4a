"""Cleaning of a batch before training, reproducible from the raw batch and its plan.

The raw batch in the raw store is never changed; cleaning returns a new frame
and counts what each action did.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from conveyor.analyze.quality import CleanPlan, type_violations, usable_numbers


@dataclass(frozen=True)
class CleanResult:
    """The cleaned rows and what each action did (rows dropped or values changed)."""

    frame: pd.DataFrame
    actions: dict[str, int]


def apply_plan(frame: pd.DataFrame, plan: CleanPlan, target: str) -> CleanResult:
    """Apply a batch's cleaning plan, then drop rows without a finite target.

    >>> import numpy as np
    >>> raw = pd.DataFrame({"x": ["1", "1", "oops", "99"], "y": [1.0, 1.0, 2.0, np.inf]})
    >>> plan = CleanPlan(coerce=("x",), ranges={"x": (0.0, 10.0)})
    >>> result = apply_plan(raw, plan, "y")
    >>> result.frame["x"].tolist(), result.actions["drop_missing_target"]
    ([1.0, nan], 1)
    >>> result.actions
    {'coerce_type': 1, 'clip_to_range': 1, 'drop_duplicates': 1, 'drop_missing_target': 1}
    """
    actions: dict[str, int] = {}
    frame = frame.copy()
    for column in plan.coerce:
        if column not in frame.columns:
            continue
        bad = type_violations(frame[column])
        if plan.type_violations == "drop_rows":
            frame = frame[~bad]
            actions["drop_type_violations"] = actions.get("drop_type_violations", 0) + int(
                bad.sum())
        else:
            actions["coerce_type"] = actions.get("coerce_type", 0) + int(bad.sum())
        numbers = pd.to_numeric(frame[column].astype("string").str.strip(),
                                errors="coerce").astype("float64")
        frame[column] = numbers.where(usable_numbers(numbers))  # ±inf, 1e308: missing
    if plan.out_of_range != "keep":
        for column, (low, high) in plan.ranges.items():
            if column not in frame.columns:
                continue
            values = pd.to_numeric(frame[column], errors="coerce")
            outside = (values < low) | (values > high)
            if plan.out_of_range == "drop_rows":
                frame = frame[~outside]
                key = "drop_out_of_range"
            else:
                frame[column] = values.clip(lower=low, upper=high)
                key = "clip_to_range"
            actions[key] = actions.get(key, 0) + int(outside.sum())
    if plan.drop_duplicates:
        keep = ~frame.duplicated()
        actions["drop_duplicates"] = int((~keep).sum())
        frame = frame[keep]
    if plan.drop_columns:
        actions["drop_column"] = len([c for c in plan.drop_columns if c in frame.columns])
        frame = frame.drop(columns=[c for c in plan.drop_columns if c in frame.columns])
    values = frame[target]
    bad = values.isna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        bad |= ~usable_numbers(values.astype(float).fillna(0.0))
    actions["drop_missing_target"] = int(bad.sum())
    return CleanResult(frame[~bad].reset_index(drop=True), actions)
