"""The strategy of an update as a pure table: (setting, production, batches since the
last search, alarms) -> incremental, refit or retrain."""

from __future__ import annotations

import pytest

from conveyor.train.strategy import StrategyKind, choose_strategy

INC, REF, RET = StrategyKind.INCREMENTAL, StrategyKind.REFIT, StrategyKind.RETRAIN

TABLE = [
    # setting, family, since search, data alarm, model alarm -> kind
    ("auto", None, 0, None, None, RET),  # the first model is searched for
    ("retrain", "sgd", 0, None, None, RET),
    ("auto", "sgd", 0, None, "model drift", RET),  # model drift: another configuration may fit
    ("incremental", "sgd", 0, None, "model drift", RET),
    ("auto", "sgd", 4, None, None, RET),  # retrain_every = 4 reached
    ("refit", "sgd", 5, "drift in x", None, RET),  # the schedule comes before a data alarm
    ("incremental", "sgd", 9, None, None, INC),  # no schedule with incremental
    ("auto", "sgd", 3, "drift in x", None, REF),  # a data alarm refits, never searches
    ("incremental", "hgb", 0, "drift in x", None, REF),
    ("auto", "tree", 0, None, None, REF),  # a tree cannot learn incrementally
    ("auto", "forest", 1, None, None, REF),
    ("auto", "linear", 1, None, None, REF),
    ("refit", "hgb", 1, None, None, REF),  # refit: never incremental
    ("auto", "hgb", 1, None, None, INC),
    ("auto", "knn", 3, None, None, INC),
    ("incremental", "sgd", 0, None, None, INC),
]


@pytest.mark.parametrize(("setting", "family", "since", "data", "model", "kind"), TABLE)
def test_the_strategy_table(setting, family, since, data, model, kind):
    strategy = choose_strategy(setting, 4, family, since, data, model)
    assert strategy.kind is kind
    assert strategy.reason  # every choice says why, for the logs and the summary


def test_the_reason_names_what_decided():
    assert choose_strategy("auto", 4, "sgd", 0, None, "sgd's error drifted").reason == \
        "sgd's error drifted"
    assert "drift in x" in choose_strategy("auto", 4, "sgd", 0, "drift in x").reason
    assert "tree cannot learn incrementally" in choose_strategy("auto", 4, "tree", 0).reason
