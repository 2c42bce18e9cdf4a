"""The learning half of an update: prequential scores, the training strategy, the search,
validation, registration and promotion.

:mod:`conveyor.pipeline` calls :func:`learn` after a batch is collected and
checked; everything here works on accepted batches already in the raw store.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from conveyor.analyze import drift
from conveyor.analyze.batch_drift import drift_row, drift_settings
from conveyor.analyze.clean import apply_plan
from conveyor.analyze.quality import (
    CleanPlan,
)
from conveyor.collect import rawstore
from conveyor.config import Config, SearchConfig, default_families
from conveyor.errors import ConfigError, ModelError
from conveyor.meta import MetaModel, explore_order, fit_meta, meta_table, rank_candidates
from conveyor.meta.features import batch_features
from conveyor.prepare.features import FeatureMaker
from conveyor.prepare.roles import Roles, resolve_roles
from conveyor.prepare.target import derive_target
from conveyor.serve.bundle import (
    LoadedModel,
    feature_schema,
    library_versions,
    load_version,
    save_model,
    version_key,
)
from conveyor.serve.predict import peak_memory_mb
from conveyor.serve.routing import Router
from conveyor.store import Store
from conveyor.store.db import utcnow
from conveyor.train.families import COST_ORDER, FAMILIES, loss_params
from conveyor.train.search import (
    Candidate,
    Evaluation,
    SearchResult,
    cheapest_within,
    compute_backend,
    draw_candidates,
    evaluate_candidate,
    full_rows,
    halve,
    make_pipeline,
    remaining,
    search,
    single_threaded,
    spread,
)
from conveyor.train.strategy import Strategy, StrategyKind, choose_strategy
from conveyor.train.update import update_model
from conveyor.validate import registry
from conveyor.validate.baseline import baseline_scores
from conveyor.validate.checks import SanityReport, sanity_check
from conveyor.validate.interpret import explain_version
from conveyor.validate.metrics import LOWER_IS_BETTER, is_better, score_model, sort_key
from conveyor.validate.model_drift import PageHinkley, relative_loss
from conveyor.validate.schemes import holdout_split, kfold_splits, timeseries_splits
from conveyor.workspace import Workspace

log = logging.getLogger(__name__)

BATCH_COLUMN = "__conveyor_batch_id"


@dataclass
class UpdateResult:
    """What one update did; ``ok`` is the True/False the contract prints."""

    ok: bool
    message: str
    batch_ids: list[int] = field(default_factory=list)
    rows: int = 0
    version: int | None = None
    promoted: bool = False
    exhausted: bool = False


class Stages:
    """Times each stage of a run and records seconds and peak memory."""

    def __init__(self, store: Store, run: str) -> None:
        self.store, self.run, self.batch_id = store, run, None
        self.rows: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.rows.append({"run": self.run, "batch_id": self.batch_id, "stage": name,
                          "seconds": time.perf_counter() - start, "peak_mb": peak_memory_mb()})

    def save(self) -> None:
        for row in self.rows:  # stages timed before the batch id was known (collect)
            row["batch_id"] = row["batch_id"] if row["batch_id"] is not None else self.batch_id
        with self.store.transaction() as conn:
            self.store.insert_rows(conn, "stage_timings", self.rows)


# -- training data --------------------------------------------------------------------------


def _training_frame(config: Config, workspace: Workspace,
                    batches: list[dict[str, Any]]) -> pd.DataFrame:
    """Return the cleaned, time-sorted rows of ``batches``, tagged with their batch id."""
    frames = []
    for batch in batches:
        raw = rawstore.read_batch(workspace.resolve(batch["path"]), batch["sha256"])
        raw = derive_target(raw, config.target)
        plan = CleanPlan.from_dict(batch.get("clean_plan"))
        cleaned = apply_plan(raw, plan, config.target.column).frame
        frames.append(cleaned.assign(**{BATCH_COLUMN: batch["id"]}))
    data = pd.concat(frames, ignore_index=True)
    data = data.sort_values(config.source.time_column, kind="stable").reset_index(drop=True)
    if config.train.max_rows is not None and len(data) > config.train.max_rows:
        data = data.iloc[-config.train.max_rows:].reset_index(drop=True)
    return data


@dataclass(frozen=True)
class Design:
    """What the models of one window read and encode."""

    inputs: list[str]           # raw columns the pipeline reads (its feature schema)
    roles: Roles                # columns the preprocessing encodes, engineered ones included
    maker: FeatureMaker | None  # the feature-engineering step, when configured
    dropped: list[str]          # features left out for missing too often


def _design(config: Config, data: pd.DataFrame) -> Design:
    """Roles for this window; features missing too often are left out (and named)."""
    roles = resolve_roles(data.drop(columns=[BATCH_COLUMN]), config.columns,
                          config.target.column, config.source.time_column)
    dropped = [c for c in roles.features if c not in data.columns
               or data[c].isna().mean() > config.quality.missing_share.fail]
    roles = roles.without(set(dropped))
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


def model_input(data: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The columns a model takes; one that cleaning left out of a batch (it failed its
    quality check, e.g. all missing) comes back empty, as the model's imputers expect."""
    return data.reindex(columns=features)


