"""Prequential scoring: each new batch scores the models in service before any of
them learns from it (test, then train), and production's predictions on it are
compared with those on its own held-out rows (prediction drift)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from conveyor.analyze import drift
from conveyor.analyze.batch_drift import drift_row
from conveyor.serve.bundle import LoadedModel
from conveyor.train.data import BatchFrames, model_input, target_values
from conveyor.validate.metrics import score_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prequential:
    """One update's prequential rows (per batch and role) and prediction-drift rows."""

    scores: list[dict[str, Any]]
    prediction_drift: list[dict[str, Any]]


def score_new_batches(frames: BatchFrames, batches: list[dict[str, Any]],
                      in_service: dict[str, LoadedModel],
                      settings: drift.DriftSettings) -> Prequential:
    """Score each model in service (by role: production, baseline, staging) on each new
    batch; production's fallback is scored beside it."""
    config = frames.config
    metric, task = config.metric, config.target.task
    rows: list[dict[str, Any]] = []
    rows_drift: list[dict[str, Any]] = []
    for batch in batches:
        data = frames.window([batch])
        if data.empty:
            continue
        y = target_values(config, data)
        for role, model in in_service.items():
            X = model_input(data, model.features)
            if role == "production" and model.manifest.get("prediction_profile"):
                rows_drift.extend(prediction_drift(model, X, batch["id"], settings))
            metrics = score_model(model.model, task, X, y)
            rows.append({"batch_id": batch["id"], "version": model.version, "role": role,
                         "rows": len(data), "score": metrics[metric], "metrics": metrics})
            if role == "production" and model.fallback is not None:
                kept = score_model(model.fallback, task, X, y)
                rows.append({"batch_id": batch["id"], "version": model.version,
                             "role": "fallback", "rows": len(data),
                             "score": kept[metric], "metrics": kept})
            log.info("prequential %s v%d on batch %d: %s = %.4g", role, model.version,
                     batch["id"], metric, metrics[metric] or float("nan"))
    return Prequential(rows, rows_drift)


def prediction_profile(model: Any, X: pd.DataFrame,
                       edges: np.ndarray | None = None) -> dict[str, Any]:
    """The distribution of a model's predictions on ``X``, as a JSON-safe drift profile."""
    predictions = pd.DataFrame({"prediction": model.predict(X)})
    given = None if edges is None else {"prediction": edges}
    return drift.profile_to_json(drift.profile_frame(predictions, given)["prediction"])


def prediction_drift(model: LoadedModel, X: pd.DataFrame, batch_id: int,
                     settings: drift.DriftSettings) -> list[dict[str, Any]]:
    """Compare a model's predictions on a new batch with those on its held-out rows."""
    reference = drift.profile_from_json(model.manifest["prediction_profile"])
    edges = np.asarray(reference.edges) if isinstance(reference, drift.NumericProfile) else None
    current = drift.profile_from_json(prediction_profile(model.model, X, edges))
    report = drift.compare({"prediction": reference}, {"prediction": current}, settings)
    return [drift_row({"batch_id": batch_id, "role": "prediction", **r})
            for r in report.to_rows()]
