"""Drift handling by evidence: candidate training windows refit and scored on the newest
rows; history is given up only when a shorter window is better."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor.config import parse_config
from conveyor.prepare.roles import resolve_roles
from conveyor.serve.bundle import LoadedModel
from conveyor.train.data import BatchFrames
from conveyor.train.search import Candidate, make_pipeline
from conveyor.train.windows import choose_window
from conveyor.workspace import Workspace


def _config(tmp_path, **train):
    return parse_config({"source": {"kind": "csv", "path": "x.csv", "time_column": "t"},
                         "target": {"column": "y", "task": "regression"},
                         "train": {"window_batches": 6, **train}}, tmp_path)


def _batches(tmp_path, config, make, count=7, rows=200):
    """``count`` batches of ``rows`` rows; ``make(i, x)`` gives batch i's target."""
    rng = np.random.default_rng(0)
    frames = BatchFrames(config, Workspace.of(config))
    batches = []
    for i in range(1, count + 1):
        x = rng.uniform(0, 3, rows)
        t = pd.date_range("2024-01-01", periods=rows, freq="min") + pd.Timedelta(days=i)
        data = pd.DataFrame({"t": t, "x": x, "y": make(i, x) + rng.normal(0, 0.3, rows)})
        batch = {"id": i}
        frames.keep(batch, data)
        batches.append(batch)
    return frames, batches


def _production(frames, batches, family, params):
    data = frames.window(batches[:-1])
    roles = resolve_roles(data[["t", "x", "y"]], parse_columns(), "y", "t")
    model = make_pipeline(Candidate(family, params, "onehot"), roles,
                          frames.config.prepare, "regression", 0)
    model.fit(data[["x"]], data["y"].to_numpy())
    return LoadedModel(1, model, {"schema": {"x": {"kind": "numeric"}}})


def parse_columns():
    from conveyor.config import ColumnsConfig

    return ColumnsConfig()


def test_an_abrupt_change_keeps_only_the_new_batches(tmp_path):
    config = _config(tmp_path)
    frames, batches = _batches(tmp_path, config, lambda i, x: 2 * x if i < 7 else 6 - 2 * x)
    production = _production(frames, batches, "linear", {"alpha": 1.0})
    choice = choose_window(config, frames, production, batches[-6:], {7})
    assert choice is not None
    assert list(choice.scores) == ["everything kept (6 batches)", "newest 2 batches",
                                   "newest 4 batches", "since the change (new batches only)"]
    assert choice.chosen == "since the change (new batches only)" and choice.start == 7
    assert choice.rows == 100  # the second half of the new batch, scored by every candidate
    # the old concept dominates every longer window: its error is far above the new one's
    assert choice.scores["everything kept (6 batches)"] > 3 * choice.scores[choice.chosen]


@pytest.mark.parametrize("seed_shift", [0, 1, 2])
def test_moving_inputs_under_the_same_concept_keep_every_batch(tmp_path, seed_shift):
    # the inputs' mix moves (a data-drift alarm would fire) but y | x does not change:
    # more history is better, and no shorter window may win by chance
    config = _config(tmp_path)
    frames, batches = _batches(tmp_path, config,
                               lambda i, x: np.sin(2 * x + seed_shift) * 3, rows=120)
    production = _production(frames, batches, "tree", {"max_depth": 6,
                                                       "min_samples_leaf": 20})
    choice = choose_window(config, frames, production, batches[-6:], {7})
    assert choice is not None and choice.keeps_everything, choice.describe()


def test_too_few_new_rows_to_judge_keep_everything(tmp_path):
    config = _config(tmp_path)
    frames, batches = _batches(tmp_path, config, lambda i, x: x, rows=30)
    production = _production(frames, batches, "linear", {"alpha": 1.0})
    assert choose_window(config, frames, production, batches[-6:], {7}) is None
