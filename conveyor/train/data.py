"""The rows models learn from: each accepted batch read from the raw store and cleaned
once per update, windows of them in time order, and what the models of a window read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from conveyor.analyze.clean import apply_plan
from conveyor.analyze.quality import CleanPlan
from conveyor.collect import rawstore
from conveyor.config import Config
from conveyor.errors import ConfigError
from conveyor.io.cache import cached_frame
from conveyor.prepare.features import FeatureMaker
from conveyor.prepare.history import HistoryIndex, horizon
from conveyor.prepare.roles import Roles, resolve_roles
from conveyor.prepare.target import derive_target
from conveyor.workspace import Workspace

BATCH_COLUMN = "__conveyor_batch_id"


class BatchFrames:
    """Cleaned batches of one update, each read from the raw store (its sha256 checked)
    and cleaned by its stored plan at most once, however many steps use it.

    With ``features.history``, a batch's rows come with their history features,
    computed from the accepted batches before it (``catalog``: every accepted batch,
    oldest first; :mod:`conveyor.prepare.history`)."""

    def __init__(self, config: Config, workspace: Workspace,
                 catalog: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        self.config, self.workspace, self.catalog = config, workspace, catalog
        self._plain: dict[int, pd.DataFrame] = {}
        self._frames: dict[int, pd.DataFrame] = {}
        self._known: list[dict[str, Any]] | None = None

    def keep(self, batch: dict[str, Any], cleaned: pd.DataFrame) -> None:
        """Take a batch's cleaned rows from its ingestion (the stored rows, cleaned by the
        plan stored with it), so it is not read and cleaned a second time."""
        self._plain[batch["id"]] = cleaned.assign(**{BATCH_COLUMN: batch["id"]})
        self._known = None  # a new batch: read the catalog again

    def plain(self, batch: dict[str, Any]) -> pd.DataFrame:
        """The batch's cleaned rows as stored, tagged with its id (not to be modified)."""
        if batch["id"] not in self._plain:
            config = self.config
            raw = rawstore.read_batch(self.workspace.resolve(batch["path"]), batch["sha256"])
            raw = derive_target(raw, config.target)
            plan = CleanPlan.from_dict(batch.get("clean_plan"))
            cleaned = apply_plan(raw, plan, config.target.column).frame
            self._plain[batch["id"]] = cleaned.assign(**{BATCH_COLUMN: batch["id"]})
        return self._plain[batch["id"]]

    def get(self, batch: dict[str, Any]) -> pd.DataFrame:
        """The batch's rows as models read them: cleaned, with their history features."""
        if batch["id"] not in self._frames:
            rows = self.plain(batch)
            if self.config.features.history:
                rows = pd.concat([rows, self._history_features(batch, rows)], axis=1)
            self._frames[batch["id"]] = rows
        return self._frames[batch["id"]]

    def _history_features(self, batch: dict[str, Any], rows: pd.DataFrame) -> pd.DataFrame:
        """The batch's history features, computed once: a batch's history (the batches
        before it) never changes, so they are kept in the workspace cache, keyed by the
        settings and the stored batches they read."""
        config = self.config
        earlier = history_batches(config, self._catalog(), batch)
        names = [h.output for h in config.features.history]
        settings = json.dumps([config.features.model_dump(include={"history"}, mode="json"),
                               config.target.label_delay or config.stream.window,
                               config.source.time_column, batch["sha256"],
                               [b["sha256"] for b in earlier]], sort_keys=True)
        key = hashlib.sha256(settings.encode()).hexdigest()[:20]
        features = cached_frame(
            self.workspace.cache / f"history-{key}.parquet",
            lambda: HistoryIndex(config, self.history(earlier)).features(
                rows, f"batch {batch['id']}"),
            lambda kept: list(kept.columns) == names and len(kept) == len(rows))
        return features.astype(float).set_axis(rows.index)

    def history(self, batches: list[dict[str, Any]]) -> pd.DataFrame:
        """The plain rows of ``batches`` that history features read."""
        if not batches:
            return pd.DataFrame(columns=[self.config.source.time_column])
        return pd.concat([self.plain(b) for b in batches], ignore_index=True)

    def _catalog(self) -> list[dict[str, Any]]:
        if self.catalog is None:
            raise ConfigError("features.history needs the catalog of stored batches")
        if self._known is None:
            self._known = self.catalog()
        return self._known

    def window(self, batches: list[dict[str, Any]]) -> pd.DataFrame:
        """The rows of ``batches`` in time order, the newest ``train.max_rows`` of them."""
        data = pd.concat([self.get(b) for b in batches], ignore_index=True)
        data = data.sort_values(self.config.source.time_column, kind="stable")
        data = data.reset_index(drop=True)
        limit = self.config.train.max_rows
        if limit is not None and len(data) > limit:
            data = data.iloc[-limit:].reset_index(drop=True)
        return data


