"""Whether a search's choice keeps the history features: they must earn their place.

History features (:mod:`conveyor.prepare.history`) can help a lot (a count's value a
week ago) or hurt: a lag of the target carries the old level for a window after an
abrupt change, and a noisy lag invites a model to fit noise. So after a search, each
family's best candidate is scored again on the same splits without them, and they stay
only when the search's choice beats the choice among those by more than
``train.search.cost_tolerance`` (a model that reads fewer columns is the simpler one,
as a cheaper family is in the search). Refits keep
their parent's choice (:func:`follow_parent`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from conveyor.config import Config
from conveyor.train.data import Design
from conveyor.train.search import (
    Evaluation,
    FitSpec,
    Folds,
    cheapest_within,
    evaluate_candidate,
)
from conveyor.validate.metrics import is_better, sort_key
from conveyor.validate.schemes import Split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistoryChoice:
    """The design and evaluation kept, and what was said about it."""

    design: Design
    best: Evaluation
    spec: FitSpec
    note: str = ""

    @property
    def dropped(self) -> bool:
        return bool(self.note)


def history_columns(config: Config, design: Design) -> list[str]:
    """The history features among a design's inputs."""
    names = {h.output for h in config.features.history}
    return [c for c in design.inputs if c in names]


def follow_parent(config: Config, design: Design, parent_features: list[str]) -> Design:
    """A refit reads its parent's columns: history features it left out stay out."""
    unread = [c for c in history_columns(config, design) if c not in parent_features]
    return design.without(unread) if unread else design


def choose_history(config: Config, design: Design, evaluations: list[Evaluation],
                   best: Evaluation, X: Any, y: Any, splits: list[Split],
                   spec: FitSpec) -> HistoryChoice:
    """Keep the history features only if the search's choice ``best`` beats the choice
    among the same candidates without them by more than the search's cost tolerance.

    Without them, each family's best candidate (``evaluations`` are sorted best first)
    is scored again on the same ``splits``: a family that loses with a lag can win
    without it."""
    history = history_columns(config, design)
    if not history or best.score is None or config.train.history_features == "always":
        return HistoryChoice(design, best, spec)
    plain_design = design.without(history)
    plain_spec = replace(spec, roles=plain_design.roles)
    folds = Folds(X[plain_design.inputs], y, splits)
    leaders: dict[str, Evaluation] = {}
    for evaluation in evaluations:
        leaders.setdefault(evaluation.candidate.family, evaluation)
    metric, tolerance = config.metric, config.train.search.cost_tolerance
    scored = sorted((evaluate_candidate(e.candidate, folds, plain_spec,
                                        keep_model=best.model is not None)
                     for e in leaders.values()), key=lambda e: sort_key(metric, e.score))
    plain = cheapest_within(scored, metric, tolerance)
    if is_better(metric, best.score, plain.score, tolerance):
        log.info("history features kept: %s %.4g with them (%s) vs %.4g without (%s)",
                 metric, best.score, best.candidate.family, plain.score or float("nan"),
                 plain.candidate.family)
        return HistoryChoice(design, best, spec)
    note = (f"history features left out ({metric} {plain.score:.4g} without them, "
            f"{plain.candidate.family}; {best.score:.4g} with, {best.candidate.family})")
    log.info(note)
    return HistoryChoice(plain_design, plain, plain_spec, note)
