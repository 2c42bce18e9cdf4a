"""Retrain on the training window: a search over the configured candidates, or (a refit)
the parent's configuration alone; the choice validated on the newest rows, then fitted
on the whole window with its fallback."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from conveyor.config import Config, default_families
from conveyor.serve.bundle import LoadedModel, feature_schema
from conveyor.train.data import BATCH_COLUMN, BatchFrames, Design, design, target_values
from conveyor.train.fallback import Fallback, fallback_candidate, fit_fallback, fit_router
from conveyor.train.families import loss_params
from conveyor.train.history_choice import choose_history, follow_parent
from conveyor.train.search import (
    Candidate,
    Evaluation,
    FitSpec,
    Folds,
    SearchResult,
    cheapest_within,
    compute_backend,
    draw_candidates,
    evaluate_candidate,
    halve,
    remaining,
    search,
    single_threaded,
    spread,
)
from conveyor.train.trained import Origin, SearchRecord, Trained
from conveyor.validate.baseline import baseline_scores
from conveyor.validate.checks import sanity_check
from conveyor.validate.decide import Validation
from conveyor.validate.interpret import explain_version
from conveyor.validate.metrics import score_model, sort_key
from conveyor.validate.prequential import prediction_profile, served_score
from conveyor.validate.schemes import Split, holdout_split, kfold_splits, timeseries_splits
from conveyor.validate.served import Answers, Evidence, decide_rules

log = logging.getLogger(__name__)

Order = Callable[[list[Candidate], int], list[Candidate]]  # candidates, seed -> search order
Timer = Any  # conveyor.controller.state.Stages: ``with timer.stage(name):``


@dataclass(frozen=True)
class Request:
    """What to train: on which batches, from which production, and why."""

    window: list[dict[str, Any]]       # the training window's batches, oldest first
    new_ids: set[int]                  # the batches this update brought
    production: LoadedModel | None
    stand_ins: list[tuple[dict[str, Any], LoadedModel]]  # production, staging (loaded)
    refit: bool                        # production's configuration alone
    widen: bool                        # search every family, not only the configured ones
    why: str                           # the strategy's reason
    order: Order | None = None         # the meta-learner's search order, when budgeted
    evidence: Evidence = field(default_factory=dict)  # routing rules' past evidence


@dataclass(frozen=True)
class Rows:
    """The window's rows as the models read them, and where its newest rows start."""

    data: pd.DataFrame
    design: Design
    X: pd.DataFrame
    y: np.ndarray
    holdout_start: int
    is_new: np.ndarray


@dataclass(frozen=True)
class Searched:
    """What the search step found: evaluations on the full rows best first, successive
    halving's cheaper rungs, the candidates drawn and the naive baseline."""

    found: SearchResult
    early: list[Evaluation]
    drawn: int
    baseline: tuple[dict[str, Any], float]


def window_rows(config: Config, frames: BatchFrames, request: Request) -> Rows | str:
    """The window's rows and design; a message instead when there are too few."""
    data = frames.window(request.window)
    if config.train.sample_every > 1:
        data = data.iloc[spread(np.arange(len(data)), config.train.sample_every)]
        data = data.reset_index(drop=True)
    is_new = data[BATCH_COLUMN].isin(request.new_ids).to_numpy()
    if request.production is not None and is_new.any() and not is_new.all():
        holdout_start = int(np.argmax(is_new))  # the new batch: unseen by production too
    else:
        holdout_start = int(len(data) * (1 - config.validate_.holdout_share))
    # the fewest first rows a validation fit learns from
    first_fit = {"holdout": holdout_start, "kfold": len(data),
                 "timeseries": len(data) // (config.validate_.n_splits + 1)
                 }[config.validate_.scheme]
    chosen = design(config, data, max(first_fit, 1))
    if request.refit and request.production is not None:
        chosen = follow_parent(config, chosen, request.production.features)
    if chosen.dropped:
        log.info("features left out of this window (missing share above %.2f, or no value "
                 "in the rows the first validation fit learns from): %s",
                 config.quality.missing_share.fail, chosen.dropped)
    if len(data) < 2 * config.quality.min_rows:
        return (f"too few labelled rows to train ({len(data)}); "
                "lower quality.min_rows or use a wider stream.window")
    return Rows(data, chosen, data[chosen.inputs], target_values(config, data),
                holdout_start, is_new)


