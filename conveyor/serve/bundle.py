"""Model files: save a fitted pipeline with its manifest, load it back only if verified.

A version is a folder ``v000007/`` in the model :class:`~conveyor.storage.Storage`
(by default ``<workspace>/models``) holding ``model.skops`` and ``manifest.json``;
in a local folder it is created atomically (written to a hidden temp folder,
then renamed). Loading checks the file's sha256 against the registry first and
lets skops rebuild only types from an explicit list of trusted modules, so a
file conveyor did not write is refused instead of run.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.pipeline import Pipeline
from skops.io.exceptions import UntrustedTypesFoundException

from conveyor.errors import ModelError
from conveyor.prepare.roles import Roles
from conveyor.storage import Storage, locate

MODEL_FILE = "model.skops"
MANIFEST_FILE = "manifest.json"
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "conveyor.", "builtins.", "collections.")
# skops rebuilds a partial's function and arguments as nodes of their own, each checked
# against the prefixes above; the partial itself runs nothing (scikit-learn's gradient
# boosting keeps one around sklearn.utils.validation.check_array)
TRUSTED_EXACT = frozenset({"functools.partial"})
# the types conveyor's own model files hold that skops does not trust by default (all within
# the prefixes above): loading with them trusted parses a file once; a file with any other
# type is parsed again and every type checked against the prefixes
KNOWN_TYPES = [
    "conveyor.prepare.features.FeatureMaker", "conveyor.prepare.preprocess.AsCategories",
    "conveyor.prepare.preprocess.RareLevels", "conveyor.serve.routing.Router",
    "conveyor.train.incremental.AddedTrees",
    "conveyor.train.incremental.MemoryKNN", "functools.partial", "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64", "sklearn.model_selection._split.KFold",
    "sklearn.neighbors._kd_tree.KDTree", "sklearn.tree._tree.Tree",
    "sklearn.utils.validation.check_array"]
LIBRARIES = ("conveyor", "scikit-learn", "numpy", "pandas", "scipy", "skops", "pyarrow")
CATEGORY_LEVELS = 1000


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries a model file depends on."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def feature_schema(frame: pd.DataFrame, roles: Roles) -> dict[str, dict[str, Any]]:
    """Describe each input column as seen in training: kind, range or known levels.

    ``frame`` holds exactly the columns the model reads; ``roles`` says which are
    categorical (engineered columns in ``roles`` that the frame lacks are skipped).
    """
    schema: dict[str, dict[str, Any]] = {}
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            schema[column] = {"kind": "datetime"}
        elif column in roles.categorical or not pd.api.types.is_numeric_dtype(values):
            levels = values.dropna().astype(str).value_counts().index[:CATEGORY_LEVELS]
            schema[column] = {"kind": "categorical", "levels": sorted(levels.tolist())}
        else:
            numbers = pd.to_numeric(values, errors="coerce").astype(float)
            finite = numbers[np.isfinite(numbers)]
            schema[column] = {"kind": "numeric",
                              "min": float(finite.min()) if len(finite) else None,
                              "max": float(finite.max()) if len(finite) else None}
    return schema


def version_key(version_number: int) -> str:
    """Return the folder name of a version in the model store: ``v000007``."""
    return f"v{version_number:06d}"


def save_model(models: Storage, version_number: int, model: Pipeline,
               manifest: dict[str, Any], extras: dict[str, Any] | None = None,
               fallback: Any = None, router: Any = None) -> tuple[str, str, int]:
    """Write a version folder; return (its location, model sha256, model size).

    With a ``fallback`` model and its ``router``, the three go into the one
    model file (so one sha256 in the registry covers everything that predicts).
    ``extras`` maps file names to JSON-safe data written beside the model
    (e.g. ``explain.json``).
    """
    bundle = model if fallback is None else {"champion": model, "fallback": fallback,
                                             "router": router}
    data = sio.dumps(bundle, compression=zipfile.ZIP_DEFLATED)
    sha = hashlib.sha256(data).hexdigest()
    manifest = {**manifest, "version": version_number, "model_file": MODEL_FILE,
                "sha256": sha, "size_bytes": len(data)}

    files = {MODEL_FILE: data,
             MANIFEST_FILE: json.dumps(manifest, indent=2, default=str).encode("utf-8")}
    for name, content in (extras or {}).items():
        files[name] = json.dumps(content, indent=1, default=str).encode("utf-8")
    key = version_key(version_number)
    models.put_dir(key, files)
    return models.location(key), sha, len(data)


@dataclass(frozen=True)
class LoadedModel:
    """A verified model and its manifest."""

    version: int
    model: Pipeline
    manifest: dict[str, Any]
    fallback: Pipeline | None = None  # a robust model for rows the router flags
    router: Any = None  # conveyor.serve.routing.Router

    @property
    def features(self) -> list[str]:
        return list(self.manifest["schema"])


def load_model(folder: Path | str, expected_sha256: str) -> LoadedModel:
    """Load a version folder (a path or URL) after checking its sha256 and the types it
    would build."""
    models, key = locate(folder)
    model_path = f"{str(folder).rstrip('/')}/{MODEL_FILE}"
    try:
        data = models.get_bytes(f"{key}/{MODEL_FILE}")
        manifest = json.loads(models.get_bytes(f"{key}/{MANIFEST_FILE}").decode("utf-8"))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise ModelError(f"model folder '{folder}' is incomplete (needs {MODEL_FILE} and "
                         f"{MANIFEST_FILE})") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256 or manifest.get("sha256") != expected_sha256:
        raise ModelError(
            f"model file '{model_path}' failed verification: its sha256 {actual[:12]} does not "
            f"match the registry ({expected_sha256[:12]}); it was changed after training. "
            "Refusing to load it; promote another version or retrain"
        )
    model = _loads(data, model_path)
    if isinstance(model, dict):
        return LoadedModel(int(manifest["version"]), model["champion"], manifest,
                           model.get("fallback"), model.get("router"))
    return LoadedModel(int(manifest["version"]), model, manifest)


def _loads(data: bytes, model_path: str) -> Any:
    """Rebuild a verified file's objects, letting skops build only trusted types."""
    try:
        return sio.loads(data, trusted=KNOWN_TYPES)
    except UntrustedTypesFoundException:
        pass  # a type beyond conveyor's usual ones: check each against the prefixes
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not our file"
        raise ModelError(f"model file '{model_path}' is not a readable skops file: {exc}") from None
    untrusted = sio.get_untrusted_types(data=data)
    refused = [t for t in untrusted
               if not t.startswith(TRUSTED_PREFIXES) and t not in TRUSTED_EXACT]
    if refused:
        raise ModelError(f"model file '{model_path}' holds types conveyor does not trust: "
                         f"{refused}; refusing to load it")
    return sio.loads(data, trusted=untrusted)
