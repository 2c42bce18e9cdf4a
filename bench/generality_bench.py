"""Generality: conveyor on synthetic streams nobody tuned it for, against strong baselines.

    python bench/generality_bench.py [--streams hourly,friedman,hyperplane,sea] [--quick]
                                     [--json out.json] [--keep DIR] [--per-batch]

Four seeded streams from ``bench/streams.py`` (hourly Poisson counts with a station id and a
day index; Friedman #1 with abrupt changes; a rotating hyperplane; SEA thresholds with label
noise) are each written as a CSV into a temporary folder and replayed with one config
template: conveyor's defaults except the source, target and task, ``stream.window``, the
metric (MAE or accuracy), ``hgb`` added (one configuration) to the default families,
``train.budget_seconds: 30`` and ``compute.n_jobs: 2``. Nothing is set per stream but the
window (so each stream makes its 20-21 batches) and the task. conveyor runs in this process
as ``conveyor replay`` does (``pipeline.update`` until ``exhausted``, logs at WARNING).

From its ``prequential`` table: role ``production`` (the served score: router + champion +
fallback, with ``routed_share`` in its metrics), ``champion`` (the champion alone on every
row; absent when the version has no fallback, then equal to production), ``fallback`` and
``baseline`` (conveyor's first model, never updated).

After the replay, on exactly the accepted batches conveyor scored (read back from the raw
store and cleaned with each batch's stored plan, as ``bench/replay_bench.py`` does), with
every column but target and time (text as ordinal codes, unknown -> NaN) and scikit-learn's
default ``HistGradientBoosting{Regressor,Classifier}``, each batch t is predicted from
accepted batches before t only:

(a) HGB fitted once on the first update's batches, never updated;
(b) HGB refit on the last ``train.window_batches`` batches before t (sliding);
(c) HGB refit on all batches before t (expanding);
(d) naive: regression, the previous batch's mean target (hourly: its mean at the same hour
    of day); classification, the previous batch's majority class.

Ratios: served / champion for MAE; champion / served for accuracy, so above 1 always means
the served predictions are worse than the champion alone.
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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.streams import STREAMS, Stream  # noqa: E402
from conveyor import pipeline  # noqa: E402
from conveyor.analyze.clean import apply_plan  # noqa: E402
from conveyor.analyze.quality import CleanPlan  # noqa: E402
from conveyor.collect import rawstore  # noqa: E402
from conveyor.config import Config, load_config  # noqa: E402
from conveyor.logs import setup_logging  # noqa: E402
from conveyor.store import Store  # noqa: E402
from conveyor.workspace import Workspace  # noqa: E402

SEED = 42
FULL_BATCHES = {"hourly": 21, "friedman": 20, "hyperplane": 20, "sea": 20}
QUICK_BATCHES = 8
FAMILIES = {  # conveyor's default families and grids, plus one gradient boosting model
    "linear": {"grid": {"alpha": [0.1, 1.0, 10.0]}},
    "knn": {"grid": {"n_neighbors": [10, 30]}},
    "tree": {"grid": {"max_depth": [6, 10], "min_samples_leaf": [20]}},
    "hgb": {"grid": {"max_iter": [200]}},
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def environment() -> str:
    import sklearn

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
            f", load average {load}, Python {sys.version.split()[0]}, scikit-learn "
            f"{sklearn.__version__}")


# -- conveyor ----------------------------------------------------------------------------


def write_config(stream: Stream, csv: Path, folder: Path) -> Path:
    """The one config template; only the window and the task differ between streams."""
    regression = stream.task == "regression"
    data = {
        "workspace": str(folder / "workspace"), "seed": SEED,
        "source": {"kind": "csv", "path": str(csv), "time_column": "time"},
        "target": {"column": "target", "task": stream.task},
        "stream": {"window": stream.window},
        "validate": {"metric": "mae" if regression else "accuracy"},
        "train": {"budget_seconds": 30, "families": FAMILIES},
        "compute": {"n_jobs": 2},
    }
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


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


# -- baselines ---------------------------------------------------------------------------


def cleaned_batch(config: Config, workspace: Workspace, batch: dict[str, Any]) -> pd.DataFrame:
    """An accepted batch's rows as conveyor scores and trains on them."""
    raw = rawstore.read_batch(workspace.root / batch["path"], batch["sha256"])
    plan = CleanPlan.from_dict(batch.get("clean_plan"))
    return apply_plan(raw, plan, config.target.column).frame