def retrain(config: Config, frames: BatchFrames, stages: Timer,
            request: Request) -> Trained | str:
    """Search (or refit), validate, fit on the window; a message when it cannot train."""
    rows = window_rows(config, frames, request)
    if isinstance(rows, str):
        return rows
    production, why = request.production, request.why
    # the model a refit takes its configuration from; it must read the same columns
    same_columns = production is not None and rows.design.inputs == production.features
    parent = production if request.refit and same_columns else None
    if request.refit and parent is None:
        why = f"{why}; but the window's columns changed, so a search instead"
    stand_in = _stand_in(config, request, parent, rows)
    # production itself is the validation fit: the refit is production refreshed with the
    # new batch, and production's score on that batch (unseen by it) validates it
    refresh = stand_in is not None and parent is not None and \
        stand_in[1].version == parent.version
    spec, local = _fit_specs(config, rows.design)
    seed = config.seed + max(request.new_ids)
    with stages.stage("search"):
        searched = _search(config, request, rows, parent, stand_in, spec, local, seed)
    best = _choose(config, searched)
    if parent is None:  # a search: its history features must earn their place
        rows, best, searched, local, why = _history_choice(config, rows, best, searched,
                                                           local, why)
        same_columns = production is not None and rows.design.inputs == production.features
    with stages.stage("fit"):
        start = time.perf_counter()
        final = single_threaded(local.pipeline(best.candidate).fit(rows.X, rows.y))
        train_seconds = time.perf_counter() - start
        test = holdout_split(len(rows.data), rows.holdout_start)[0][1]
        sanity = sanity_check(final, rows.X.iloc[test], config.validate_.max_latency_ms)
        if parent is None:
            fallback = _fallback(config, searched, best, local, rows,
                                 production if same_columns else None)
        elif parent.fallback is not None:  # kept; the router learns the champion's window
            fallback = Fallback(parent.fallback, fit_router(config.serve.routing, rows.X, local),
                                candidate=fallback_candidate(parent))
        else:
            fallback = Fallback()
    with stages.stage("validate"):
        validation, heldout = _validate(config, rows, best, local, production, refresh,
                                        fallback, request.evidence)
    with stages.stage("interpret"):
        explanation = explain_version(final, rows.X.iloc[test], rows.y[test],
                                      config.target.task, config.seed)
    note = _note(why, parent, stand_in, refresh, rows, searched, fallback)
    return Trained(
        final, best.candidate.family, best.candidate.variant, best.candidate.params,
        Origin.RETRAIN if parent is None else Origin.REFIT, note,
        None if parent is None else parent.version, feature_schema(rows.X, rows.design.roles),
        [] if rows.design.maker is None else final.named_steps["features"].output_names(),
        request.window, len(rows.data), train_seconds, validation, best.metrics, sanity,
        explanation, prediction_profile(final, rows.X.iloc[test]), fallback.model,
        fallback.router, SearchRecord(searched.found.evaluations + searched.early, best,
                                      config.validate_.scheme, searched.baseline),
        evidence=heldout, fallback_candidate=fallback.candidate)


def _fit_specs(config: Config, chosen: Design) -> tuple[FitSpec, FitSpec]:
    """How candidates are built in the search, and in this process."""
    spec = FitSpec(chosen.roles, config.prepare, config.target.task, config.metric,
                   config.seed, chosen.maker,
                   {"knn": {"memory": config.train.knn_memory},
                    **loss_params(config.target.task, config.metric)})
    # fits in this process (a refit, the final fit, the fallback) may use the estimator's
    # own threads; candidates in the search already run one per worker
    return spec, spec.with_overrides({**(spec.overrides or {}), "forest": {
        "n_jobs": config.compute.n_jobs if config.compute.backend == "local" else 1}})


def _history_choice(config: Config, rows: Rows, best: Evaluation, searched: Searched,
                    local: FitSpec, why: str
                    ) -> tuple[Rows, Evaluation, Searched, FitSpec, str]:
    """The search's choice with or without the history features, as they earn it; without
    them, the search's fits (which read them) are not reused for the fallback."""
    splits = _splits(config, len(rows.data), rows.holdout_start)
    choice = choose_history(config, rows.design, searched.found.evaluations, best, rows.X,
                            rows.y, splits, local)
    if not choice.dropped:
        return rows, best, searched, local, why
    rows = replace(rows, design=choice.design, X=rows.X[choice.design.inputs])
    unfitted = replace(searched.found, evaluations=[
        replace(e, model=None) for e in searched.found.evaluations])
    return (rows, choice.best, replace(searched, found=unfitted), choice.spec,
            f"{why}; {choice.note}")