def _target(config: Config, data: pd.DataFrame) -> np.ndarray:
    values = data[config.target.column]
    if config.target.task == "regression":
        return values.astype(float).to_numpy()
    return values.astype(str).to_numpy()


# -- prequential -------------------------------------------------------------------------


class Models:
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

    def production(self, store: Store) -> LoadedModel | None:
        row = store.production()
        return None if row is None else self.get(row)


def _prequential(config: Config, workspace: Workspace, store: Store,
                 batches: list[dict[str, Any]], models: Models) -> None:
    """Score production (and the never-updated baseline) on new batches before training."""
    production = store.production()
    if production is None:
        return
    rows_by_role = {"production": production}
    baseline = store.first_production()
    if baseline is not None:
        rows_by_role["baseline"] = baseline
    staging = registry.staging(store)
    if staging is not None:
        rows_by_role["staging"] = staging
    loaded = {role: models.get(row) for role, row in rows_by_role.items()}
    rows: list[dict[str, Any]] = []
    rows_drift: list[dict[str, Any]] = []
    for batch in batches:
        data = _training_frame(config, workspace, [batch])
        if data.empty:
            continue
        y = _target(config, data)
        for role, model in loaded.items():
            X = model_input(data, model.features)
            if role == "production" and model.manifest.get("prediction_profile"):
                rows_drift.extend(_prediction_drift(config, model, data, batch["id"]))
            metrics = score_model(model.model, config.target.task, X, y)
            rows.append({"batch_id": batch["id"], "version": model.version, "role": role,
                         "rows": len(data), "score": metrics[config.metric], "metrics": metrics})
            if role == "production" and model.fallback is not None:
                kept = score_model(model.fallback, config.target.task, X, y)
                rows.append({"batch_id": batch["id"], "version": model.version,
                             "role": "fallback", "rows": len(data),
                             "score": kept[config.metric], "metrics": kept})
            log.info("prequential %s v%d on batch %d: %s = %.4g", role, model.version,
                     batch["id"], config.metric, metrics[config.metric] or float("nan"))
    with store.transaction() as conn:
        store.insert_rows(conn, "prequential", rows)
        store.insert_rows(conn, "drift", rows_drift)


def _prediction_drift(config: Config, model: LoadedModel, data: pd.DataFrame,
                      batch_id: int) -> list[dict[str, Any]]:
    """Compare production's predictions on a new batch with those on its held-out rows."""
    reference = drift.profile_from_json(model.manifest["prediction_profile"])
    edges = np.asarray(reference.edges) if isinstance(reference, drift.NumericProfile) else None
    current = drift.profile_from_json(prediction_profile(
        model.model, model_input(data, model.features), edges))
    report = drift.compare({"prediction": reference}, {"prediction": current},
                           drift_settings(config))
    return [drift_row({"batch_id": batch_id, "role": "prediction", **r})
            for r in report.to_rows()]


# -- train + validate ----------------------------------------------------------------------


