"""Checks a challenger must pass before promotion, besides beating production.

Finite predictions on the hold-out and on a synthetic edge batch (a row with
every feature missing, a row of categories never seen), and a prediction
latency within budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

LATENCY_ROWS = 1000
UNSEEN = "(never seen before)"


@dataclass(frozen=True)
class SanityReport:
    """What the checks found; ``failures`` empty means the model may be promoted."""

    failures: list[str] = field(default_factory=list)
    latency_ms: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


def edge_batch(X: pd.DataFrame) -> pd.DataFrame:
    """Return two schema-valid hostile rows shaped like ``X``.

    Row 0 has every feature missing; row 1 has unseen levels in every text
    column and the median in every numeric column.

    >>> edge = edge_batch(pd.DataFrame({"a": [1.0, 3.0], "c": ["x", "y"]}))
    >>> edge["a"].tolist()[1], edge["c"].tolist()[1]
    (2.0, '(never seen before)')
    >>> bool(edge.iloc[0].isna().all())
    True
    """
    missing: dict[str, list[Any]] = {c: [np.nan] for c in X.columns}
    unseen: dict[str, list[Any]] = {}
    for column in X.columns:
        values = X[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            missing[column] = [pd.NaT]
            unseen[column] = [values.dropna().iloc[-1] if values.notna().any() else pd.NaT]
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            unseen[column] = [float(values.median()) if values.notna().any() else np.nan]
        else:
            unseen[column] = [UNSEEN]
    edge = pd.concat([pd.DataFrame(missing), pd.DataFrame(unseen)], ignore_index=True)
    for column in X.columns:
        if pd.api.types.is_datetime64_any_dtype(X[column]):
            edge[column] = pd.to_datetime(edge[column], utc=True)
        elif pd.api.types.is_numeric_dtype(X[column]):
            edge[column] = edge[column].astype("float64")
        else:
            edge[column] = edge[column].astype(object)
    return edge


def _finite(predictions: Any) -> bool:
    values = np.asarray(predictions)
    if not np.issubdtype(values.dtype, np.number):
        return bool(pd.notna(values).all())
    return bool(np.isfinite(values.astype(float)).all())


def sanity_check(model: Any, holdout: pd.DataFrame, budget_ms: float) -> SanityReport:
    """Run every check; a check that raises counts as failed, with the error named."""
    failures: list[str] = []
    try:
        if not _finite(model.predict(holdout)):
            failures.append("non-finite predictions on the hold-out")
    except Exception as exc:  # noqa: BLE001 - any failure to predict is a failed check
        failures.append(f"cannot predict the hold-out: {type(exc).__name__}: {exc}")
    try:
        if not _finite(model.predict(edge_batch(holdout))):
            failures.append("non-finite predictions on the edge batch (all-missing row, "
                            "unseen categories)")
    except Exception as exc:  # noqa: BLE001
        failures.append(f"cannot predict the edge batch: {type(exc).__name__}: {exc}")
    latency_ms = 0.0
    if len(holdout):
        rows = holdout.sample(n=LATENCY_ROWS, replace=True, random_state=0)
        start = time.perf_counter()
        try:
            model.predict(rows)
        except Exception:  # noqa: BLE001 - already reported above
            pass
        latency_ms = (time.perf_counter() - start) * 1000
        if latency_ms > budget_ms:
            failures.append(f"predicting {LATENCY_ROWS} rows took {latency_ms:.0f} ms, over "
                            f"the budget of {budget_ms:.0f} ms (validate.max_latency_ms)")
    return SanityReport(failures, latency_ms)


TOO_GOOD = 0.999  # hold-out R² or accuracy at or above this is rarely honest


def too_good(holdout: dict[str, Any], task: str) -> str | None:
    """Return a warning when a hold-out score is implausibly perfect (a leak, usually).

    >>> too_good({"r2": 0.99999, "mae": 0.01}, "regression")[:34]
    'hold-out R² 0.99999 is implausibly'
    >>> too_good({"r2": 0.93}, "regression") is None
    True
    """
    key, name = ("r2", "R²") if task == "regression" else ("accuracy", "accuracy")
    value = holdout.get(key)
    if value is None or not np.isfinite(value) or value < TOO_GOOD:
        return None
    return (f"hold-out {name} {value:.5f} is implausibly perfect: a column probably gives the "
            "target away (known only after the fact, or computed from it); check the "
            "features and add such columns to columns.exclude")