def _splits(config: Config, n_rows: int, holdout_start: int) -> list[Split]:
    if config.validate_.scheme == "holdout":
        return holdout_split(n_rows, holdout_start)
    if config.validate_.scheme == "kfold":
        return kfold_splits(n_rows, config.validate_.n_splits)
    return timeseries_splits(n_rows, config.validate_.n_splits)


def _stand_in(config: Config, request: Request, parent: LoadedModel | None,
              rows: Rows) -> tuple[dict[str, Any], LoadedModel] | None:
    """Production or staging, when it can stand in for a refit's validation fit:
    ``parent``'s configuration, fitted from scratch under this config and reading the
    same columns, on a window that ends with the batch just before the new ones.

    A validation fit is that configuration fitted on the window's rows before the new
    batches and scored on them. The stand-in has not seen the new batches either, and
    was fitted on the same rows (a growing window) or one older batch more (a sliding
    one), so its score on them validates the refit without a second fit. With
    ``train.sample_every`` both are spread samples of those rows, not the same sample.
    """
    start, is_new = rows.holdout_start, rows.is_new
    if parent is None or config.validate_.scheme != "holdout" \
            or not is_new[start:].all() or is_new[:start].any():
        return None
    older = [b["id"] for b in request.window if b["id"] not in request.new_ids]
    if not older:
        return None
    wanted = (parent.manifest["family"], parent.manifest.get("variant") or "onehot",
              parent.manifest["params"])
    for row, model in request.stand_ins:
        if row["strategy"] == "incremental" \
                or (row["family"], row["variant"] or "onehot", row["params"]) != wanted \
                or not row["batch_ids"] or row["batch_ids"][-1] != older[-1] \
                or row["config_hash"] != config.digest():
            continue
        if model.features == parent.features:
            return row, model
    return None


def _search(config: Config, request: Request, rows: Rows, parent: LoadedModel | None,
            stand_in: tuple[dict[str, Any], LoadedModel] | None, spec: FitSpec,
            local: FitSpec, seed: int) -> Searched:
    """Score the candidates (the parent's configuration alone for a refit)."""
    folds = Folds(rows.X, rows.y, _splits(config, len(rows.data), rows.holdout_start))
    families = {**default_families(), **config.train.families} if request.widen \
        else config.train.families
    candidates = draw_candidates(families, config.train.search, seed)
    if parent is not None:
        manifest = parent.manifest
        candidates = [Candidate(manifest["family"], dict(manifest["params"]),
                                manifest.get("variant") or "onehot")]
    elif config.train.budget_seconds is not None and request.order is not None:
        candidates = request.order(candidates, seed)
    early: list[Evaluation] = []  # successive halving's cheaper rungs
    drawn = len(candidates)
    if stand_in is not None:  # production or staging: the validation fit, made
        row, model = stand_in
        start = time.perf_counter()
        X, y = rows.X.iloc[rows.holdout_start:], rows.y[rows.holdout_start:]
        scored = served_score(model, config.target.task, config.metric, X, y).served
        found = SearchResult([Evaluation(candidates[0], scored.get(config.metric), scored,
                                         float(row["train_seconds"]),
                                         time.perf_counter() - start)])
    elif parent is not None:
        found = SearchResult([evaluate_candidate(candidates[0], folds, local,
                                                 keep_model=config.serve.routing.enabled)])
    else:
        found, early = _budgeted_search(config, candidates, folds, spec)
    baseline = baseline_scores(rows.X, rows.y, folds.splits, config.target.task)
    return Searched(found, early, drawn, baseline)


def _budgeted_search(config: Config, candidates: list[Candidate], folds: Folds,
                     spec: FitSpec) -> tuple[SearchResult, list[Evaluation]]:
    """Successive halving's rungs (when on), then the survivors on the full rows, all
    within ``train.budget_seconds``."""
    budget, start = config.train.budget_seconds, time.perf_counter()
    untried: list[Candidate] = []
    early: list[Evaluation] = []
    with compute_backend(config.compute) as n_jobs:
        if config.train.search.halving:
            candidates, early, untried = halve(candidates, folds, spec, n_jobs,
                                               budget_seconds=budget)
        found = search(candidates, folds, spec, n_jobs=n_jobs,
                       budget_seconds=remaining(budget, start),
                       keep_models=config.serve.routing.enabled)
    # a survivor the budget stopped at the full rows was tried on a rung
    return replace(found, skipped=untried + ([] if early else found.skipped)), early