def _splits(config: Config, n_rows: int, holdout_start: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if config.validate_.scheme == "holdout":
        return holdout_split(n_rows, holdout_start)
    if config.validate_.scheme == "kfold":
        return kfold_splits(n_rows, config.validate_.n_splits)
    return timeseries_splits(n_rows, config.validate_.n_splits)


def _watch_model(config: Config, store: Store,
                 new_batches: list[dict[str, Any]]) -> tuple[bool, str | None]:
    """Run the model-drift detector and its policy.

    Return whether to widen the search and, on an alarm, its reason (which
    rules out an incremental update).
    """
    settings = config.validate_.model_drift
    production = store.production()
    if not settings.enabled or production is None:
        return False, None
    models = store.frame("models")
    lineage = _lineage(models, production["version"])
    root = models[models["version"] == lineage[-1]].iloc[0]
    reference = ((root["metrics"] or {}).get("holdout") or {}).get(config.metric)
    scores = store.frame("prequential")
    series = scores[(scores["role"] == "production") & scores["version"].isin(lineage)]
    if reference is None or series.empty:
        return False, None
    detector = PageHinkley(settings.delta, settings.threshold, settings.min_batches)
    lower = config.metric in LOWER_IS_BETTER
    for score in series.sort_values("batch_id")["score"]:
        detector.update(relative_loss(float(score), float(reference), lower))
    if not detector.drift_detected:
        return False, None
    last = float(series.sort_values("batch_id")["score"].iloc[-1])
    chosen = f"v{lineage[-1]}'s promotion" + (
        f" (refit since as v{production['version']})" if len(lineage) > 1 else "")
    reason = (f"model drift: production's {config.metric} went from {reference:.4g} at "
              f"{chosen} to {last:.4g} (Page-Hinkley {detector.statistic:.3g}"
              f" > {settings.threshold}); policy {settings.policy}")
    batch_id = new_batches[-1]["id"]
    with store.transaction() as conn:
        store.add_event(conn, "model_drift", reason, batch_id=batch_id,
                        version=production["version"])
    log.warning(reason)
    if settings.policy == "rollback":
        try:
            registry.rollback(store, reason)
            return False, reason
        except ModelError as exc:
            log.warning("cannot roll back (%s); retraining on recent data instead", exc)
    if settings.policy == "widen_search":
        return True, reason
    recent = store.accepted_batches(settings.retrain_batches)
    with store.transaction() as conn:
        store.add_event(conn, "window_reset", f"retrain on recent data after {reason}",
                        batch_id=recent[0]["id"])
    return False, reason


def _lineage(models: pd.DataFrame, version: int) -> list[int]:
    """``version`` and the versions it was refit or updated from, newest first, back to
    the one a search chose (or the oldest still listed): one configuration's history,
    which the model-drift detector follows across refreshes."""
    rows = models.set_index("version")
    chain = [version]
    parents = rows["parent_version"].astype("Float64")
    while rows.loc[chain[-1], "strategy"] in ("refit", "incremental"):
        parent = parents.loc[chain[-1]]
        if pd.isna(parent) or int(parent) not in rows.index or int(parent) in chain:
            break
        chain.append(int(parent))
    return chain


def learn(config: Config, workspace: Workspace, store: Store,
          new_batches: list[dict[str, Any]], stages: Stages,
          drift_alarm: str | None = None) -> UpdateResult:
    """Score production on the new batches, then update, refit or replace it."""
    models = Models(workspace)
    with stages.stage("prequential"):
        _prequential(config, workspace, store, new_batches, models)
        widen, model_alarm = _watch_model(config, store, new_batches)
    if drift_alarm and config.drift.on_alarm == "ignore":
        drift_alarm = None
    elif drift_alarm and config.drift.on_alarm == "reset":
        recent = store.accepted_batches(config.drift.reset_batches)
        with store.transaction() as conn:
            store.add_event(conn, "window_reset", f"train on the newest {len(recent)} "
                            f"batch(es) only after {drift_alarm}", batch_id=recent[0]["id"])
    strategy = _strategy(config, store, drift_alarm, model_alarm)
    log.info("strategy: %s (%s)", strategy.kind, strategy.reason)
    if strategy.kind is StrategyKind.INCREMENTAL:
        result = _incremental(config, workspace, store, new_batches, stages, strategy.reason,
                              models)
        if result is not None:
            return result
        strategy = Strategy(StrategyKind.REFIT, "the incremental update did not beat "
                            "production on the newest rows; its configuration is refit on "
                            "the window")
    return _train(config, workspace, store, new_batches, stages, models, widen,
                  strategy.reason, refit=strategy.kind is StrategyKind.REFIT)


def _strategy(config: Config, store: Store, data_alarm: str | None,
              model_alarm: str | None) -> Strategy:
    production = store.production()
    family = None if production is None else production["family"]
    since = _batches_since_search(store) if production is not None else 0
    return choose_strategy(config.train.strategy, config.train.retrain_every, family, since,
                           data_alarm, model_alarm)


def _batches_since_search(store: Store) -> int:
    """Accepted batches newer than the newest one a search trained on (the batch of the
    update that searched): the updates since, when each brings one batch."""
    models = store.frame("models")
    searched = models[models["strategy"].isna() | (models["strategy"] == "retrain")]
    newest = max(searched.sort_values("version")["batch_ids"].iloc[-1]) if len(searched) else 0
    batches = store.frame("batches")
    return int(((batches["status"] == "accepted") & (batches["id"] > newest)).sum())


def _incremental(config: Config, workspace: Workspace, store: Store,
                 new_batches: list[dict[str, Any]], stages: Stages,
                 why: str, models: Models) -> UpdateResult | None:
    """Update production with the new batches only; None when the update does not help.

    Validated honestly in time order: the update learns from the first part of
    the new rows and is compared with production on the rest; the registered
    model then learns from all of them.
    """
    production = models.production(store)
    assert production is not None
    row = store.production()
    assert row is not None
    family, metric, task = production.manifest["family"], config.metric, config.target.task
    data = _training_frame(config, workspace, new_batches)
    if len(data) < 2 * config.quality.min_rows:
        return None
    X, y = model_input(data, production.features), _target(config, data)
    cut = int(len(data) * (1 - config.validate_.holdout_share))
    with stages.stage("incremental"):
        try:
            trial, _ = update_model(production.model, family, X.iloc[:cut], y[:cut], config.seed)
        except ModelError as exc:
            log.info("incremental update impossible: %s", exc)
            return None
        challenger = score_model(trial, task, X.iloc[cut:], y[cut:])
        incumbent = score_model(production.model, task, X.iloc[cut:], y[cut:])
        if not is_better(metric, challenger.get(metric), incumbent.get(metric), 0.0):
            log.info("incremental trial %s %.4g vs production %.4g on the newest rows",
                     metric, challenger.get(metric) or float("nan"),
                     incumbent.get(metric) or float("nan"))
            return None
        start = time.perf_counter()
        final, how = update_model(production.model, family, X, y, config.seed)
        train_seconds = time.perf_counter() - start
        sanity = sanity_check(final, X, config.validate_.max_latency_ms)
    with stages.stage("interpret"):
        explanation = explain_version(final, X.iloc[cut:], y[cut:], task, config.seed)
    window = [store.batch(b) for b in row["batch_ids"]] + new_batches
    trained = Trained(final, family, production.manifest.get("variant", "onehot"),
                      production.manifest["params"], "incremental", f"{why}; {how}",
                      production.version, production.manifest["schema"],
                      production.manifest.get("engineered", []),
                      prediction_profile(final, X.iloc[cut:]), production.fallback,
                      production.router)
    with stages.stage("register"):
        version = _register(config, workspace, store, trained, window, new_batches,
                            {"validation": challenger, "holdout": challenger}, len(data),
                            train_seconds, sanity, explanation)
        promoted, reason = _decide(metric, challenger, incumbent, production, sanity, 0.0,
                                   version)
        _settle(config, workspace, store, version, promoted, reason, new_batches)
    return UpdateResult(True, f"v{version} = v{production.version} updated incrementally "
                        f"({how}); {'promoted' if promoted else 'production kept'}: {reason}",
                        version=version, promoted=promoted)


@dataclass(frozen=True)
class Trained:
    """A fitted model and how it came to be, ready to register."""

    model: Any
    family: str
    variant: str
    params: dict[str, Any]
    strategy: str  # retrain | incremental
    note: str
    parent: int | None
    schema: dict[str, Any]
    engineered: list[str]
    predictions: dict[str, Any] | None = None  # profile of its predictions on held-out rows
    fallback: Any = None  # robust model for the rows the router flags
    router: Any = None


def _fallback(config: Config, evaluations: list[Evaluation], best: Evaluation, roles: Roles,
              maker: FeatureMaker | None, X: pd.DataFrame, y: np.ndarray,
              overrides: dict[str, Any], production: LoadedModel | None = None
              ) -> tuple[Any, Any, str]:
    """Fit the robust fallback (the best other candidate that takes missing values and
    outliers natively) and the router that decides which rows it answers; return them
    and where they came from.

    A candidate the search scored on the full rows comes with its fit on the last split's
    training rows (with the holdout scheme, the window before the new batch): that fit is
    the fallback, with no second one on the window. When none did (the robust candidates
    stopped at a cheaper rung), ``production``'s fallback and router are kept if it has
    them (it reads the same columns): a fallback fitted on the window would cost as much
    as the search's full rows."""
    settings = config.serve.routing
    if not settings.enabled:
        return None, None, ""
    robust = [e for e in evaluations if FAMILIES[e.candidate.family].takes_nan
              and e.candidate != best.candidate and e.score is not None]
    if not robust:
        log.info("no robust candidate besides the champion: no fallback for this version")
        return None, None, ""
    if robust[0].model is None and production is not None \
            and production.fallback is not None:
        log.info("fallback and router kept from production v%d", production.version)
        return production.fallback, production.router, \
            f"; fallback and router kept from v{production.version}"
    choice = robust[0].candidate  # evaluations are sorted best first
    fallback = robust[0].model
    if fallback is None:
        fallback = single_threaded(make_pipeline(choice, roles, config.prepare,
                                                 config.target.task, config.seed, maker,
                                                 overrides).fit(X, y))
    router = Router(settings.max_missing_share, settings.range_margin,
                    settings.unseen_categories, settings.anomaly, settings.contamination,
                    config.seed).fit(X[[c for c in X.columns if c in roles.features]])
    log.info("fallback: %s/%s %s (%s)", choice.family, choice.variant, choice.params,
             "its fit in the search" if robust[0].model is not None else "fitted on the window")
    return fallback, router, ""


def prediction_profile(model: Any, X: pd.DataFrame,
                       edges: np.ndarray | None = None) -> dict[str, Any]:
    """The distribution of a model's predictions on ``X``, as a JSON-safe drift profile."""
    predictions = pd.DataFrame({"prediction": model.predict(X)})
    given = None if edges is None else {"prediction": edges}
    return drift.profile_to_json(drift.profile_frame(predictions, given)["prediction"])


def _settle(config: Config, workspace: Workspace, store: Store, version: int, promoted: bool,
            reason: str, new_batches: list[dict[str, Any]]) -> None:
    batch_id = new_batches[-1]["id"]
    if promoted:
        registry.promote(store, version, reason, batch_id=batch_id)
    else:
        if not reason.startswith(f"v{version} failed"):
            registry.set_staging(store, version, reason)
        with store.transaction() as conn:
            store.add_event(conn, "kept", reason, batch_id=batch_id, version=version)
    registry.apply_retention(store, workspace, config.registry.keep_versions)
    log.info("v%d %s: %s", version, "promoted" if promoted else "kept as candidate", reason)


def _train(config: Config, workspace: Workspace, store: Store,
           new_batches: list[dict[str, Any]], stages: Stages, models: Models,
           widen: bool = False, why: str = "", refit: bool = False) -> UpdateResult:
    """Search the candidates (or, with ``refit``, take production's configuration
    alone), validate the best on the newest rows, fit it on the window and register it."""
    window = store.accepted_batches(config.train.window_batches, store.window_anchor())
    data = _training_frame(config, workspace, window)
    if config.train.sample_every > 1:
        data = data.iloc[spread(np.arange(len(data)), config.train.sample_every)]
        data = data.reset_index(drop=True)
    design = _design(config, data)
    roles, maker = design.roles, design.maker
    if design.dropped:
        log.info("features left out of this window (missing share above %.2f): %s",
                 config.quality.missing_share.fail, design.dropped)
    if len(data) < 2 * config.quality.min_rows:
        return UpdateResult(False, f"too few labelled rows to train ({len(data)}); "
                                   "lower quality.min_rows or use a wider stream.window")
    production = models.production(store)
    # the model a refit takes its configuration from; it must read the same columns
    same_columns = production is not None and design.inputs == production.features
    parent = production if refit and same_columns else None
    if refit and parent is None:
        why = f"{why}; but the window's columns changed, so a search instead"
    new_ids = {b["id"] for b in new_batches}
    is_new = data[BATCH_COLUMN].isin(new_ids).to_numpy()
    if production is not None and is_new.any() and not is_new.all():
        holdout_start = int(np.argmax(is_new))  # the new batch: unseen by production too
    else:
        holdout_start = int(len(data) * (1 - config.validate_.holdout_share))
    X, y = data[design.inputs], _target(config, data)
    metric, task, seed = config.metric, config.target.task, config.seed
    # a model that already is the refit's validation fit, when there is one
    stand_in = None
    if parent is not None and config.validate_.scheme == "holdout" \
            and is_new[holdout_start:].all() and not is_new[:holdout_start].any():
        stand_in = _stand_in(config, store, models, parent, window, new_ids)
    # production itself is the validation fit: the refit is production refreshed with the
    # new batch, and production's score on that batch (unseen by it) validates it
    refresh = stand_in is not None and parent is not None and \
        stand_in[1].version == parent.version
    overrides = {"knn": {"memory": config.train.knn_memory}, **loss_params(task, metric)}
    # fits in this process (a refit, the final fit, the fallback) may use the estimator's
    # own threads; candidates in the search already run one per worker
    local = {**overrides, "forest": {"n_jobs": config.compute.n_jobs
                                     if config.compute.backend == "local" else 1}}

    with stages.stage("search"):
        splits = _splits(config, len(data), holdout_start)
        families = {**default_families(), **config.train.families} if widen \
            else config.train.families
        candidates = draw_candidates(families, config.train.search,
                                     seed + new_batches[-1]["id"])
        if parent is not None:
            manifest = parent.manifest
            candidates = [Candidate(manifest["family"], dict(manifest["params"]),
                                    manifest.get("variant") or "onehot")]
        elif config.train.budget_seconds is not None:
            candidates = order_candidates(store, candidates, metric, config.target.column,
                                          config.train.search, seed + new_batches[-1]["id"])
        early: list[Evaluation] = []  # successive halving's cheaper rungs
        drawn = len(candidates)
        if stand_in is not None:  # production or staging: the validation fit, made
            row, model = stand_in
            start = time.perf_counter()
            scored = score_model(model.model, task, X.iloc[holdout_start:], y[holdout_start:])
            found = SearchResult([Evaluation(candidates[0], scored.get(metric), scored,
                                             float(row["train_seconds"]),
                                             time.perf_counter() - start)])
        elif parent is not None:
            found = SearchResult([evaluate_candidate(candidates[0], X, y, splits, roles,
                                                     config.prepare, task, metric, seed,
                                                     maker, local)])
        else:
            budget, start = config.train.budget_seconds, time.perf_counter()
            untried: list[Candidate] = []
            with compute_backend(config.compute) as n_jobs:
                if config.train.search.halving:
                    candidates, early, untried = halve(
                        candidates, X, y, splits, roles, config.prepare, task, metric, seed,
                        n_jobs, maker, overrides, budget_seconds=budget)
                found = search(candidates, X, y, splits, roles, config.prepare, task, metric,
                               seed, n_jobs=n_jobs, maker=maker,
                               budget_seconds=remaining(budget, start), overrides=overrides,
                               keep_models=config.serve.routing.enabled)
                # a survivor the budget stopped at the full rows was tried on a rung
                found = replace(found, skipped=untried + ([] if early else found.skipped))
        baseline, baseline_seconds = baseline_scores(X, y, splits, task)
    evaluations = found.evaluations
    if found.skipped:
        log.info("search budget of %.0f s spent: %d of %d candidates not tried",
                 config.train.budget_seconds or 0, len(found.skipped), drawn)
    best = cheapest_within(evaluations, metric, config.train.search.cost_tolerance)
    log.info("chosen candidate: %s/%s %s (%s = %.4g; best of %d %.4g)", best.candidate.family,
             best.candidate.variant, best.candidate.params, metric,
             best.score or float("nan"), len(evaluations),
             evaluations[0].score or float("nan"))

    with stages.stage("validate"):
        train_part, test_part = holdout_split(len(data), holdout_start)[0]
        if config.validate_.scheme == "holdout":
            challenger_holdout = best.metrics
        else:
            model = make_pipeline(best.candidate, roles, config.prepare, task, seed, maker,
                                  local)
            model.fit(X.iloc[train_part], y[train_part])
            challenger_holdout = score_model(model, task, X.iloc[test_part], y[test_part])
        production_holdout = None
        if refresh:  # the same model on the same rows: scored once
            production_holdout = challenger_holdout
        elif production is not None:
            production_holdout = score_model(production.model, task,
                                             model_input(data.iloc[test_part], production.features),
                                             y[test_part])

    with stages.stage("fit"):
        start = time.perf_counter()
        final = single_threaded(make_pipeline(best.candidate, roles, config.prepare, task,
                                              seed, maker, local).fit(X, y))
        train_seconds = time.perf_counter() - start
        sanity = sanity_check(final, X.iloc[test_part], config.validate_.max_latency_ms)
        kept = ""
        if parent is not None:
            fallback, router = parent.fallback, parent.router
        else:  # the robust model: the best that went furthest; cheaper rungs after
            ranked = evaluations + sorted(early, key=lambda e: (e.rung,
                                                                sort_key(metric, e.score)))
            fallback, router, kept = _fallback(config, ranked, best, roles, maker, X, y, local,
                                               production if same_columns else None)

    with stages.stage("interpret"):
        explanation = explain_version(final, X.iloc[test_part], y[test_part], task, seed)

    if parent is not None:
        note = (f"{why}; v{parent.version}'s configuration fitted on {len(data)} rows"
                + ("; fallback and router kept from it" if fallback is not None else ""))
        if stand_in is not None:
            note += (f"; validated by {'production' if refresh else 'staging'} "
                     f"v{stand_in[1].version}, the same configuration fitted on the window up "
                     "to the previous batch")
    else:
        note = f"{why}; searched {len(evaluations)} candidates{kept}"
        note += f"; budget left {len(found.skipped)} untried" if found.skipped else ""
        if early:
            note += (f"; successive halving left {len(evaluations)} of "
                     f"{len({repr(e.candidate) for e in early})} for the full rows")
    trained = Trained(final, best.candidate.family, best.candidate.variant,
                      best.candidate.params, "retrain" if parent is None else "refit", note,
                      None if parent is None else parent.version,
                      feature_schema(X, roles),
                      [] if maker is None else final.named_steps["features"].output_names(),
                      prediction_profile(final, X.iloc[test_part]), fallback, router)
    with stages.stage("register"):
        version = _register(config, workspace, store, trained, window, new_batches,
                            {"validation": best.metrics, "holdout": challenger_holdout},
                            len(data), train_seconds, sanity, explanation,
                            evaluations=evaluations + early, best=best,
                            baseline=(baseline, baseline_seconds))
        promoted, reason = _decide(metric, challenger_holdout, production_holdout, production,
                                   sanity, config.validate_.promotion_margin, version, refresh)
        _settle(config, workspace, store, version, promoted, reason, new_batches)
    return UpdateResult(True, f"trained v{version} on {len(data)} rows; "
                        f"{'promoted' if promoted else 'production kept'}: {reason}",
                        version=version, promoted=promoted)


def _stand_in(config: Config, store: Store, models: Models, parent: LoadedModel,
              window: list[dict[str, Any]], new_ids: set[int]
              ) -> tuple[dict[str, Any], LoadedModel] | None:
    """Production or staging, when it can stand in for a refit's validation fit:
    ``parent``'s configuration, fitted from scratch under this config and reading the
    same columns, on a window that ends with the batch just before the new ones.

    A validation fit is that configuration fitted on the window's rows before the new
    batches and scored on them. The stand-in has not seen the new batches either, and
    was fitted on the same rows (a growing window) or one older batch more (a sliding
    one), so its score on them validates the refit without a second fit. With
    ``train.sample_every`` both are spread samples of those rows, not the same sample.
    """
    older = [b["id"] for b in window if b["id"] not in new_ids]
    if not older:
        return None
    wanted = (parent.manifest["family"], parent.manifest.get("variant") or "onehot",
              parent.manifest["params"])
    for row in (store.production(), registry.staging(store)):
        if row is None or row["strategy"] == "incremental" \
                or (row["family"], row["variant"] or "onehot", row["params"]) != wanted \
                or not row["batch_ids"] or row["batch_ids"][-1] != older[-1] \
                or row["config_hash"] != config.digest():
            continue
        model = models.get(row)
        if model.features == parent.features:
            return row, model
    return None


def order_candidates(store: Store, candidates: list[Candidate], metric: str,
                     target: str, search: SearchConfig | None = None, seed: int = 0
                     ) -> list[Candidate]:
    """Order candidates for a budgeted search (see :func:`search_order`) from the store."""
    search = search or SearchConfig()
    evaluations = full_rows(store.frame("evaluations"))
    features = batch_features(store.frame("batches"), store.frame("column_stats"), target) \
        if search.warm_start and not evaluations.empty else pd.DataFrame()
    order, meta = search_order(evaluations, features, candidates, metric, search, seed)
    if meta is not None and meta.informative:
        log.info("candidates ordered by the meta-learner (forward R2 %.2f), %.0f%% of slots "
                 "exploring", meta.cv_r2, 100 * search.explore)
    return order


def search_order(evaluations: pd.DataFrame, features: pd.DataFrame,
                 candidates: list[Candidate], metric: str, search: SearchConfig, seed: int
                 ) -> tuple[list[Candidate], MetaModel | None]:
    """The meta-learner's most promising candidates first when it has shown it can tell
    (forward-validated) and ``search.warm_start`` is on, with a share ``search.explore`` of
    the slots drawn at random from the rest; else the cheapest first (past fit seconds of
    each family and variant, or a default order by family).

    ``evaluations`` are the past ones; ``features``' last row describes the batch the
    search is for. Return the order and the meta-model (None when none was fitted).
    """
    if evaluations.empty:
        return sorted(candidates, key=lambda c: COST_ORDER.index(c.family)), None
    seconds = evaluations.groupby(["family", "variant"])["fit_seconds"].mean().to_dict()
    cheapest = sorted(candidates, key=lambda c: seconds.get(
        (c.family, c.variant), 1e3 + COST_ORDER.index(c.family)))
    if not search.warm_start:
        return cheapest, None
    try:
        direction = "min" if metric in LOWER_IS_BETTER else "max"
        meta = fit_meta(meta_table(evaluations, features, direction))
        newest = {str(k): v for k, v in features.iloc[-1].drop("batch_id").items()} \
            if len(features) else {}
        order = rank_candidates(meta, [c.as_dict() for c in cheapest], newest)
    except (ValueError, KeyError) as exc:
        log.info("meta-learner could not order candidates: %s", exc)
        return cheapest, None
    if not meta.informative:
        return cheapest, meta
    return [cheapest[i] for i in explore_order(order, search.explore, seed)], meta


def _decide(metric: str, challenger: dict[str, Any], incumbent: dict[str, Any] | None,
            production: LoadedModel | None, sanity: SanityReport, margin: float,
            version: int, refresh: bool = False) -> tuple[bool, str]:
    """Promote or keep a new version: it must pass its checks and beat production by
    ``margin`` on the newest rows; a refresh (production's configuration refit with the
    new batch, validated by production's own score on it) replaces production as a
    sliding-window refit does, since no other model was compared."""
    if not sanity.passed:
        return False, f"v{version} failed its checks: {'; '.join(sanity.failures)}"
    score = challenger.get(metric)
    if production is None or incumbent is None:
        return True, f"first model: hold-out {metric} {score:.4g}"
    if refresh:
        return True, (f"refresh of production v{production.version} with the new batch; "
                      f"v{production.version}'s hold-out {metric} on it {score:.4g}")
    current = incumbent.get(metric)
    text = f"hold-out {metric} {score:.4g} vs production v{production.version} {current:.4g}"
    if is_better(metric, score, current, margin):
        return True, f"beats production: {text}"
    return False, f"does not beat production by {margin:.0%}: {text}"


def _register(config: Config, workspace: Workspace, store: Store, trained: Trained,
              window: list[dict[str, Any]], new_batches: list[dict[str, Any]],
              metrics: dict[str, Any], train_rows: int, train_seconds: float,
              sanity: SanityReport, explanation: dict[str, Any],
              evaluations: list[Evaluation] | None = None, best: Evaluation | None = None,
              baseline: tuple[dict[str, Any], float] | None = None) -> int:
    version = store.next_version()
    models = workspace.models_store
    while models.exists(version_key(version)):
        # a crash after the folder's rename but before its row: never listed nor served
        log.warning("model folder %s has no registry row (an interrupted update); skipping "
                    "its number", models.location(version_key(version)))
        version += 1
    lineage = {"batch_ids": [b["id"] for b in window],
               "batch_sha256": [b["sha256"] for b in window],
               "window_start": window[0]["window_start"], "window_end": window[-1]["window_end"],
               "train_rows": train_rows, "config_hash": config.digest(),
               "strategy": trained.strategy, "parent_version": trained.parent}
    metrics = {**metrics, "latency_ms_per_1k_rows": sanity.latency_ms}
    manifest = {"family": trained.family, "variant": trained.variant, "params": trained.params,
                "task": config.target.task, "target": config.target.column,
                "schema": trained.schema, "metrics": metrics, "lineage": lineage,
                "engineered": trained.engineered, "strategy": trained.strategy,
                "prediction_profile": trained.predictions,
                "fallback": None if trained.fallback is None else {
                    "family": trained.fallback.named_steps["model"].__class__.__name__,
                    "routing": trained.router.get_params()},
                "strategy_note": trained.note,
                "libraries": library_versions(), "created_at": utcnow()}
    location, sha, size = save_model(models, version, trained.model, manifest,
                                     {"explain.json": explanation}, trained.fallback,
                                     trained.router)
    batch_id = new_batches[-1]["id"]
    scheme = config.validate_.scheme
    with store.transaction() as conn:
        store.insert_rows(conn, "models", [{
            "version": version, "family": trained.family, "variant": trained.variant,
            "params": trained.params, "stage": "candidate",
            "path": workspace.catalog_path(location), "sha256": sha, "size_bytes": size,
            "batch_ids": lineage["batch_ids"], "window_start": lineage["window_start"],
            "window_end": lineage["window_end"], "train_rows": train_rows, "metrics": metrics,
            "config_hash": lineage["config_hash"], "libraries": manifest["libraries"],
            "train_seconds": train_seconds, "created_at": manifest["created_at"],
            "strategy": trained.strategy, "strategy_note": trained.note,
            "parent_version": trained.parent}])
        rows = [{
            "batch_id": batch_id, "family": e.candidate.family, "variant": e.candidate.variant,
            "params": e.candidate.params, "scheme": scheme, "metric": config.metric,
            "score": e.score, "metrics": e.metrics, "fit_seconds": e.fit_seconds,
            "predict_seconds": e.predict_seconds, "chosen": int(e is best),
            "train_rows": e.rows, "rung": e.rung}
            for e in evaluations or []]
        if baseline is not None:
            rows.append({"batch_id": batch_id, "family": "baseline", "variant": None,
                         "params": {}, "scheme": scheme, "metric": config.metric,
                         "score": baseline[0][config.metric], "metrics": baseline[0],
                         "fit_seconds": baseline[1], "predict_seconds": 0.0, "chosen": 0,
                         "train_rows": evaluations[0].rows if evaluations else None,
                         "rung": 0})
        store.insert_rows(conn, "evaluations", rows)
        store.insert_rows(conn, "importance", [
            {"version": version, "column": c, "importance": v}
            for c, v in explanation["importance"].items()])
    return version
