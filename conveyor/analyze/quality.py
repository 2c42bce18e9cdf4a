"""Data-quality checks of one batch against the thresholds in ``quality:``.

Each check yields a value, its threshold and a verdict (pass / warn / fail);
any fail quarantines the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from conveyor.config import QualityConfig


@dataclass(frozen=True)
class QualityCheck:
    """One measured check."""

    check: str
    value: float
    threshold: float | None
    verdict: str  # pass | warn | fail
    column: str | None = None


@dataclass(frozen=True)
class BatchQuality:
    """All checks of a batch and the verdict of the gate."""

    checks: list[QualityCheck] = field(default_factory=list)

    @property
    def failed(self) -> list[QualityCheck]:
        return [c for c in self.checks if c.verdict == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failed

    def reason(self) -> str:
        """Return a readable reason for quarantine ('' when the batch passed)."""
        return "; ".join(
            f"{c.check}{f'[{c.column}]' if c.column else ''} = {c.value:.4g} "
            f"(threshold {c.threshold:.4g})" for c in self.failed
        )


def _upper(check: str, value: float, threshold: float, fail: bool = True,
           column: str | None = None) -> QualityCheck:
    verdict = "pass" if value <= threshold else ("fail" if fail else "warn")
    return QualityCheck(check, value, threshold, verdict, column)


def duplicate_share(frame: pd.DataFrame) -> float:
    """Return the share of rows that repeat an earlier row exactly.

    >>> duplicate_share(pd.DataFrame({"a": [1, 1, 2, 1]}))
    0.5
    """
    return float(frame.duplicated().mean()) if len(frame) else 0.0


def assess(frame: pd.DataFrame, features: list[str], target: str,
           config: QualityConfig) -> BatchQuality:
    """Measure the batch and judge each check against its threshold."""
    rows = len(frame)
    checks = [QualityCheck("rows", float(rows), float(config.min_rows),
                           "pass" if rows >= config.min_rows else "fail")]
    if rows == 0:
        return BatchQuality(checks)
    checks.append(_upper("duplicate_share", duplicate_share(frame), config.max_duplicate_share))
    target_missing = float(frame[target].isna().mean()) if target in frame else 1.0
    checks.append(_upper("missing_target_share", target_missing, config.max_missing_target_share))
    for column in features:
        share = float(frame[column].isna().mean()) if column in frame else 1.0
        checks.append(_upper("missing_share", share, config.max_missing_share, fail=False,
                             column=column))
    return BatchQuality(checks)
