"""The strategy of an update as a pure table: (setting, production, batches since the
last search, alarms) -> incremental, refit or retrain."""

from __future__ import annotations

import pytest

from conveyor.train.strategy import StrategyKind, choose_strategy

I, F, R = StrategyKind.INCREMENTAL, StrategyKind.REFIT, StrategyKind.RETRAIN

TABLE = [
    # setting, family, since search, data alarm, model alarm -> kind
    ("auto", None, 0, None, None, R),  # the first model is searched for
    ("retrain", "sgd", 0, None, None, R),
    ("auto", "sgd", 0, None, "model drift", R),  # model drift: another configuration may fit
    ("incremental", "sgd", 0, None, "model drift", R),
    ("auto", "sgd", 4, None, None, R),  # retrain_every = 4 reached
    ("refit", "sgd", 5, "drift in x", None, R),  # the schedule comes before a data alarm
    ("incremental", "sgd", 9, None, None, I),  # no schedule with incremental
    ("auto", "sgd", 3, "drift in x", None, F),  # a data alarm refits, never searches
    ("incremental", "hgb", 0, "drift in x", None, F),
    ("auto", "tree", 0, None, None, F),  # a tree cannot learn incrementally
    ("auto", "forest", 1, None, None, F),
    ("auto", "linear", 1, None, None, F),
    ("refit", "hgb", 1, None, None, F),  # refit: never incremental
    ("auto", "hgb", 1, None, None, I),
    ("auto", "knn", 3, None, None, I),
    ("incremental", "sgd", 0, None, None, I),
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