class HGB:
    """OrdinalEncoder for text (unknown/missing -> NaN), then default HistGradientBoosting."""

    def __init__(self, frame: pd.DataFrame, task: str) -> None:
        features = [c for c in frame.columns if c not in ("time", "target")]
        self.text = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])
                     or pd.api.types.is_bool_dtype(frame[c])]
        self.numeric = [c for c in features if c not in self.text]
        self.task = task

    def X(self, data: pd.DataFrame) -> pd.DataFrame:
        X = data.reindex(columns=self.numeric + self.text)  # a dropped column comes back NaN
        for column in self.numeric:
            X[column] = pd.to_numeric(X[column], errors="coerce").astype(float)
        for column in self.text:
            X[column] = X[column].astype(object).map(lambda v: np.nan if pd.isna(v) else str(v))
        return X

    def fit(self, data: pd.DataFrame) -> Any:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan)
        model = (HistGradientBoostingRegressor if self.task == "regression"
                 else HistGradientBoostingClassifier)(random_state=SEED)
        pipe = make_pipeline(ColumnTransformer([("text", encoder, self.text)],
                                               remainder="passthrough"), model)
        return pipe.fit(self.X(data), target(data, self.task))


def target(data: pd.DataFrame, task: str) -> np.ndarray:
    y = data["target"]
    return y.astype(float).to_numpy() if task == "regression" else y.astype(str).to_numpy()


def score(task: str, y: np.ndarray, predicted: np.ndarray) -> float:
    if task == "regression":
        return float(mean_absolute_error(y, predicted))
    return float(accuracy_score(y, predicted))


def naive(stream: Stream, previous: pd.DataFrame, data: pd.DataFrame) -> np.ndarray:
    """(d): the previous batch's mean (hourly: at the same hour) or majority class."""
    if stream.task == "classification":
        return np.full(len(data), previous["target"].astype(str).mode().iloc[0])
    mean = previous["target"].astype(float).mean()
    if "hour" not in data:
        return np.full(len(data), mean)
    by_hour = previous.groupby("hour")["target"].mean()
    return data["hour"].map(by_hour).fillna(mean).to_numpy(dtype=float)


def baselines(stream: Stream, config: Config, first_ids: list[int]) -> dict[str, Any]:
    """Each accepted batch after the first update, predicted from the batches before it."""
    workspace = Workspace.of(config)
    store = Store.open(workspace.db_url)
    try:
        accepted = store.accepted_batches(10**9)
    finally:
        store.close()
    frames = {b["id"]: cleaned_batch(config, workspace, b) for b in accepted}
    ids = [b["id"] for b in accepted]
    k, task = config.train.window_batches, stream.task
    first = pd.concat([frames[i] for i in first_ids], ignore_index=True)
    hgb = HGB(first, task)
    frozen = hgb.fit(first)
    out: dict[str, Any] = {"a": {}, "b": {}, "c": {}, "d": {}, "numeric": hgb.numeric,
                           "text": hgb.text, "window_batches": k}
    for position, i in enumerate(ids):
        if i in first_ids or position == 0:
            continue
        data, past = frames[i], ids[:position]
        y = target(data, task)
        X = hgb.X(data)
        out["a"][i] = score(task, y, frozen.predict(X))
        sliding = hgb.fit(pd.concat([frames[j] for j in past[-k:]], ignore_index=True))
        out["b"][i] = score(task, y, sliding.predict(X))
        out["c"][i] = (out["b"][i] if len(past) <= k else score(task, y, hgb.fit(
            pd.concat([frames[j] for j in past], ignore_index=True)).predict(X)))
        out["d"][i] = score(task, y, naive(stream, frames[past[-1]], data))
    return out


# -- one stream --------------------------------------------------------------------------


