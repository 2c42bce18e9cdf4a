"""Model files: verified by sha256, only trusted types rebuilt, half-written versions unseen."""

from __future__ import annotations

import json
import os
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
    with pytest.raises(ModelError, match="does not trust"):
        load_model(folder, sha)


def test_a_trusted_type_beyond_conveyor_s_usual_ones_still_loads(tmp_path):
    # scikit-learn's scale function is neither trusted by skops by default nor among the
    # types conveyor's pipelines hold (bundle.KNOWN_TYPES), but it is within the trusted
    # prefixes: the file is checked type by type and loads
    import skops.io as sio
    from sklearn.preprocessing import scale

    X = pd.DataFrame({"a": np.arange(20.0)})
    model = Pipeline([("scale", FunctionTransformer(scale)), ("model", Ridge())])
    model.fit(X, X["a"])
    folder, sha, _ = save_model(LocalStorage(tmp_path), 1, model, {"schema": {"a": {}}})
    assert "sklearn.preprocessing._data.scale" in sio.get_untrusted_types(
        data=(Path(folder) / MODEL_FILE).read_bytes())
    loaded = load_model(folder, sha)
    np.testing.assert_allclose(loaded.model.predict(X), model.predict(X))


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
