"""What the quality checks measure: per-column reference summaries, shares of bad
values, valid ranges, and the verdict of a value against warn/fail limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.config import QualityConfig, Threshold

if TYPE_CHECKING:
    import pandas as pd

# numpy and pandas are imported by the functions that measure: the config reads the check
# registry (conveyor.analyze.checks) built on this module, and `conveyor status` must not
# wait for pandas.


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
    """What a new batch is compared with: the production model's training batches,
    summarised once per batch for the quality checks and the drift test alike."""

    columns: dict[str, ColumnReference]  # ranges, quartiles, levels: column stats merged
    batch_ids: tuple[int, ...] = ()
    rows: float | None = None  # median rows of a reference batch
    # drift profiles (conveyor.analyze.drift.Profile) per column, merged over the batches
    profiles: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QualityCheck:
    """One measured check."""

    check: str
    value: float
    threshold: float | None
    verdict: str  # pass | warn | fail
    column: str | None = None
    note: str | None = None



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
USABLE_LIMIT = 3.4028234663852886e38  # float(np.finfo(np.float32).max)


def usable_numbers(numbers: pd.Series) -> pd.Series:
    """Return a mask of the numbers models can use: finite and within ±3.4e38.

    >>> usable_numbers(pd.Series([1.0, np.inf, -1e308, np.nan])).tolist()
    [True, False, False, False]
    """
    import numpy as np
    import pandas as pd

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
    import pandas as pd

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


def present_numbers(values: pd.Series) -> pd.Series:
    """The values as floats, those that are not numbers dropped."""
    import pandas as pd

    return pd.to_numeric(values, errors="coerce").astype("float64").dropna()


def longest_run(values: pd.Series) -> tuple[int, Any]:
    """The longest run of one repeated present value, in row order: (length, value).

    >>> length, value = longest_run(pd.Series([1.0, 0.0, 0.0, 0.0, 2.0, None, 0.0]))
    >>> length, float(value)
    (3, 0.0)
    """
    present = values.dropna()
    if present.empty:
        return 0, None
    changes = present.ne(present.shift()).cumsum()
    lengths = changes.value_counts()
    label = lengths.idxmax()
    return int(lengths.max()), present[changes == label].iloc[0]
