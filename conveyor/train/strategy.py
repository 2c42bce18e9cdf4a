"""How an update trains: a pure choice between updating, refitting and searching.

- ``incremental``: production learns from the new batch only (its family must be
  able to, see :attr:`conveyor.train.families.Family.incremental`);
- ``refit``: production's configuration is fitted again on the current window
  (one candidate, no search);
- ``retrain``: a search over the candidates picks and fits the best.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from conveyor.train.update import can_update


class StrategyKind(StrEnum):
    INCREMENTAL = "incremental"
    REFIT = "refit"
    RETRAIN = "retrain"


@dataclass(frozen=True)
class Strategy:
    """What an update does, and why (the reason is for people: logs, notes, the summary)."""

    kind: StrategyKind
    reason: str


def choose_strategy(setting: str, retrain_every: int, production_family: str | None,
                    since_search: int, data_alarm: str | None = None,
                    model_alarm: str | None = None) -> Strategy:
    """Return the strategy of this update.

    ``setting`` is ``train.strategy`` (auto, refit, retrain or incremental),
    ``production_family`` the family of the production model (None before the
    first), ``since_search`` the accepted batches since the last search. A search
    runs for the first model, when production's own error drifted
    (``model_alarm``: the model no longer fits, another configuration may), and at
    least every ``retrain_every`` batches (not with ``incremental``); a data drift
    alarm refits on the window; otherwise production learns incrementally when its
    family can (unless the setting is ``refit``), and is refit when it cannot.

    >>> choose_strategy("auto", 4, "hgb", since_search=1).kind
    <StrategyKind.INCREMENTAL: 'incremental'>
    >>> choose_strategy("auto", 4, "hgb", since_search=4).reason
    '4 batches since the last search; train.retrain_every is 4'
    """
    if production_family is None:
        return Strategy(StrategyKind.RETRAIN, "no production model yet")
    if setting == "retrain":
        return Strategy(StrategyKind.RETRAIN, "train.strategy is retrain")
    if model_alarm:
        return Strategy(StrategyKind.RETRAIN, model_alarm)
    if setting in ("auto", "refit") and since_search >= retrain_every:
        return Strategy(StrategyKind.RETRAIN, f"{since_search} batches since the last search; "
                        f"train.retrain_every is {retrain_every}")
    if data_alarm:
        return Strategy(StrategyKind.REFIT, f"{data_alarm}; production's configuration is "
                        "refit on the new window")
    if not can_update(production_family):
        return Strategy(StrategyKind.REFIT, f"no drift; {production_family} cannot learn "
                        "incrementally, so its configuration is refit on the window")
    if setting == "refit":
        return Strategy(StrategyKind.REFIT, "no drift; train.strategy is refit: its "
                        "configuration is refit on the window")
    return Strategy(StrategyKind.INCREMENTAL,
                    f"no drift; {production_family} learns from the new batch")


def batches_since_search(models: pd.DataFrame, batches: pd.DataFrame) -> int:
    """Accepted batches newer than the newest one a search trained on (the batch of the
    update that searched): the updates since, when each brings one batch."""
    searched = models[models["strategy"].isna() | (models["strategy"] == "retrain")]
    newest = max(searched.sort_values("version")["batch_ids"].iloc[-1]) if len(searched) else 0
    return int(((batches["status"] == "accepted") & (batches["id"] > newest)).sum())
