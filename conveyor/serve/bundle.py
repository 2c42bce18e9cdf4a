"""Model files: save a fitted pipeline with its manifest, load it back only if verified.

A version is a folder ``v000007/`` in the model :class:`~conveyor.storage.Storage`
(by default ``<workspace>/models``) holding ``model.skops`` and ``manifest.json``;
in a local folder it is created atomically (written to a hidden temp folder,
then renamed). Loading checks the file's sha256 against the registry first and
lets skops rebuild only the exact types conveyor's own pipelines hold
(:func:`allowed_types`), so a file conveyor did not write is refused instead of run.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from conveyor.errors import ModelError
from conveyor.prepare.roles import Roles
from conveyor.storage import Storage, locate
from conveyor.train.families import FAMILIES
from conveyor.workspace import Workspace

MODEL_FILE = "model.skops"
MANIFEST_FILE = "manifest.json"
# the types beyond skops' own defaults that every conveyor model file may hold: the steps
# conveyor adds to each pipeline (features, category encoders, the router, whose anomaly
# detector is an isolation forest of trees) and the "robust" variant's target encoder,
# which keeps its cross-fitting splitter; each model family adds its own (Family.types)
COMMON_TYPES = frozenset({
    "conveyor.prepare.features.FeatureMaker", "conveyor.prepare.preprocess.AsCategories",
    "conveyor.prepare.preprocess.RareLevels", "conveyor.serve.routing.Router",
    "conveyor.train.bounded.BoundedPipeline",
    "numpy.dtype", "sklearn.tree._tree.Tree", "sklearn.model_selection._split.KFold",
    # the scikit-learn estimators of the steps above (the families name their own)
    "sklearn.pipeline.Pipeline", "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.impute._base.SimpleImputer", "sklearn.impute._base.MissingIndicator",
    "sklearn.preprocessing._data.StandardScaler", "sklearn.preprocessing._data.RobustScaler",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.preprocessing._target_encoder.TargetEncoder",
    "sklearn.ensemble._iforest.IsolationForest", "sklearn.tree._classes.ExtraTreeRegressor"})
# exact, fully qualified names, never a module prefix: ``builtins.`` or ``numpy.`` would
# admit ``exec``, ``eval`` or ``numpy.load``, which skops calls with the file's arguments
def allowed_types() -> frozenset[str]:
    """The types a model file may hold: the common steps and each registered family's."""
    return COMMON_TYPES.union(*(family.types for family in FAMILIES.values()))


def _estimators_conveyor_builds(type_filter: Any = None) -> list[tuple[str, type]]:
    """scikit-learn's ``all_estimators`` narrowed to the estimators :func:`allowed_types`
    names (what skops asks for while it is imported, see :func:`skops_io`)."""
    found = []
    for name in sorted(allowed_types()):
        module, _, cls = name.rpartition(".")
        if module.startswith("sklearn."):
            kind = getattr(importlib.import_module(module), cls)
            if isinstance(kind, type) and hasattr(kind, "get_params"):
                found.append((cls, kind))
    return found


@functools.cache
def skops_io() -> ModuleType:
    """``skops.io``, imported with scikit-learn's estimator list narrowed to conveyor's.

    On import, skops lists every scikit-learn estimator to trust them by default, and
    listing them imports all of scikit-learn: 1.7 s here, more than a whole inference
    call on 1,000 rows needs. conveyor passes the exact types it builds
    (:func:`allowed_types`) to every load, so narrowing the list while skops is
    imported only narrows its default trust. When skops is already imported, it is
    used as it is.
    """
    if "skops.io" not in sys.modules:
        import sklearn.utils

        everything = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = _estimators_conveyor_builds
        try:
            importlib.import_module("skops.io")
        finally:
            sklearn.utils.all_estimators = everything
    return importlib.import_module("skops.io")


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
    data = skops_io().dumps(bundle, compression=zipfile.ZIP_DEFLATED)
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


def load_version(workspace: Workspace, row: Mapping[str, Any]) -> LoadedModel:
    """Load the version a registry row describes, from its own folder in the models store."""
    return load_model(workspace.model_folder(row["path"], int(row["version"])), row["sha256"])


def _loads(data: bytes, model_path: str) -> Any:
    """Rebuild a verified file's objects, letting skops build only the allowed types."""
    sio = skops_io()
    try:
        return sio.loads(data, trusted=sorted(allowed_types()))
    except sio.exceptions.UntrustedTypesFoundException:
        pass  # named below
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not our file"
        raise ModelError(f"model file '{model_path}' is not a readable skops file: {exc}") from None
    try:
        refused = sorted(set(sio.get_untrusted_types(data=data)) - allowed_types())
    except Exception:  # noqa: BLE001 - a file skops lists no types of is no file of ours
        refused = ["(unlisted)"]
    shown = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5 else "")
    raise ModelError(f"model file '{model_path}' holds types conveyor never writes ({shown}); "
                     "refusing to load it: restore the version from a backup or retrain")


class VersionCache:
    """Model versions loaded (each verified) at most once per update.

    Loading is a fifth of an incremental update's cost (skops rebuilds every array
    and checks every type), and production is read by the prequential scoring and
    again by whatever updates it.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._loaded: dict[tuple[str, str], LoadedModel] = {}

    def get(self, row: dict[str, Any]) -> LoadedModel:
        key = (row["path"], row["sha256"])
        if key not in self._loaded:
            self._loaded[key] = load_version(self.workspace, row)
        return self._loaded[key]
