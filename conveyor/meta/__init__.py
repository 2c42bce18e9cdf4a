"""Meta-learning over all past evaluations: which hyperparameters and data properties
make a candidate rank well on a batch, and which candidates to try first."""

from conveyor.meta.learner import (
    Finding,
    MetaModel,
    explore_order,
    findings,
    fit_meta,
    meta_table,
    rank_candidates,
    to_json,
)

__all__ = ["Finding", "MetaModel", "explore_order", "findings", "fit_meta", "meta_table",
           "rank_candidates", "to_json"]
