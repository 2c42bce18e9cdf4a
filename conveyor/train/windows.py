"""Drift handling by evidence: which training window to keep when a change is suspected.

A drift alarm says the data (or production's error) moved; it does not say that the
past stopped being useful. Seasons move the data every week and a model trained on
all of them is still the best. So instead of a reflex (train on the newest batch
only), production's configuration is refit on each candidate window and scored on the
newest labelled rows, and the best window is kept:

- everything kept: the newest ``train.window_batches`` batches;
- the newest k batches, for k in :data:`RECENT` (shorter than everything kept);
- since the change: the new batches alone.

The newest rows are the new batches' rows in time order: every candidate trains on
its older batches plus the first half of them and is scored on the second half, so
"since the change" has rows to learn from and every candidate is judged on the same
rows, none of which it saw. A shorter window is chosen only when it scores better
than the longer choice and its row losses are lower by a paired one-sided t test at
:data:`CONFIDENCE` (a few rows' luck does not throw history away); too few new rows
to judge keeps every batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone

from conveyor.config import Config
from conveyor.serve.bundle import LoadedModel
from conveyor.train.data import BATCH_COLUMN, BatchFrames, model_input, target_values
from conveyor.train.search import spread
from conveyor.validate.metrics import is_better, row_losses, score_predictions

log = logging.getLogger(__name__)

RECENT = (2, 4)  # the newest k batches tried between everything kept and the new ones
MIN_SCORED_ROWS = 20  # fewer new rows than twice this: no evidence, every batch is kept
CONFIDENCE = 0.95  # a shorter window's row losses must be lower at this confidence


@dataclass(frozen=True)
class WindowChoice:
    """The candidate windows, their scores on the newest rows, and the one chosen."""

    scores: dict[str, float]  # candidate -> score on the newest rows (metric)
    starts: dict[str, int]    # candidate -> id of its first batch
    chosen: str
    metric: str
    rows: int                 # rows scored

    @property
    def start(self) -> int:
        return self.starts[self.chosen]

    @property
    def keeps_everything(self) -> bool:
        return self.chosen == next(iter(self.scores))

    def describe(self) -> str:
        """One line for the log, the event and the summary."""
        tried = ", ".join(f"{name} {score:.4g}" for name, score in self.scores.items())
        return (f"window by evidence: {self.chosen} (production's configuration refit on each "
                f"window, {self.metric} on the newest {self.rows} rows: {tried})")


def _candidates(kept: list[dict[str, Any]], new_ids: set[int]) -> dict[str, int]:
    """Candidate name -> position of its first batch in ``kept``, longest first."""
    old = [i for i, b in enumerate(kept) if b["id"] not in new_ids]
    out = {f"everything kept ({len(kept)} batches)": 0}
    for k in RECENT:
        if k < len(kept) and len(kept) - k in old and len(kept) - k > 0:
            out[f"newest {k} batches"] = len(kept) - k
    first_new = min((i for i, b in enumerate(kept) if b["id"] in new_ids), default=len(kept))
    if 0 < first_new < len(kept) and first_new not in out.values():
        out["since the change (new batches only)"] = first_new
    return out


def choose_window(config: Config, frames: BatchFrames, production: LoadedModel,
                  kept: list[dict[str, Any]], new_ids: set[int]) -> WindowChoice | None:
    """Refit production's configuration on each candidate window of ``kept`` (oldest
    first, the new batches last) and return the best on the newest rows; None when the
    new rows are too few to judge (then every batch is kept)."""
    candidates = _candidates(kept, new_ids)
    data = frames.window(kept)
    is_new = data[BATCH_COLUMN].isin(new_ids).to_numpy()
    newest = np.flatnonzero(is_new)
    if len(candidates) < 2 or len(newest) < 2 * MIN_SCORED_ROWS:
        return None
    learn_new, scored = newest[: len(newest) // 2], newest[len(newest) // 2:]
    test = (model_input(data.iloc[scored], production.features),
            target_values(config, data.iloc[scored]))
    order = {b["id"]: i for i, b in enumerate(kept)}
    position = data[BATCH_COLUMN].map(order).to_numpy()
    scores: dict[str, float] = {}
    losses: dict[str, np.ndarray] = {}
    starts: dict[str, int] = {}
    for name, first in candidates.items():
        rows = np.union1d(np.flatnonzero(~is_new & (position >= first)), learn_new)
        if config.train.sample_every > 1:  # as the window's own fits read it
            rows = spread(rows, config.train.sample_every)
        if len(rows) < MIN_SCORED_ROWS:
            continue
        fitted = _fit_and_score(config, production, data.iloc[rows], test)
        if fitted is not None:
            scores[name], losses[name] = fitted
            starts[name] = int(kept[first]["id"])
    if len(scores) < 2:
        return None
    chosen = next(iter(scores))
    for name in scores:  # longest first: a shorter window must be better beyond noise
        if is_better(config.metric, scores[name], scores[chosen]) \
                and _lower(losses[name], losses[chosen]):
            chosen = name
    return WindowChoice(scores, starts, chosen, config.metric, len(scored))


def _fit_and_score(config: Config, production: LoadedModel, train: pd.DataFrame,
                   test: tuple[pd.DataFrame, np.ndarray]) -> tuple[float, np.ndarray] | None:
    """Production's configuration fitted on ``train``: its score and row losses on
    ``test``; None when the score is not finite."""
    model = clone(production.model).fit(model_input(train, production.features),
                                        target_values(config, train))
    X, y = test
    predicted = np.asarray(model.predict(X))
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    classes = getattr(model, "classes_", None)
    score = score_predictions(config.target.task, y, predicted, proba, classes)[config.metric]
    if score is None or not np.isfinite(score):
        return None
    return float(score), row_losses(config.metric, y, predicted, proba, classes)


def _lower(losses: np.ndarray, than: np.ndarray) -> bool:
    """Whether row losses are lower than ``than``'s (paired, one-sided t test at
    :data:`CONFIDENCE`)."""
    difference = losses - than
    if not np.any(difference):
        return False
    p = stats.ttest_rel(losses, than, alternative="less").pvalue
    return bool(np.isfinite(p) and p < 1 - CONFIDENCE)
