"""The model-drift watch: production's prequential scores, followed across the refits of
its configuration, against the hold-out score it was chosen with (Page-Hinkley)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from conveyor.config import ModelDriftConfig
from conveyor.validate.metrics import LOWER_IS_BETTER
from conveyor.validate.model_drift import PageHinkley, relative_loss


@dataclass(frozen=True)
class ModelAlarm:
    """Production's quality fell: the policy to apply and the reason, for people."""

    policy: str  # rollback | widen_search | retrain (config: validate.model_drift.policy)
    reason: str


def lineage(models: pd.DataFrame, version: int) -> list[int]:
    """``version`` and the versions it was refit or updated from, newest first, back to
    the one a search chose (or the oldest still listed): one configuration's history,
    which the model-drift detector follows across refreshes."""
    rows = models.set_index("version")
    chain = [version]
    parents = rows["parent_version"].astype("Float64")
    while rows.loc[chain[-1], "strategy"] in ("refit", "incremental"):
        parent = parents.loc[chain[-1]]
        if pd.isna(parent) or int(parent) not in rows.index or int(parent) in chain:
            break
        chain.append(int(parent))
    return chain


def watch_model(settings: ModelDriftConfig, metric: str, production: dict[str, Any] | None,
                models: pd.DataFrame, prequential: pd.DataFrame) -> ModelAlarm | None:
    """Run the detector over production's lineage; an alarm when it fires."""
    if not settings.enabled or production is None:
        return None
    chain = lineage(models, production["version"])
    root = models[models["version"] == chain[-1]].iloc[0]
    reference = ((root["metrics"] or {}).get("holdout") or {}).get(metric)
    series = prequential[(prequential["role"] == "production")
                         & prequential["version"].isin(chain)]
    if reference is None or series.empty:
        return None
    detector = PageHinkley(settings.delta, settings.threshold, settings.min_batches)
    lower = metric in LOWER_IS_BETTER
    scores = series.sort_values("batch_id")["score"]
    for score in scores:
        detector.update(relative_loss(float(score), float(reference), lower))
    if not detector.drift_detected:
        return None
    chosen = f"v{chain[-1]}'s promotion" + (
        f" (refit since as v{production['version']})" if len(chain) > 1 else "")
    reason = (f"model drift: production's {metric} went from {reference:.4g} at "
              f"{chosen} to {float(scores.iloc[-1]):.4g} (Page-Hinkley "
              f"{detector.statistic:.3g} > {settings.threshold}); policy {settings.policy}")
    return ModelAlarm(settings.policy, reason)