def metrics_of(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def run_stream(stream: Stream, batches: int, root: Path) -> dict[str, Any]:
    folder = root / stream.name
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{stream.name}.csv"
    stream.make(batches, SEED).to_csv(csv, index=False)
    config = load_config(write_config(stream, csv, folder))
    setup_logging(config.workspace / "logs", logging.WARNING)  # as `conveyor replay`
    collect = Collect()
    logging.getLogger("conveyor").addHandler(collect)
    log(f"{stream.name}: {stream.about}")
    start = time.perf_counter()
    updates, error = replay(config, batches + 5)
    conveyor_seconds = time.perf_counter() - start
    logging.getLogger("conveyor").removeHandler(collect)
    out: dict[str, Any] = {"name": stream.name, "task": stream.task, "about": stream.about,
                           "window": stream.window, "metric": config.metric,
                           "config": yaml.safe_load((folder / "conveyor.yaml").read_text()),
                           "updates": updates, "error": error, "warnings": collect.records,
                           "conveyor_seconds": conveyor_seconds}
    store = Store.open(Workspace.of(config).db_url)
    try:
        out["prequential"] = store.frame("prequential")
        out["batches"] = store.frame("batches")
        out["models"] = store.frame("models")
        out["events"] = store.frame("events")
    finally:
        store.close()
    first = next((u["batch_ids"] for u in updates if u["batch_ids"]), None)
    start = time.perf_counter()
    if first and (out["batches"]["status"] == "accepted").any():
        try:
            with threadpool_limits(1):  # as conveyor's compute.threads: no spinning OpenMP
                out["baselines"] = baselines(stream, config, first)
        except Exception:
            out["baseline_error"] = traceback.format_exc()
    out["baseline_seconds"] = time.perf_counter() - start
    log(f"{stream.name}: conveyor {conveyor_seconds:.1f} s, baselines "
        f"{out['baseline_seconds']:.1f} s")
    return out


# -- report ------------------------------------------------------------------------------


def figures(run: dict[str, Any]) -> dict[str, Any]:
    """Per-batch scores on the batches conveyor's production and every baseline cover."""
    pq = run["prequential"]
    role = {r: pq[pq["role"] == r].set_index("batch_id") for r in
            ("production", "champion", "fallback", "baseline")}
    base = run.get("baselines", {})
    covered = sorted(set(role["production"].index).intersection(
        *[set(base.get(k, {})) for k in "abcd"]))
    prod = role["production"]
    served = np.array([prod.loc[i, "score"] for i in covered], dtype=float)
    champion = np.array([role["champion"].loc[i, "score"] if i in role["champion"].index
                         else prod.loc[i, "score"] for i in covered], dtype=float)
    shares = np.array([metrics_of(prod.loc[i, "metrics"]).get("routed_share", 0.0) or 0.0
                       for i in covered], dtype=float)
    ratio = served / champion if run["task"] == "regression" else champion / served
    per_batch = []
    for n, i in enumerate(covered):
        per_batch.append({
            "batch": int(i), "version": int(prod.loc[i, "version"]),
            "rows": int(prod.loc[i, "rows"]), "served": served[n], "champion": champion[n],
            "fallback": float(role["fallback"].loc[i, "score"])
            if i in role["fallback"].index else None,
            "first_model": float(role["baseline"].loc[i, "score"])
            if i in role["baseline"].index else None,
            "routed_share": shares[n], "routes": metrics_of(prod.loc[i, "metrics"]).get("routes"),
            **{k: base[k][i] for k in "abcd"}})
    return {"covered": covered, "served": served, "champion": champion, "shares": shares,
            "ratio": ratio, "per_batch": per_batch}


def mean_of(rows: list[dict[str, Any]], key: str) -> tuple[float, int]:
    values = [r[key] for r in rows if r[key] is not None]
    return (float(np.mean(values)) if values else float("nan")), len(values)


def section(run: dict[str, Any], per_batch: bool) -> list[str]:
    task, metric = run["task"], run["metric"]
    better = "lower" if task == "regression" else "higher"
    lines = [f"### {run['name']}: {run['about']} ({task}, window {run['window']}, "
             f"{metric}, {better} is better)", ""]
    if run.get("error"):
        lines += ["**conveyor failed:**", "", "```", run["error"].strip()[-1500:], "```", ""]
    if "baseline_error" in run:
        lines += ["**baselines failed:**", "", "```", run["baseline_error"].strip()[-800:],
                  "```", ""]
    if not run.get("baselines"):
        return lines
    f = figures(run)
    if not f["covered"]:
        return [*lines, "no batch scored by conveyor and the baselines", ""]
    rows = f["per_batch"]
    fallback, n_fallback = mean_of(rows, "fallback")
    first, n_first = mean_of(rows, "first_model")
    k = run["baselines"]["window_batches"]
    naive_name = ("prev. batch mean at same hour" if run["name"] == "hourly" else
                  "prev. batch mean" if task == "regression" else "prev. batch majority")
    lines += [f"| served | champion alone | fallback alone | conveyor first model | "
              f"(a) HGB once | (b) HGB last {k} | (c) HGB expanding | (d) {naive_name} |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|",
              "| " + " | ".join([f"{f['served'].mean():.4f}", f"{f['champion'].mean():.4f}",
                                 f"{fallback:.4f}" + (f" ({n_fallback})" if n_fallback
                                                      < len(rows) else ""),
                                 f"{first:.4f}" + (f" ({n_first})" if n_first < len(rows)
                                                   else "")]
                                + [f"{mean_of(rows, key)[0]:.4f}" for key in "abcd"]) + " |",
              ""]
    worst = int(np.argmax(f["ratio"]))
    where = (f"batch {f['covered'][worst]}" if f["ratio"][worst] != f["ratio"].min()
             else "every batch")
    which = "served/champion" if task == "regression" else "champion/served"
    updates = run["updates"]
    strategies = pd.Series([s for s in run["models"].get("strategy", pd.Series())
                            .fillna("retrain")]).value_counts()
    families = pd.Series(run["models"].get("family", pd.Series())).value_counts()
    batches = run["batches"]
    events = run["events"]["kind"].value_counts() if len(run["events"]) else pd.Series()
    lines += [f"{len(f['covered'])} batches scored ({int(sum(r['rows'] for r in rows)):,} "
              f"rows) of {len(batches)} ({int((batches['status'] == 'quarantined').sum())} "
              f"quarantined). {which}: mean {f['ratio'].mean():.4f}, worst "
              f"{f['ratio'][worst]:.4f} ({where}; >1: served worse). "
              f"Routed to fallback: mean {f['shares'].mean():.1%}, max {f['shares'].max():.1%}. "
              f"Served beats (c) on {int(_beats(task, f['served'], rows, 'c'))} of "
              f"{len(rows)} batches. Router rows by route: {routes_of(rows)}.",
              f"Versions: {', '.join(f'{v} {k}' for k, v in strategies.items())}; families "
              f"{', '.join(f'{k} {v}' for k, v in families.items())}; events "
              f"{', '.join(f'{k} {v}' for k, v in events.items()) or 'none'}; conveyor "
              f"warnings/errors logged: {len(run['warnings'])}. Wall: conveyor "
              f"{run['conveyor_seconds']:.0f} s ({len(updates)} updates), baselines "
              f"{run['baseline_seconds']:.0f} s.", ""]
    if per_batch:
        lines += ["| batch | v | served | champion | fallback | routed | (a) | (b) | (c) | (d) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['batch']} | {r['version']} | {r['served']:.3f} | {r['champion']:.3f} "
                  f"| {_num(r['fallback'])} | "
                  f"{r['routed_share']:.1%} | {r['a']:.3f} | {r['b']:.3f} | {r['c']:.3f} | "
                  f"{r['d']:.3f} |" for r in rows]
        lines.append("")
    return lines


def routes_of(rows: list[dict[str, Any]]) -> str:
    """Rows per route over the scored batches (``kept:<rule>``: flagged, champion kept)."""
    total: dict[str, int] = {}
    for row in rows:
        for name, figures_ in (row["routes"] or {}).items():
            total[name] = total.get(name, 0) + int(figures_.get("rows", 0))
    return ", ".join(f"{k} {v:,}" for k, v in sorted(total.items())) or "none recorded"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _beats(task: str, served: np.ndarray, rows: list[dict[str, Any]], key: str) -> int:
    other = np.array([r[key] for r in rows], dtype=float)
    return int((served < other).sum() if task == "regression" else (served > other).sum())


def report(runs: list[dict[str, Any]], command: str, env: str, total: float,
           per_batch: bool) -> str:
    lines = [f"`{command}` on {dt.date.today().isoformat()}", "", f"Machine: {env}.", "",
             "One config template for every stream: conveyor defaults + source/target/task, "
             "window, metric, families linear/knn/tree (default grids) + hgb (one config), "
             "budget 30 s, n_jobs 2. Scores: mean prequential score over the batches all "
             "models are scored on; baselines: HGB defaults on every column but target "
             "and time, one thread (as conveyor's compute.threads).", ""]
    for run in runs:
        lines += section(run, per_batch)
    lines.append(f"Total wall time: {total:.0f} s.")
    return "\n".join(lines)


def as_json(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        item = {k: v for k, v in run.items() if not isinstance(v, pd.DataFrame)}
        item["prequential"] = run["prequential"].to_dict("records")
        item["models"] = run["models"].drop(columns=["libraries"], errors="ignore") \
            .to_dict("records")
        item["events"] = run["events"].to_dict("records")
        if run.get("baselines"):
            f = figures(run)
            item["per_batch"] = f["per_batch"]
            item["ratio"] = f["ratio"].tolist()
        out.append(item)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default=",".join(STREAMS),
                        help=f"comma-separated subset of {', '.join(STREAMS)}")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_BATCHES} batches per stream (a smoke run)")
    parser.add_argument("--json", type=Path, default=None, help="also write raw figures here")
    parser.add_argument("--keep", type=Path, default=None,
                        help="work in this new folder and keep it (default: a temporary one)")
    parser.add_argument("--per-batch", action="store_true", help="print per-batch tables")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.streams.split(",") if n.strip()]
    unknown = sorted(set(names) - set(STREAMS))
    if unknown:
        parser.error(f"unknown stream {unknown}; choose from {sorted(STREAMS)}")
    command = "python bench/generality_bench.py" + "".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv))
    env = environment()
    log(env)
    start = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="generality-bench-") as tmp:
        root = args.keep or Path(tmp)
        for name in names:
            batches = QUICK_BATCHES if args.quick else FULL_BATCHES[name]
            runs.append(run_stream(STREAMS[name], batches, root))
    total = time.perf_counter() - start
    text = report(runs, command, env, total, args.per_batch)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "environment": env,
                                         "total_seconds": total, "streams": as_json(runs)},
                                        indent=1, default=str))
    print(text)


if __name__ == "__main__":
    main()
