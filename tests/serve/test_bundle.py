"""Model files: verified by sha256, only trusted types rebuilt, half-written versions unseen."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from conveyor.errors import ModelError
from conveyor.serve.bundle import MODEL_FILE, load_model, save_model
from conveyor.serve.routing import Router
from conveyor.storage import LocalStorage


@pytest.fixture()
def saved(tmp_path):
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    model = Pipeline([("model", Ridge())]).fit(X, X["a"] * 2)
    folder, sha, size = save_model(LocalStorage(tmp_path), 1, model,
                                   {"schema": {"a": {}, "b": {}}})
    assert folder == str(tmp_path / "v000001")
    return tmp_path, Path(folder), sha, X


def test_a_verified_model_loads_and_predicts(saved):
    _, folder, sha, X = saved
    loaded = load_model(folder, sha)
    assert loaded.version == 1 and loaded.fallback is None
    np.testing.assert_allclose(loaded.model.predict(X), X["a"] * 2, atol=0.05)  # ridge shrinks
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sha256"] == sha and manifest["size_bytes"] == os.path.getsize(
        folder / MODEL_FILE)


def test_a_changed_model_file_is_refused(saved):
    _, folder, sha, _ = saved
    data = bytearray((folder / MODEL_FILE).read_bytes())
    data[-10] ^= 0xFF  # one flipped byte
    (folder / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="changed after training"):
        load_model(folder, sha)


def test_a_file_with_untrusted_types_is_refused_even_with_a_matching_hash(tmp_path):
    # a function from the os module would run arbitrary code at prediction time
    model = Pipeline([("f", FunctionTransformer(os.getcwd))])
    folder, sha, _ = save_model(LocalStorage(tmp_path), 1, model, {"schema": {}})
    with pytest.raises(ModelError, match="never writes"):
        load_model(folder, sha)


def test_a_harmless_type_conveyor_never_writes_is_refused_too(tmp_path):
    # scikit-learn's scale function runs no code of the file's choosing, but conveyor's
    # pipelines never hold it: the allow-list is exact names, not modules
    from sklearn.preprocessing import scale

    X = pd.DataFrame({"a": np.arange(20.0)})
    model = Pipeline([("scale", FunctionTransformer(scale)), ("model", Ridge())])
    model.fit(X, X["a"])
    folder, sha, _ = save_model(LocalStorage(tmp_path), 1, model, {"schema": {"a": {}}})
    with pytest.raises(ModelError, match=r"never writes \(sklearn.preprocessing._data.scale\)"):
        load_model(folder, sha)


# fewer trees than the families' defaults: a file's types do not depend on how many
SMALL = {"hgb": {"max_iter": 10}, "forest": {"n_estimators": 5}}


def _fitted_pipelines():
    """Every family with each variant it can fit, for both tasks, and its incremental
    updates: the pipelines an update can write."""
    from conveyor.config import PrepareConfig
    from conveyor.prepare.features import FeatureMaker
    from conveyor.prepare.roles import Roles
    from conveyor.train.families import FAMILIES
    from conveyor.train.search import Candidate, make_pipeline
    from conveyor.train.update import can_update, update_model

    rng = np.random.default_rng(0)
    n = 200
    X = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
                      "a": rng.normal(size=n), "b": rng.integers(0, 5, n).astype(float),
                      "c": rng.choice(["x", "y", "z", "w"], n), "d": rng.choice(["p", "q"], n)})
    X.loc[::7, "a"] = np.nan
    X.loc[::11, "c"] = None
    maker = FeatureMaker("t", "UTC", ["hour"], [
        {"name": "a_b", "op": "ratio", "columns": ["a", "b"]},
        {"name": "c_freq", "op": "frequency", "columns": ["c"]}])
    roles = Roles(("a", "b", "t_hour", "a_b", "c_freq"), ("c", "d"))
    targets = {"regression": X["b"] * 3 + rng.normal(size=n),
               "classification": np.where(X["b"] > 2, "late", "on time")}
    for task, y in targets.items():
        for family in FAMILIES:
            for variant in ("onehot", "robust", "native"):
                model = make_pipeline(Candidate(family, SMALL.get(family, {}), variant),
                                      roles, PrepareConfig(), task, 0, maker)
                try:
                    model.fit(X, y)
                except ValueError:  # a family that needs complete rows with "native"
                    continue
                yield f"{task}-{family}-{variant}", model, X
                if can_update(family):
                    yield f"{task}-{family}-{variant}-updated", \
                        update_model(model, family, X, y)[0], X


def types_in(data: bytes) -> set[str]:
    """Every type a skops file names (module.class), trusted by default or not."""
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if node.get("__module__") and node.get("__class__"):
                found.add(f"{node['__module__']}.{node['__class__']}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        walk(json.loads(archive.read("schema.json")))
    return found


def test_skops_is_imported_trusting_only_the_estimators_conveyor_builds():
    """The narrowed import (fast: scikit-learn's estimator list is not walked) leaves skops
    trusting by default only estimators the allow-list names, and scikit-learn as it was."""
    probe = ("import sklearn.utils, skops\n"
             "before = sklearn.utils.all_estimators\n"
             "from conveyor.serve.bundle import allowed_types, skops_io\n"
             "skops_io()\n"
             "from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES as names\n"
             "assert sklearn.utils.all_estimators is before\n"
             "assert names and set(names) <= allowed_types(), set(names) - allowed_types()\n"
             "print(len(names))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 20


def test_every_pipeline_conveyor_writes_loads_under_the_exact_allow_list(tmp_path):
    import skops.io as sio

    from conveyor.serve.bundle import allowed_types

    ALLOWED_TYPES = allowed_types()

    seen: set[str] = set()
    router: Router | None = None
    for number, (name, model, X) in enumerate(_fitted_pipelines(), start=1):
        if router is None:  # the same rows for every pipeline
            router = Router().fit(X.drop(columns="t"))
        folder, sha, _ = save_model(LocalStorage(tmp_path), number, model, {"schema": {}},
                                    fallback=model, router=router)
        data = (Path(folder) / MODEL_FILE).read_bytes()
        types = set(sio.get_untrusted_types(data=data))
        assert types <= ALLOWED_TYPES, (name, types - ALLOWED_TYPES)
        seen |= types_in(data)
        loaded = load_model(folder, sha)
        np.testing.assert_array_equal(loaded.model.predict(X.head()), model.predict(X.head()))
    # the list holds no name that no pipeline needs, but for the k-d tree's alternatives
    # (a ball tree, and the distances of p = 1, 3, infinity) chosen by hyperparameters
    unused = ALLOWED_TYPES - seen
    assert unused <= {"sklearn.neighbors._ball_tree.BallTree",
                      "sklearn.metrics._dist_metrics.ManhattanDistance64",
                      "sklearn.metrics._dist_metrics.MinkowskiDistance64",
                      "sklearn.metrics._dist_metrics.ChebyshevDistance64"}, unused


def test_champion_fallback_and_router_travel_in_one_verified_file(tmp_path):
    X = pd.DataFrame({"a": np.arange(50.0)})
    champion = Pipeline([("model", Ridge())]).fit(X, X["a"])
    fallback = Pipeline([("model", Ridge(alpha=100.0))]).fit(X, X["a"])
    router = Router(anomaly=False).fit(X)
    folder, sha, _ = save_model(LocalStorage(tmp_path), 3, champion, {"schema": {"a": {}}},
                                None, fallback, router)
    assert sorted(p.name for p in Path(folder).iterdir()) == ["manifest.json", MODEL_FILE]
    loaded = load_model(folder, sha)
    assert loaded.router.high_ == router.high_ and loaded.fallback is not None


def test_half_written_versions_are_hidden_and_never_overwritten(saved):
    models, folder, _, X = saved
    hidden = models / ".v000002.abc.tmp"  # what a crash inside atomic_write_dir leaves
    hidden.mkdir()
    assert not LocalStorage(models).exists("v000002")
    incomplete = models / "v000002"
    incomplete.mkdir()
    (incomplete / "manifest.json").write_text("{}")
    with pytest.raises(ModelError, match="incomplete"):
        load_model(incomplete, "0" * 64)
    with pytest.raises(Exception, match="already exists"):
        save_model(LocalStorage(models), 1, Pipeline([("model", Ridge())]).fit(X, X["a"]),
                   {"schema": {}})
