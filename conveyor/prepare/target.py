"""A target derived from another column, declared in ``target.derive``."""

from __future__ import annotations

import operator

import numpy as np
import pandas as pd

from conveyor.config import TargetConfig

_OPS = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le,
        "eq": operator.eq, "ne": operator.ne}


def derive_target(frame: pd.DataFrame, target: TargetConfig) -> pd.DataFrame:
    """Return ``frame`` with the derived target column added (unchanged if not derived).

    A missing source value gives a missing target, never the negative class.

    >>> from conveyor.config import TargetDerive
    >>> spec = TargetConfig(column="late", task="classification",
    ...                     derive=TargetDerive(source="delay", op="gt", value=15))
    >>> derive_target(pd.DataFrame({"delay": [3.0, 40.0, None]}), spec)["late"].tolist()
    ['no', 'yes', nan]
    """
    spec = target.derive
    if spec is None or spec.source not in frame.columns:
        return frame
    values = frame[spec.source]
    if spec.op == "in":
        holds = values.isin(spec.value if isinstance(spec.value, list) else [spec.value])
    else:
        holds = _OPS[spec.op](values, spec.value)
    positive, negative = spec.labels
    label = np.where(holds.fillna(False).to_numpy(dtype=bool), positive, negative).astype(object)
    label[values.isna().to_numpy()] = np.nan
    return frame.assign(**{target.column: label})