@dataclass(frozen=True)
class Design:
    """What the models of one window read and encode."""

    inputs: list[str]           # raw columns the pipeline reads (its feature schema)
    roles: Roles                # columns the preprocessing encodes, engineered ones included
    maker: FeatureMaker | None  # the feature-engineering step, when configured
    dropped: list[str]          # features left out for missing too often

    def without(self, columns: list[str]) -> Design:
        """The design with ``columns`` (raw inputs, e.g. history features) left out."""
        gone = set(columns)
        return replace(self, inputs=[c for c in self.inputs if c not in gone],
                       roles=self.roles.without(gone))


def design(config: Config, data: pd.DataFrame, first_fit: int | None = None) -> Design:
    """Roles for this window; features missing too often, or on every row of the first
    ``first_fit`` rows (the smallest training part a validation fits on: a history
    feature before the stream had any history), are left out (and named)."""
    roles = resolve_roles(data.drop(columns=[BATCH_COLUMN]), config.columns,
                          config.target.column, config.source.time_column)
    early = data.iloc[:first_fit] if first_fit else data
    dropped = [c for c in roles.features if c not in data.columns
               or data[c].isna().mean() > config.quality.missing_share.fail
               or early[c].isna().all()]
    roles = roles.without(set(dropped))
    history = [h.output for h in config.features.history if h.output in data.columns
               and h.output not in dropped and h.output not in config.columns.exclude]
    roles = Roles(tuple(dict.fromkeys([*roles.numeric, *history])), roles.categorical)
    spec = config.features
    if not spec.calendar and not spec.derived:
        return Design(list(roles.features), roles, None, dropped)
    maker = FeatureMaker(time_column=config.source.time_column, timezone=spec.timezone,
                         calendar=list(spec.calendar),
                         derived=[d.model_dump() for d in spec.derived])
    needed = [config.source.time_column] if spec.calendar else []
    needed += [c for d in spec.derived for c in d.columns]
    missing = sorted({c for c in needed if c not in data.columns})
    if missing:
        raise ConfigError(f"features: column(s) {missing} are not in the data")
    inputs = list(dict.fromkeys([*roles.features, *needed]))
    model_roles = Roles(roles.numeric + tuple(maker.output_names()), roles.categorical)
    return Design(inputs, model_roles, maker, dropped)


def history_batches(config: Config, catalog: list[dict[str, Any]],
                    batch: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The accepted batches whose rows the history features of ``batch``'s rows may read:
    those ingested before it (``None``: every one, for rows not ingested yet) that reach
    into the features' horizon."""
    earlier = [b for b in catalog if b.get("status", "accepted") == "accepted"
               and (batch is None or b["window_index"] < batch["window_index"])]
    if not earlier:
        return []
    def last(b: dict[str, Any]) -> pd.Timestamp:
        return pd.Timestamp(b.get("time_max") or b["window_end"])

    first = max(last(b) for b in earlier) if batch is None \
        else pd.Timestamp(batch.get("time_min") or batch["window_start"])
    since = first - horizon(config)
    return [b for b in earlier if last(b) >= since]


def model_input(data: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The columns a model takes; one that cleaning left out of a batch (it failed its
    quality check, e.g. all missing) comes back empty, as the model's imputers expect."""
    return data.reindex(columns=features)


def target_values(config: Config, data: pd.DataFrame) -> np.ndarray:
    """The target as the task's models expect it: floats, or class labels as text."""
    values = data[config.target.column]
    if config.target.task == "regression":
        return values.astype(float).to_numpy()
    return values.astype(str).to_numpy()