def _choose(config: Config, searched: Searched) -> Evaluation:
    evaluations, metric = searched.found.evaluations, config.metric
    if searched.found.skipped:
        log.info("search budget of %.0f s spent: %d of %d candidates not tried",
                 config.train.budget_seconds or 0, len(searched.found.skipped), searched.drawn)
    best = cheapest_within(evaluations, metric, config.train.search.cost_tolerance)
    log.info("chosen candidate: %s/%s %s (%s = %.4g; best of %d %.4g)", best.candidate.family,
             best.candidate.variant, best.candidate.params, metric,
             best.score or float("nan"), len(evaluations),
             evaluations[0].score or float("nan"))
    return best


def _validate(config: Config, rows: Rows, best: Evaluation, local: FitSpec,
              production: LoadedModel | None, refresh: bool, fallback: Fallback,
              evidence: Evidence) -> tuple[Validation, Evidence]:
    """The choice's and production's scores on the window's newest rows, each as it would
    serve them (router, champion, fallback), and the held-out evidence for the routing
    rules. The choice's rules there are decided on past evidence only: the held-out rows
    judge them, they do not choose them."""
    train_part, test_part = holdout_split(len(rows.data), rows.holdout_start)[0]
    task, metric, X, y = config.target.task, config.metric, rows.X, rows.y
    if refresh:  # production itself, scored as it served the new batch: scored once
        return Validation(best.metrics, best.metrics, config.validate_.promotion_margin,
                          True), {}
    model = best.model
    if config.validate_.scheme != "holdout":
        model = local.pipeline(best.candidate).fit(X.iloc[train_part], y[train_part])
    challenger, heldout = best.metrics, {}
    if model is not None and fallback.model is not None and fallback.unseen_holdout:
        settings = config.serve.routing
        router = fit_router(settings, X.iloc[train_part], local)
        answers = Answers.of(model, fallback.model, router, task, X.iloc[test_part],
                             y[test_part])
        past, _ = decide_rules(router, evidence, settings)
        challenger = answers.score(task, metric, past.rules_).served
        heldout = answers.evidence(metric)
    elif config.validate_.scheme != "holdout" and model is not None:
        challenger = score_model(model, task, X.iloc[test_part], y[test_part])
    incumbent = None
    if production is not None:
        newest = rows.data.iloc[test_part].reindex(columns=production.features)
        incumbent = served_score(production, task, metric, newest, y[test_part]).served
    return Validation(challenger, incumbent, config.validate_.promotion_margin), heldout


def _fallback(config: Config, searched: Searched, best: Evaluation, local: FitSpec,
              rows: Rows, production: LoadedModel | None) -> Fallback:
    """The robust model: the best that went furthest; cheaper rungs after."""
    metric = config.metric
    ranked = searched.found.evaluations + sorted(
        searched.early, key=lambda e: (e.rung, sort_key(metric, e.score)))
    return fit_fallback(config.serve.routing, ranked, best, local, rows.X, rows.y, production)


def _note(why: str, parent: LoadedModel | None,
          stand_in: tuple[dict[str, Any], LoadedModel] | None, refresh: bool, rows: Rows,
          searched: Searched, fallback: Fallback) -> str:
    """How the version came to be, for people (the registry's strategy note)."""
    if parent is not None:
        note = (f"{why}; v{parent.version}'s configuration fitted on {len(rows.data)} rows"
                + ("; fallback and router kept from it" if fallback.model is not None else ""))
        if stand_in is not None:
            note += (f"; validated by {'production' if refresh else 'staging'} "
                     f"v{stand_in[1].version}, the same configuration fitted on the window "
                     "up to the previous batch")
        return note
    evaluations, early = searched.found.evaluations, searched.early
    note = f"{why}; searched {len(evaluations)} candidates{fallback.note}"
    note += f"; budget left {len(searched.found.skipped)} untried" \
        if searched.found.skipped else ""
    if early:
        note += (f"; successive halving left {len(evaluations)} of "
                 f"{len({repr(e.candidate) for e in early})} for the full rows")
    return note
