"""Basic cleaning of a batch before training, reproducible from raw data + config.

The raw batch in the raw store is never changed; cleaning returns a new frame
and counts what each action removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from conveyor.config import CleanConfig


@dataclass(frozen=True)
class CleanResult:
    """The cleaned rows and how many rows each action removed."""

    frame: pd.DataFrame
    actions: dict[str, int]


def clean_for_training(frame: pd.DataFrame, target: str, config: CleanConfig) -> CleanResult:
    """Drop duplicates (if configured) and rows whose target is missing or not finite.

    >>> raw = pd.DataFrame({"x": [1, 1, 2, 3], "y": [1.0, 1.0, None, np.inf]})
    >>> result = clean_for_training(raw, "y", CleanConfig())
    >>> len(result.frame), result.actions
    (1, {'drop_duplicates': 1, 'drop_missing_target': 2})
    """
    actions: dict[str, int] = {}
    if config.drop_duplicates:
        keep = ~frame.duplicated()
        actions["drop_duplicates"] = int((~keep).sum())
        frame = frame[keep]
    values = frame[target]
    bad = values.isna()
    if pd.api.types.is_numeric_dtype(values):
        bad |= ~np.isfinite(values.astype(float).fillna(0.0))
    actions["drop_missing_target"] = int(bad.sum())
    return CleanResult(frame[~bad].reset_index(drop=True), actions)
