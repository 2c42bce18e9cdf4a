"""Incremental updates: a fitted pipeline learns from one batch the way its family's
registry entry says, and production is updated when that beats it on the newest rows."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from conveyor.config import Config
from conveyor.errors import ModelError
from conveyor.serve.bundle import LoadedModel
from conveyor.train.bounded import rebuilt
from conveyor.train.data import model_input, target_values
from conveyor.train.fallback import fallback_candidate
from conveyor.train.families import FAMILIES
from conveyor.train.trained import Origin, Trained
from conveyor.validate.checks import sanity_check
from conveyor.validate.decide import Validation
from conveyor.validate.interpret import explain_version
from conveyor.validate.metrics import is_better
from conveyor.validate.prequential import prediction_profile, served_score
from conveyor.validate.served import score_as_served

log = logging.getLogger(__name__)


def can_update(family: str) -> bool:
    """Whether ``family`` learns from a new batch without a refit (its registry entry
    has an incremental update).

    >>> can_update("sgd"), can_update("tree"), can_update("no such family")
    (True, False, False)
    """
    spec = FAMILIES.get(family)
    return spec is not None and spec.incremental is not None


def update_model(pipeline: Pipeline, family: str, X: Any, y: np.ndarray,
                 seed: int = 0, **options: Any) -> tuple[Pipeline, str]:
    """Return a copy of ``pipeline`` updated with one batch, and how it was done.

    The preprocessing steps are reused as fitted; only the model step learns,
    through the family's ``Family.incremental`` function (``options`` go to it).
    """
    spec = FAMILIES.get(family)
    if spec is None or spec.incremental is None:
        raise ModelError(f"family '{family}' cannot learn incrementally; it is refit instead")
    *prep, (name, model) = pipeline.steps
    Xt = Pipeline(prep).transform(X) if prep else X
    updated, how = spec.incremental(model, Xt, y, seed, **options)
    return rebuilt(pipeline, [*prep, (name, updated)], y), how


def incremental_update(config: Config, data: pd.DataFrame, production: LoadedModel,
                       window: list[dict[str, Any]], why: str, stages: Any) -> Trained | None:
    """Update production with the new batches' rows ``data``; None when the update
    is impossible or does not help.

    Validated honestly in time order: the update learns from the first part of
    the new rows and is compared with production on the rest; the registered
    model then learns from all of them.
    """
    family, metric, task = production.manifest["family"], config.metric, config.target.task
    if len(data) < 2 * config.quality.min_rows:
        return None
    X, y = model_input(data, production.features), target_values(config, data)
    cut = int(len(data) * (1 - config.validate_.holdout_share))
    with stages.stage("incremental"):
        try:
            trial, _ = update_model(production.model, family, X.iloc[:cut], y[:cut], config.seed)
        except ModelError as exc:
            log.info("incremental update impossible: %s", exc)
            return None
        # both as they would serve: production's router and fallback, with its rules
        challenger = score_as_served(trial, production.fallback, production.router, task,
                                     metric, X.iloc[cut:], y[cut:]).served
        incumbent = served_score(production, task, metric, X.iloc[cut:], y[cut:]).served
        if not is_better(metric, challenger.get(metric), incumbent.get(metric), 0.0):
            log.info("incremental trial %s %.4g vs production %.4g on the newest rows",
                     metric, challenger.get(metric) or float("nan"),
                     incumbent.get(metric) or float("nan"))
            return None
        start = time.perf_counter()
        final, how = update_model(production.model, family, X, y, config.seed)
        train_seconds = time.perf_counter() - start
        sanity = sanity_check(final, X, config.validate_.max_latency_ms)
    with stages.stage("interpret"):
        explanation = explain_version(final, X.iloc[cut:], y[cut:], task, config.seed)
    manifest = production.manifest
    return Trained(final, family, manifest.get("variant", "onehot"), manifest["params"],
                   Origin.INCREMENTAL, f"{why}; {how}", production.version, manifest["schema"],
                   manifest.get("engineered", []), window, len(data), train_seconds,
                   Validation(challenger, incumbent, 0.0), challenger, sanity, explanation,
                   prediction_profile(final, X.iloc[cut:]), production.fallback,
                   production.router, how=how,
                   fallback_candidate=fallback_candidate(production))
