"""The robust fallback and the router that decides which rows it answers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from conveyor.config import RoutingConfig
from conveyor.serve.bundle import LoadedModel
from conveyor.serve.routing import Router
from conveyor.train.families import FAMILIES
from conveyor.train.search import Evaluation, FitSpec, single_threaded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fallback:
    """A fallback model with its router (both None when there is none), and where they
    came from when not from this window's search."""

    model: Any = None
    router: Any = None
    note: str = ""
    unseen_holdout: bool = True  # not fitted on the newest rows: fair to score on them
    candidate: dict[str, Any] | None = None  # its family, variant and params, when known


def fit_router(settings: RoutingConfig, X: pd.DataFrame, spec: FitSpec) -> Router:
    """The router learnt from the rows ``X`` (the champion's training rows, in time order):
    every rule routes until :func:`conveyor.validate.served.decide_rules` decides."""
    return Router(settings.max_missing_share, settings.range_margin,
                  settings.unseen_categories, settings.anomaly, settings.contamination,
                  spec.seed).fit(X[[c for c in X.columns if c in spec.roles.features]])


def fit_fallback(settings: RoutingConfig, evaluations: list[Evaluation], best: Evaluation,
                 spec: FitSpec, X: pd.DataFrame, y: np.ndarray,
                 production: LoadedModel | None = None) -> Fallback:
    """Fit the robust fallback (the best other candidate that takes missing values and
    outliers natively) and the router that decides which rows it answers.

    A candidate the search scored on the full rows comes with its fit on the last split's
    training rows (with the holdout scheme, the window before the new batch): that fit is
    the fallback, with no second one on the window. When none did (the robust candidates
    stopped at a cheaper rung), ``production``'s fallback and router are kept if it has
    them (it reads the same columns): a fallback fitted on the window would cost as much
    as the search's full rows."""
    if not settings.enabled:
        return Fallback()
    robust = [e for e in evaluations if FAMILIES[e.candidate.family].takes_nan
              and e.candidate != best.candidate and e.score is not None]
    if not robust:
        log.info("no robust candidate besides the champion: no fallback for this version")
        return Fallback()
    if robust[0].model is None and production is not None \
            and production.fallback is not None:
        log.info("fallback and router kept from production v%d", production.version)
        return Fallback(production.fallback, production.router,
                        f"; fallback and router kept from v{production.version}",
                        candidate=fallback_candidate(production))
    choice = robust[0].candidate  # evaluations are sorted best first
    model = robust[0].model
    if model is None:
        model = single_threaded(spec.pipeline(choice).fit(X, y))
    log.info("fallback: %s/%s %s (%s)", choice.family, choice.variant, choice.params,
             "its fit in the search" if robust[0].model is not None else "fitted on the window")
    return Fallback(model, fit_router(settings, X, spec),
                    unseen_holdout=robust[0].model is not None, candidate=choice.as_dict())


def fallback_candidate(model: LoadedModel) -> dict[str, Any] | None:
    """The configuration of ``model``'s fallback as its manifest records it (None for
    versions registered before it was recorded, or with no fallback)."""
    entry = model.manifest.get("fallback")
    candidate = entry.get("candidate") if isinstance(entry, dict) else None
    return candidate if isinstance(candidate, dict) else None
