"""Search order: which candidates a budgeted search tries first, from everything the
past evaluations tell (the meta-learner) or, until it can tell, the cheapest first."""

from __future__ import annotations

import logging

import pandas as pd

from conveyor.config import SearchConfig
from conveyor.meta.features import batch_features, meta_evaluations
from conveyor.meta.learner import MetaModel, explore_order, fit_meta, meta_table, rank_candidates
from conveyor.store import Store
from conveyor.train.families import cost_rank
from conveyor.train.search import Candidate, full_rows
from conveyor.validate.metrics import LOWER_IS_BETTER

log = logging.getLogger(__name__)


def order_candidates(store: Store, candidates: list[Candidate], metric: str,
                     target: str, search: SearchConfig | None = None, seed: int = 0
                     ) -> list[Candidate]:
    """Order candidates for a budgeted search (see :func:`search_order`) from the store."""
    search = search or SearchConfig()
    evaluations = store.frame("evaluations")
    if not evaluations.empty:
        evaluations = meta_evaluations(evaluations, store.frame("prequential"),
                                       store.frame("models"))
    features = batch_features(store.frame("batches"), store.frame("column_stats"), target) \
        if search.warm_start and not evaluations.empty else pd.DataFrame()
    order, meta = search_order(evaluations, features, candidates, metric, search, seed)
    if meta is not None and meta.informative:
        log.info("candidates ordered by the meta-learner (forward R2 %.2f), %.0f%% of slots "
                 "exploring", meta.cv_r2, 100 * search.explore)
    return order


def search_order(evaluations: pd.DataFrame, features: pd.DataFrame,
                 candidates: list[Candidate], metric: str, search: SearchConfig, seed: int
                 ) -> tuple[list[Candidate], MetaModel | None]:
    """The meta-learner's most promising candidates first when it has shown it can tell
    (forward-validated) and ``search.warm_start`` is on, with a share ``search.explore`` of
    the slots drawn at random from the rest; else the cheapest first (past fit seconds of
    each family and variant, or a default order by family).

    ``evaluations`` are the past ones (:func:`meta_evaluations`); ``features``' last row
    describes the batch the search is for. Return the order and the meta-model (None
    when none was fitted).
    """
    if evaluations.empty:
        return sorted(candidates, key=lambda c: cost_rank(c.family)), None
    full = full_rows(evaluations)
    seconds = full.groupby(["family", "variant"])["fit_seconds"].mean().to_dict()
    cheapest = sorted(candidates, key=lambda c: seconds.get(
        (c.family, c.variant), 1e3 + cost_rank(c.family)))
    if not search.warm_start:
        return cheapest, None
    try:
        direction = "min" if metric in LOWER_IS_BETTER else "max"
        meta = fit_meta(meta_table(evaluations, features, direction))
        newest = {str(k): v for k, v in features.iloc[-1].drop("batch_id").items()} \
            if len(features) else {}
        order = rank_candidates(meta, [c.as_dict() for c in cheapest], newest)
    except (ValueError, KeyError) as exc:
        log.info("meta-learner could not order candidates: %s", exc)
        return cheapest, None
    if not meta.informative:
        return cheapest, meta
    return [cheapest[i] for i in explore_order(order, search.explore, seed)], meta
