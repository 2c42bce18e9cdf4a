"""Interpretation: importance, coefficients, tree rules, neighbours, one-row explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor.config import PrepareConfig
from conveyor.prepare.roles import Roles
from conveyor.serve.routing import Router, predict_routed
from conveyor.train.search import Candidate, make_pipeline
from conveyor.validate.interpret import explain_answer, explain_row, explain_version, importance


def data(task: str = "regression"):
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400),
                      "c": rng.choice(["a", "b", "c"], size=400)})
    y = 5 * X["x1"].to_numpy() + rng.normal(0, 0.1, size=400)
    if task == "classification":
        y = np.where(y > 0, "up", "down")
    return X, y


ROLES = Roles(("x1", "x2"), ("c",))


def fitted(family: str, params: dict, task: str = "regression"):
    X, y = data(task)
    model = make_pipeline(Candidate(family, params), ROLES, PrepareConfig(), task, 0)
    return model.fit(X, y), X, y


def test_the_only_informative_column_is_the_most_important():
    model, X, y = fitted("tree", {"max_depth": 4})
    out = explain_version(model, X, y, "regression", seed=0)
    assert max(out["importance"], key=out["importance"].get) == "x1"
    assert out["importance"]["x1"] > 10 * abs(out["importance"]["x2"])


@pytest.mark.parametrize(("family", "task", "scoring"), [
    ("linear", "regression", "neg_mean_absolute_error"),
    ("tree", "classification", "accuracy")])
def test_importance_is_the_score_drop_computed_one_shuffle_at_a_time(family, task, scoring):
    params = {"alpha": 1.0} if family == "linear" else {"max_depth": 3}
    model, X, y = fitted(family, params, task)
    out = importance(model, X, y, scoring, seed=5, repeats=3)

    def score(frame):
        predicted = model.predict(frame)
        return -np.abs(y - predicted).mean() if task == "regression" else (predicted == y).mean()

    rng, base, expected = np.random.default_rng(5), score(X), {}
    for column in X.columns:
        drops = []
        for _ in range(3):
            shuffled = X.copy()
            shuffled[column] = X[column].to_numpy()[rng.permutation(len(X))]
            drops.append(base - score(shuffled))
        expected[column] = np.mean(drops)
    assert out == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_importance_agrees_with_scikit_learn_permutation_importance():
    from sklearn.inspection import permutation_importance

    model, X, y = fitted("linear", {"alpha": 1.0})
    ours = importance(model, X, y, "neg_mean_absolute_error", seed=0, repeats=40)
    theirs = permutation_importance(model, X, y, scoring="neg_mean_absolute_error",
                                    n_repeats=40, random_state=0).importances_mean
    # different shuffles, same quantity: x1's drop (~5.6 MAE) within 3%, the others ~0
    assert ours["x1"] == pytest.approx(theirs[0], rel=0.03)
    assert abs(ours["x2"]) < 0.05 and abs(theirs[1]) < 0.05


def test_linear_coefficients_are_the_estimator_s():
    model, X, y = fitted("linear", {"alpha": 1.0})
    out = explain_version(model, X, y, "regression", seed=0)
    coef = model.named_steps["model"].coef_
    names = list(model[:-1].get_feature_names_out())
    assert out["coefficients"][names[0]] == pytest.approx(coef[0])
    assert abs(out["coefficients"]["numeric__x1"]) > 4  # 5 per std of x1 (std ~1)


def test_tree_structure_text_and_nodes():
    model, X, y = fitted("tree", {"max_depth": 2})
    tree = explain_version(model, X, y, "regression", seed=0)["tree"]
    assert tree["depth"] == 2 and tree["leaves"] == 4
    assert tree["nodes"][0]["feature"] == "numeric__x1"
    assert "numeric__x1 <=" in tree["text"]
    assert tree["nodes"][0]["samples"] == 400


def test_shap_of_a_stump_is_its_prediction_minus_the_training_mean():
    """One split on x1: x1's SHAP value for a row is f(row) - the mean prediction over the
    training rows (TreeExplainer's expected value); every other column gets 0."""
    pytest.importorskip("shap")
    model, X, y = fitted("tree", {"max_depth": 1})
    rows = X.iloc[:300]  # shap_summary explains at most 300 rows: these, all of them
    out = explain_version(model, rows, y[:300], "regression", seed=0)["shap"]
    expected = model.predict(X).mean()  # the tree was fitted on all 400 rows
    by_hand = np.abs(model.predict(rows) - expected).mean()
    assert out["numeric__x1"] == pytest.approx(by_hand, rel=1e-9)
    assert all(v == 0 for k, v in out.items() if k != "numeric__x1")


@pytest.mark.parametrize("family", ["hgb", "forest"])
def test_shap_ranks_the_informative_column_first_for_tree_ensembles(family):
    pytest.importorskip("shap")
    model, X, y = fitted(family, {})
    out = explain_version(model, X, y, "regression", seed=0)["shap"]
    assert max(out, key=out.get) == "numeric__x1"
    assert out["numeric__x1"] > 10 * out["numeric__x2"]  # x2 only fits the noise


def test_knn_explanation_lists_the_true_nearest_neighbours():
    from sklearn.neighbors import NearestNeighbors

    model, X, _ = fitted("knn", {"n_neighbors": 5})
    out = explain_row(model, X.iloc[[7]])
    encoded = model[:-1].transform(X)
    distances, indices = NearestNeighbors(n_neighbors=5).fit(encoded).kneighbors(encoded[[7]])
    assert [n["training_row"] for n in out["neighbours"]] == indices[0].tolist()
    assert out["neighbours"][0]["distance"] == pytest.approx(distances[0][0])
    assert out["neighbours"][0]["training_row"] == 7  # a training row is its own neighbour


def test_row_contributions_point_at_the_informative_column():
    model, X, _ = fitted("linear", {"alpha": 1.0})
    row = X.iloc[[int(np.argmax(X["x1"].abs().to_numpy()))]]
    out = explain_row(model, row)
    assert next(iter(out["contributions"])) == "x1"
    classifier, Xc, _ = fitted("tree", {"max_depth": 3}, "classification")
    assert explain_row(classifier, Xc.iloc[[0]])["prediction"] in {"up", "down"}


def test_explain_answer_explains_the_model_that_answered_the_row():
    champion, X, _ = fitted("linear", {"alpha": 1.0})
    fallback, _, _ = fitted("tree", {"max_depth": 4})
    router = Router(anomaly=False).fit(X)
    far = X.iloc[[0]].assign(x1=50.0)  # beyond x1's range
    usual = X.iloc[[0]]
    # the rule is proven: the fallback answers, and it is what is explained
    on = router.with_rules({"out_of_range:x1": True})
    out = explain_answer(champion, fallback, on, far)
    served, _, _ = predict_routed(champion, fallback, on, far)
    assert (out["route"], out["route_reason"]) == ("fallback", "out_of_range:x1")
    assert out["prediction"] == pytest.approx(served[0])
    assert out["prediction"] == pytest.approx(fallback.predict(on.bounded(far))[0])
    # not proven: the champion answers (the row is still reported as unusual)
    off = router.with_rules({})
    out = explain_answer(champion, fallback, off, far)
    assert (out["route"], out["route_reason"]) == ("champion", "out_of_range:x1")
    assert out["prediction"] == pytest.approx(champion.predict(far)[0])
    assert explain_answer(champion, fallback, on, usual)["route"] == "champion"


def test_shap_of_a_binary_stump_classifier_is_its_probability_minus_the_mean():
    """Classifiers get a class axis from shap (rows, features, classes since 0.46): for a
    one-split tree, x1's value per class is p_class(row) - its mean over the training rows,
    the same size for both classes of a binary target."""
    pytest.importorskip("shap")
    model, X, y = fitted("tree", {"max_depth": 1}, task="classification")
    rows = X.iloc[:300]
    out = explain_version(model, rows, y[:300], "classification", seed=0)["shap"]
    proba = model.predict_proba(X)[:, 1]
    by_hand = np.abs(model.predict_proba(rows)[:, 1] - proba.mean()).mean()
    assert out["numeric__x1"] == pytest.approx(by_hand, rel=1e-6)
    assert all(v == 0 for k, v in out.items() if k != "numeric__x1")


@pytest.mark.parametrize("family", ["tree", "forest", "hgb"])
def test_shap_works_for_multiclass_classifiers(family):
    pytest.importorskip("shap")
    X, y = data()
    labels = np.select([y < -2, y > 2], ["low", "high"], "middle")
    model = make_pipeline(Candidate(family, {}), ROLES, PrepareConfig(), "classification", 0)
    model.fit(X, labels)
    out = explain_version(model, X, labels, "classification", seed=0)["shap"]
    assert max(out, key=out.get) == "numeric__x1"


def test_a_failing_optional_explanation_never_fails_the_version(monkeypatch):
    shap = pytest.importorskip("shap")

    def broken(*args, **kwargs):
        raise ValueError("shape mismatch in a future shap")

    monkeypatch.setattr(shap, "TreeExplainer", broken)
    model, X, y = fitted("forest", {})
    out = explain_version(model, X, y, "regression", seed=0)
    assert "shap" not in out and "shape mismatch" in out["errors"]["shap"]
    assert max(out["importance"], key=out["importance"].get) == "x1"  # the rest is there


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("family", ["linear", "sgd", "knn", "tree", "forest", "hgb"])
def test_every_family_is_explained_for_binary_and_multiclass_targets(family, classes):
    """What an update records for a classifier of each family, with the shap extra
    installed: no explanation step fails, and the informative column comes first."""
    pytest.importorskip("shap")
    X, y = data()
    labels = (np.where(y > 0, "up", "down") if classes == 2
              else np.select([y < -2, y > 2], ["low", "high"], "middle"))
    model = make_pipeline(Candidate(family, {}), ROLES, PrepareConfig(), "classification", 0)
    model.fit(X, labels)
    out = explain_version(model, X, labels, "classification", seed=0)
    assert not out.get("errors"), out.get("errors")
    assert max(out["importance"], key=out["importance"].get) == "x1"
    if family in ("tree", "forest", "hgb"):
        assert max(out["shap"], key=out["shap"].get) == "numeric__x1"
