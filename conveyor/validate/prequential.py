"""Prequential scoring: each new batch scores the models in service before any of
them learns from it (test, then train), and production's predictions on it are
compared with those on its own held-out rows (prediction drift).

Production is scored as it serves (router, champion and fallback: the score of record,
role ``production``), with its champion alone (role ``champion``) and its fallback alone
(role ``fallback``) beside it; the production row's metrics carry the figures per route
and each routing rule's evidence (:mod:`conveyor.validate.served`)."""

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
from conveyor.train.fallback import fallback_candidate
from conveyor.validate.served import Evidence, ServedScore, pooled, score_as_served

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
    batch as it serves; production's champion and fallback alone are scored beside it."""
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
            scored = served_score(model, task, metric, X, y)
            metrics = scored.served_metrics()
            rows.append({"batch_id": batch["id"], "version": model.version, "role": role,
                         "rows": len(data), "score": metrics[metric], "metrics": metrics})
            if role == "production" and scored.fallback is not None:
                # each with its configuration: the meta-learner learns from these races
                champion = {k: model.manifest.get(k) for k in ("family", "variant", "params")}
                for alone, kept, candidate in (
                        ("champion", scored.champion, champion),
                        ("fallback", scored.fallback, fallback_candidate(model))):
                    rows.append({"batch_id": batch["id"], "version": model.version,
                                 "role": alone, "rows": len(data), "score": kept[metric],
                                 "metrics": {**kept, "candidate": candidate}})
            log.info("prequential %s v%d on batch %d: %s = %.4g", role, model.version,
                     batch["id"], metric, metrics[metric] or float("nan"))
    return Prequential(rows, rows_drift)


def past_evidence(prequential: pd.DataFrame, batches: int,
                  before: int | None = None) -> Evidence:
    """The routing rules' evidence from production's prequential scores on the newest
    ``batches`` batches (those before batch ``before``, if given), added up rule by rule."""
    if prequential.empty:
        return {}
    production = prequential[prequential["role"] == "production"]
    if before is not None:
        production = production[production["batch_id"] < before]
    newest = production.sort_values("batch_id").tail(batches)
    return pooled(m.get("rules") if isinstance(m, dict) else None for m in newest["metrics"])


def served_score(model: LoadedModel, task: str, metric: str, X: pd.DataFrame,
                 y: np.ndarray) -> ServedScore:
    """A version scored as it serves: its router, champion and fallback with its rules."""
    return score_as_served(model.model, model.fallback, model.router, task, metric, X, y)


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
