"""One update, stage by stage: collect -> analyze -> score the new batch -> watch ->
choose strategy and window -> train -> validate -> register -> decide -> retain.

Each step is a function of its stage package; this module only wires them, reads the
registry's state once (:class:`UpdateState`) and writes what the steps decided.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import replace
from typing import Any

from threadpoolctl import threadpool_limits

from conveyor.analyze.batch_drift import DataAlarm, drift_settings
from conveyor.collect.ingest import collect
from conveyor.config import Config
from conveyor.controller.state import Stages, UpdateResult, UpdateState
from conveyor.errors import InputError, ModelError
from conveyor.meta.order import order_candidates
from conveyor.serve.bundle import LoadedModel, VersionCache
from conveyor.store import Store
from conveyor.train.data import BatchFrames
from conveyor.train.retrain import Request, retrain
from conveyor.train.strategy import Strategy, StrategyKind, batches_since_search, choose_strategy
from conveyor.train.trained import Origin, Trained
from conveyor.train.update import incremental_update
from conveyor.train.windows import choose_window
from conveyor.validate import registry
from conveyor.validate.checks import too_good
from conveyor.validate.decide import Decision, decide
from conveyor.validate.prequential import past_evidence, score_new_batches
from conveyor.validate.served import Evidence, combined, decide_rules
from conveyor.validate.watch import ModelAlarm, watch_model
from conveyor.workspace import Workspace

log = logging.getLogger(__name__)

Batches = list[dict[str, Any]]


def update(config: Config) -> UpdateResult:
    """Run one update under the workspace lock: ingest the next window and carry it
    through every stage."""
    workspace = Workspace.of(config).create()
    threads = threadpool_limits(config.compute.threads) if config.compute.threads else \
        contextlib.nullcontext()
    with workspace.lock(config.lock.timeout_seconds), threads:
        store = Store.open(workspace.db_url)
        try:
            _check_target(config, store, workspace)
            stages = Stages(store, uuid.uuid4().hex[:12])
            result = run(config, workspace, store, stages)
            if not result.exhausted:
                stages.save()
            return result
        finally:
            store.close()


def _check_target(config: Config, store: Store, workspace: Workspace) -> None:
    """A workspace learns one target with one task: another is refused before anything
    is ingested (its batches and models would mix two problems)."""
    wanted = f"{config.target.column} ({config.target.task})"
    built = store.meta_value("target")
    if built is None:
        with store.transaction() as conn:
            store.set_meta_value(conn, "target", wanted)
    elif built != wanted:
        raise InputError(f"workspace '{workspace.root}' was built for target {built}; this "
                         f"config asks for {wanted}. Point `workspace:` in the config at a new "
                         f"folder, or delete '{workspace.root}' to start the stream over")


def run(config: Config, workspace: Workspace, store: Store, stages: Stages) -> UpdateResult:
    # each batch read and cleaned once; history features read the accepted batches
    frames = BatchFrames(config, workspace, catalog=lambda: store.accepted_batches())
    with stages.stage("collect"):
        batches, message = collect(config, workspace, store, keep=frames.keep)
    if not batches:
        return UpdateResult(False, message, exhausted=True)
    stages.batch_id = batches[-1]["id"]
    ids, rows = [b["id"] for b in batches], sum(b["rows"] for b in batches)
    accepted = [b for b in batches if b["status"] == "accepted"]
    if not accepted:
        reasons = "; ".join(f"batch {b['id']}: {b['reason']}" for b in batches)
        return UpdateResult(False, f"quarantined (kept in the raw store): {reasons}", ids, rows)
    alarms = [b["drift_alarm"] for b in accepted if b.get("drift_alarm") is not None]
    try:
        result = learn(config, store, stages, frames, accepted, alarms)
    except Exception:
        # the batches are stored for good: say what that means before the error itself
        log.error("batch(es) %s are stored (accepted, %d rows) and stay in the training "
                  "window; nothing needs repair. Fix the cause below and run update again: "
                  "it ingests the next window and trains on these batches too",
                  ", ".join(map(str, ids)), rows)
        raise
    result.batch_ids, result.rows = ids, rows
    return result


def learn(config: Config, store: Store, stages: Stages, frames: BatchFrames, new: Batches,
          data_alarms: list[DataAlarm]) -> UpdateResult:
    """Score production on the new batches, then update, refit or replace it."""
    workspace = frames.workspace
    state, versions = UpdateState.load(store), VersionCache(workspace)
    with stages.stage("prequential"):
        _score_in_service(store, frames, versions, state, new)
        prequential = store.frame("prequential")
        model_alarm = watch_model(config.validate_.model_drift, config.metric,
                                  state.production, store.frame("models"), prequential)
        # the routing rules' evidence: production as it served the past batches, with and
        # without the new ones (rows the held-out validation judges must not choose)
        keep = config.serve.routing.evidence_batches
        evidence = past_evidence(prequential, keep)
        earlier = past_evidence(prequential, keep, before=min(b["id"] for b in new))
    state, widen, data_alarm = _answer_alarms(config, store, state, (frames, versions),
                                              (model_alarm, data_alarms), new)
    strategy = _strategy(config, store, state, data_alarm, model_alarm)
    production = None if state.production is None else versions.get(state.production)
    trained: Trained | None = None
    if strategy.kind is StrategyKind.INCREMENTAL:
        assert production is not None and state.production is not None
        window = [store.batch(b) for b in state.production["batch_ids"]] + new
        trained = incremental_update(config, frames.window(new), production, window,
                                     strategy.reason, stages)
        if trained is None:
            strategy = Strategy(StrategyKind.REFIT, "the incremental update did not beat "
                                "production on the newest rows; its configuration is refit "
                                "on the window")
    if trained is None:
        request = Request(
            store.accepted_batches(config.train.window_batches, state.window_anchor),
            {b["id"] for b in new}, production,
            [(row, versions.get(row)) for row in (state.production, state.staging) if row],
            strategy.kind is StrategyKind.REFIT, widen, strategy.reason,
            lambda candidates, seed: order_candidates(store, candidates, config.metric,
                                                      config.target.column,
                                                      config.train.search, seed),
            earlier)
        retrained = retrain(config, frames, stages, request)
        if isinstance(retrained, str):
            return UpdateResult(False, retrained)
        trained = retrained
    # held-out evidence covers the new batches itself, as the new version's models saw them
    trained = _settle_routing(config, trained, earlier if trained.evidence else evidence)
    with stages.stage("register"):
        version = registry.register(store, workspace, config, trained, new[-1]["id"])
        decision = decide(config.metric, trained.validation, trained.sanity,
                          None if production is None else production.version, version)
        registry.settle(store, workspace, version, decision, new[-1]["id"],
                        config.registry.keep_versions)
        _warn_if_too_good(store, config, version, trained, new[-1]["id"])
    return UpdateResult(True, _message(version, trained, decision), version=version,
                        promoted=decision.promoted)


def _warn_if_too_good(store: Store, config: Config, version: int, trained: Trained,
                      batch_id: int) -> None:
    """An implausibly perfect hold-out score is said in the log and kept as an event."""
    warning = too_good(trained.validation.challenger, config.target.task)
    if warning is None:
        return
    log.warning("v%d: %s", version, warning)
    with store.transaction() as conn:
        store.add_event(conn, "suspicious_score", f"v{version}: {warning}", batch_id=batch_id,
                        version=version)


def _score_in_service(store: Store, frames: BatchFrames, versions: VersionCache,
                      state: UpdateState, new: Batches) -> None:
    """Prequential: production, the never-updated baseline and staging score each new
    batch before anything learns from it."""
    if state.production is None:
        return
    roles = {"production": state.production, "baseline": state.baseline,
             "staging": state.staging}
    in_service = {role: versions.get(row) for role, row in roles.items() if row is not None}
    scored = score_new_batches(frames, new, in_service, drift_settings(frames.config))
    with store.transaction() as conn:
        store.insert_rows(conn, "prequential", scored.scores)
        store.insert_rows(conn, "drift", scored.prediction_drift)


def _settle_routing(config: Config, trained: Trained, evidence: Evidence) -> Trained:
    """The new version's routing rules, each on only where the past batches' and its own
    held-out evidence prove its fallback better than its champion."""
    if trained.router is None:
        return trained
    router, decision = decide_rules(trained.router, combined(evidence, trained.evidence),
                                    config.serve.routing)
    proven = [rule for rule, on in decision.rules.items() if on]
    log.info("routing: %d of %d rules proven (%s)", len(proven), len(decision.rules),
             ", ".join(proven) or "none: every row goes to the champion")
    return replace(trained, router=router, routing=decision)


def _answer_model_alarm(config: Config, store: Store, state: UpdateState,
                        alarm: ModelAlarm | None, new: Batches) -> tuple[UpdateState, bool]:
    """Record a model-drift alarm and apply its policy: roll back, widen the search, or
    retrain on recent batches. Return the state after it and whether to widen."""
    if alarm is None or state.production is None:
        return state, False
    with store.transaction() as conn:
        store.add_event(conn, "model_drift", alarm.reason, batch_id=new[-1]["id"],
                        version=state.production["version"])
    log.warning(alarm.reason)
    if alarm.policy == "rollback":
        try:
            registry.rollback(store, alarm.reason)
            return state.with_production(store), False
        except ModelError as exc:
            log.warning("cannot roll back (%s); retraining on recent data instead", exc)
    if alarm.policy == "widen_search":
        return state, True
    if alarm.policy == "evidence":
        return state, False  # the caller compares candidate windows
    recent = store.accepted_batches(config.validate_.model_drift.retrain_batches)
    return _reset_window(store, state, recent[0]["id"],
                         f"retrain on recent data after {alarm.reason}"), False


def _answer_alarms(config: Config, store: Store, state: UpdateState,
                   loaded: tuple[BatchFrames, VersionCache],
                   alarms: tuple[ModelAlarm | None, list[DataAlarm]],
                   new: Batches) -> tuple[UpdateState, bool, str | None]:
    """Answer the model-drift and data-drift alarms by their policies; where a policy is
    ``evidence``, choose the training window by evidence once for both. Return the state,
    whether to widen the search, and the data alarm the strategy sees."""
    model_alarm, data_alarms = alarms
    state, widen = _answer_model_alarm(config, store, state, model_alarm, new)
    state, data_alarm = _answer_data_alarm(config, store, state, data_alarms)
    suspected = [str(data_alarm)] if data_alarm and config.drift.on_alarm == "evidence" else []
    if model_alarm is not None and model_alarm.policy == "evidence":
        suspected.append(model_alarm.reason)
    if suspected and state.production is not None:
        frames, versions = loaded
        state = _window_by_evidence(config, store, state, frames,
                                    versions.get(state.production), new, "; ".join(suspected))
    return state, widen, data_alarm


def _window_by_evidence(config: Config, store: Store, state: UpdateState, frames: BatchFrames,
                        production: LoadedModel, new: Batches, why: str) -> UpdateState:
    """Compare candidate training windows on the newest rows and keep the best (an event
    records the candidates, their scores and the choice)."""
    kept = store.accepted_batches(config.train.window_batches)
    choice = choose_window(config, frames, production, kept, {b["id"] for b in new})
    if choice is None:
        message = (f"after {why}: too few new rows to compare training windows; every batch "
                   "is kept")
        anchor = state.window_anchor
    else:
        message = f"after {why}: {choice.describe()}"
        anchor = None if choice.keeps_everything else choice.start
    log.info(message)
    with store.transaction() as conn:
        store.move_window_anchor(conn, anchor)
        store.add_event(conn, "window_choice", message, batch_id=new[-1]["id"])
    return state.with_anchor(anchor)


def _answer_data_alarm(config: Config, store: Store, state: UpdateState,
                       alarms: list[DataAlarm]) -> tuple[UpdateState, str | None]:
    """Apply ``drift.on_alarm`` to the new batches' data-drift alarms: ignore them, train
    on the newest batches only (a window reset), or leave the window to the evidence;
    return the state and the reason the strategy sees (None: no alarm it must answer)."""
    alarm = DataAlarm.combined(alarms)
    if alarm is None or config.drift.on_alarm == "ignore":
        return state, None
    if config.drift.on_alarm == "reset":
        recent = store.accepted_batches(config.drift.reset_batches)
        state = _reset_window(store, state, recent[0]["id"], f"train on the newest "
                              f"{len(recent)} batch(es) only after {alarm}")
    return state, alarm


def _reset_window(store: Store, state: UpdateState, batch_id: int, why: str) -> UpdateState:
    """Start the training window at ``batch_id`` from now on (and say so in an event)."""
    with store.transaction() as conn:
        store.set_window_anchor(conn, batch_id)
        store.add_event(conn, "window_reset", why, batch_id=batch_id)
    return state.with_anchor(store.window_anchor() or batch_id)


def _strategy(config: Config, store: Store, state: UpdateState, data_alarm: str | None,
              model_alarm: ModelAlarm | None) -> Strategy:
    production = state.production
    since = 0 if production is None else batches_since_search(store.frame("models"),
                                                              store.frame("batches"))
    strategy = choose_strategy(config.train.strategy, config.train.retrain_every,
                               None if production is None else production["family"], since,
                               data_alarm, None if model_alarm is None else model_alarm.reason)
    log.info("strategy: %s (%s)", strategy.kind, strategy.reason)
    return strategy


def _message(version: int, trained: Trained, decision: Decision) -> str:
    outcome = f"{'promoted' if decision.promoted else 'production kept'}: {decision.reason}"
    if trained.origin is Origin.INCREMENTAL:
        return (f"v{version} = v{trained.parent} updated incrementally ({trained.how}); "
                f"{outcome}")
    return f"trained v{version} on {trained.train_rows} rows; {outcome}"
