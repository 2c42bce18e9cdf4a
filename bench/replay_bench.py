"""The full demo replay: conveyor's prequential MAE and seconds per update against two baselines.

    python bench/replay_bench.py [--batches N] [--config conveyor.yaml] [--json out.json]

The config is copied into a temporary folder with ``workspace`` pointed there;
for the demo config (source ``flights.csv``) the demo data are written beside
the copy with :func:`conveyor.demo.prepare_demo_data`, for any other config the
source and enrichment paths are made absolute against the original config's
folder. conveyor then runs in this process exactly as ``conveyor replay`` runs
it (``pipeline.replay``, logs at WARNING to the console and to the workspace's
log file), and every update is timed by the wall clock.

Between two updates (outside their timing, so both sides see the same machine
load), on the same accepted batches (read back from the raw store with
``rawstore.read_batch`` and cleaned with each batch's stored cleaning plan, so
every model is scored on exactly the rows conveyor's prequential scores used),
two baselines are computed with one scikit-learn pipeline:
``OrdinalEncoder`` (unknown and missing -> NaN) for text columns, then
``HistGradientBoostingRegressor`` (defaults, native NaN handling, the codes
used as numbers), on every column but the target, the time column and
``columns.exclude`` (weather and planes columns included, as they are in the
raw batches; no calendar or derived features):

(a) trained once on the first update's batches, never updated;
(b) refit from scratch on the newest ``train.window_batches`` accepted batches
    after every update, scored on the next batch (prequential), fit timed.

The comparison covers the batches all three are scored on (every accepted
batch after the first update). Regression targets only (metric MAE).
Threads are left as a user would have them; the environment is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conveyor import pipeline  # noqa: E402
from conveyor.analyze.clean import apply_plan  # noqa: E402
from conveyor.analyze.quality import CleanPlan  # noqa: E402
from conveyor.collect import rawstore  # noqa: E402
from conveyor.config import Config, load_config  # noqa: E402
from conveyor.logs import setup_logging  # noqa: E402
from conveyor.prepare.target import derive_target  # noqa: E402
from conveyor.store import Store  # noqa: E402
from conveyor.workspace import Workspace  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- setup -------------------------------------------------------------------------------


def copy_config(original: Path, folder: Path) -> tuple[Path, bool]:
    """Write the config into ``folder`` with its workspace there; return it and whether the
    demo data must be prepared beside it."""
    data = yaml.safe_load(original.read_text(encoding="utf-8"))
    data["workspace"] = str(folder / "workspace")
    demo = Path(str(data["source"].get("path", ""))).name == "flights.csv"
    if not demo:
        for table in [data["source"], *data.get("enrich", [])]:
            path = table.get("path")
            if path and not Path(path).is_absolute():
                table["path"] = str((original.resolve().parent / path).resolve())
    copy = folder / "conveyor.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return copy, demo


def environment() -> str:
    import sklearn
    from threadpoolctl import threadpool_info

    pools = ", ".join(sorted({f"{p['internal_api']}={p['num_threads']}"
                              for p in threadpool_info()}))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
            f" (thread pools: {pools}), load average {load}, Python "
            f"{sys.version.split()[0]}, scikit-learn {sklearn.__version__}")


# -- conveyor ----------------------------------------------------------------------------


def label_updates(updates: list[dict[str, Any]], models: pd.DataFrame) -> None:
    """Add the strategy of the model each update registered (``none`` when it made none)."""
    by_version = models.set_index("version") if len(models) else models
    for update in updates:
        version = update["version"]
        if version is None or version not in by_version.index:
            update["strategy"], update["note"] = "none", ""
            continue
        row = by_version.loc[version]
        update["strategy"] = str(row["strategy"] or "retrain")
        update["note"] = str(row["strategy_note"] or "")
        update["family"] = str(row["family"])


# -- baselines ---------------------------------------------------------------------------


def cleaned_batch(config: Config, workspace: Workspace, batch: dict[str, Any]) -> pd.DataFrame:
    """An accepted batch's rows as conveyor scores and trains on them."""
    raw = rawstore.read_batch(workspace.root / batch["path"], batch["sha256"])
    raw = derive_target(raw, config.target)
    plan = CleanPlan.from_dict(batch.get("clean_plan"))
    return apply_plan(raw, plan, config.target.column).frame


def accepted_batches(config: Config) -> list[dict[str, Any]]:
    """Every accepted batch of the replayed workspace, oldest first."""
    store = Store.open(Workspace.of(config).db_url)
    try:
        return store.accepted_batches()
    finally:
        store.close()


def feature_columns(config: Config, frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """All columns but target, time and exclusions; split into numeric and text."""
    never = {config.target.column, config.source.time_column, *config.columns.exclude}
    features = [str(c) for c in frame.columns if c not in never]
    declared = set(config.columns.categorical or [])
    text = [c for c in features if c in declared or not (
        pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]))]
    return [c for c in features if c not in text], text


class HGBBaseline:
    """OrdinalEncoder (unknown/missing -> NaN) + HistGradientBoostingRegressor."""

    def __init__(self, numeric: list[str], text: list[str], target: str, seed: int) -> None:
        self.numeric, self.text, self.target, self.seed = numeric, text, target, seed

    def frame(self, data: pd.DataFrame) -> pd.DataFrame:
        X = data.reindex(columns=self.numeric + self.text)  # a dropped column comes back as NaN
        for column in self.numeric:
            X[column] = pd.to_numeric(X[column], errors="coerce").astype(float)
        for column in self.text:
            X[column] = X[column].astype(object).map(
                lambda v: np.nan if pd.isna(v) else str(v))
        return X

    def y(self, data: pd.DataFrame) -> np.ndarray:
        return data[self.target].astype(float).to_numpy()

    def fit(self, data: pd.DataFrame) -> Any:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan)
        model = make_pipeline(
            ColumnTransformer([("text", encoder, self.text)], remainder="passthrough"),
            HistGradientBoostingRegressor(random_state=self.seed))
        return model.fit(self.frame(data), self.y(data))

    def mae(self, model: Any, data: pd.DataFrame) -> float:
        return float(mean_absolute_error(self.y(data), model.predict(self.frame(data))))


def run(config: Config, batches: int | None) -> tuple[list[dict[str, Any]], float,
                                                      dict[str, Any]]:
    """Run conveyor's updates one by one (each timed alone); between two updates, score the
    baselines on the batches just ingested, then refit baseline (b) on the newest window.

    Interleaving puts the baseline's fits under the same machine load as the updates.
    Return the updates, conveyor's total seconds and the baselines' figures.
    """
    workspace = Workspace.of(config)
    width = config.train.window_batches
    updates: list[dict[str, Any]] = []
    frames: dict[int, pd.DataFrame] = {}
    hgb: HGBBaseline | None = None
    frozen = pending = None
    base: dict[str, Any] = {"static": {}, "sliding": {}, "sliding_fit_seconds": {},
                            "refit_seconds": [], "static_fit_seconds": None}
    total = 0.0
    while batches is None or len(updates) < batches:
        start = time.perf_counter()
        result = pipeline.update(config)
        seconds = time.perf_counter() - start
        total += seconds
        if result.exhausted:
            break
        updates.append({"seconds": seconds, "ok": result.ok, "version": result.version,
                        "promoted": result.promoted, "batch_ids": list(result.batch_ids),
                        "rows": result.rows, "message": result.message})
        log(f"update {len(updates)}: batches {result.batch_ids} {total:7.1f} s "
            f"(+{seconds:.1f}) {result.message[:110]}")

        store = Store.open(workspace.db_url)
        try:
            accepted = store.accepted_batches(width)
        finally:
            store.close()
        new = [b for b in accepted if b["id"] in result.batch_ids]
        for batch in new:
            frames[batch["id"]] = cleaned_batch(config, workspace, batch)
        if not new:
            continue
        if hgb is None:  # the first update with accepted batches: baseline (a)
            first = pd.concat([frames[b["id"]] for b in new], ignore_index=True)
            hgb = HGBBaseline(*feature_columns(config, first), config.target.column,
                              config.seed)
            start = time.perf_counter()
            frozen = hgb.fit(first)
            base["static_fit_seconds"] = time.perf_counter() - start
            base["first_ids"] = [b["id"] for b in new]
        else:
            for batch in new:  # prequential: both scored before (b) sees the batch
                data = frames[batch["id"]]
                base["static"][batch["id"]] = hgb.mae(frozen, data)
                base["sliding"][batch["id"]] = hgb.mae(pending, data)
                base["sliding_fit_seconds"][batch["id"]] = base["refit_seconds"][-1]
        window = pd.concat([frames[b["id"]] for b in accepted], ignore_index=True)
        start = time.perf_counter()
        pending = hgb.fit(window)
        base["refit_seconds"].append(time.perf_counter() - start)
        log(f"  baselines: (b) refit on {len(accepted)} batches, {len(window):,} rows, "
            f"in {base['refit_seconds'][-1]:.1f} s")
        for old in [i for i in frames if i not in {b["id"] for b in accepted}]:
            del frames[old]
    assert hgb is not None, "no accepted batch"
    base["numeric"], base["text"] = hgb.numeric, hgb.text
    return updates, total, base


# -- report ------------------------------------------------------------------------------


STRATEGIES = ("incremental", "refit", "retrain", "none")
TRAINING_STAGES = ("search", "validate", "fit", "incremental")  # the stages that fit models


def training_seconds(updates: list[dict[str, Any]], timings: pd.DataFrame) -> list[float]:
    """Seconds each update spent fitting models (search, validation, final fits, the
    incremental update); stage timings are keyed by the update's newest batch."""
    spent = timings[timings["stage"].isin(TRAINING_STAGES)].groupby("batch_id")["seconds"].sum()
    return [float(spent.get(u["batch_ids"][-1], 0.0)) for u in updates]


def stats_row(name: str, seconds: list[float]) -> str:
    if not seconds:
        return f"| {name} | 0 | - | - | - | - |"
    return (f"| {name} | {len(seconds)} | {statistics.mean(seconds):.2f} | "
            f"{statistics.median(seconds):.2f} | {np.percentile(seconds, 95):.2f} | "
            f"{sum(seconds):.1f} |")


def stage_table(updates: list[dict[str, Any]], timings: pd.DataFrame) -> list[str]:
    """Median seconds of each stage, by the strategy of the update it belongs to, and the
    largest peak memory seen."""
    strategy = {b: u["strategy"] for u in updates for b in u["batch_ids"]}
    timings = timings.assign(strategy=timings["batch_id"].map(strategy)).dropna(
        subset=["strategy"])
    table = timings.pivot_table(index="stage", columns="strategy", values="seconds",
                                aggfunc="median")
    columns = [c for c in STRATEGIES if c in table.columns]
    order = [s for s in ("collect", "prequential", "incremental", "search", "validate", "fit",
                         "interpret", "register") if s in table.index]
    lines = ["| stage (median s) | " + " | ".join(columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for stage in order:
        lines.append(f"| {stage} | " + " | ".join(
            "-" if pd.isna(table.loc[stage, c]) else f"{table.loc[stage, c]:.2f}"
            for c in columns) + " |")
    lines += ["", f"Peak memory of the replaying process (max over stages): "
              f"{timings['peak_mb'].max():.0f} MiB."]
    return lines


def aligned(prequential: pd.DataFrame, base: dict[str, Any]
            ) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """The batches conveyor's production model and both baselines are scored on, and the
    three MAEs on each (baseline keys may be text, as read back from ``--json``)."""
    production = prequential[prequential["role"] == "production"].set_index("batch_id")
    static = {int(k): v for k, v in base["static"].items()}
    sliding = {int(k): v for k, v in base["sliding"].items()}
    covered = sorted(set(production.index) & set(static) & set(sliding))
    return (covered, production.loc[covered, "score"].to_numpy(dtype=float),
            np.array([static[i] for i in covered]), np.array([sliding[i] for i in covered]))


def report(args: argparse.Namespace, command: str, env: str, updates: list[dict[str, Any]],
           total: float, prequential: pd.DataFrame, batches: pd.DataFrame,
           base: dict[str, Any], summary_seconds: float, summary_path: Path,
           timings: pd.DataFrame) -> str:
    production = prequential[prequential["role"] == "production"].set_index("batch_id")
    own = prequential[prequential["role"] == "baseline"].set_index("batch_id")
    covered, conveyor, static, sliding = aligned(prequential, base)
    lines = [f"`{command}` on {dt.date.today().isoformat()}", "",
             f"Machine: {env}.", "",
             f"{len(updates)} updates over {len(batches)} batches "
             f"({int((batches['status'] == 'accepted').sum())} accepted, "
             f"{int((batches['status'] == 'quarantined').sum())} quarantined), "
             f"{int(batches['rows'].sum()):,} rows, window {args.window}; "
             f"prequential MAE compared on the {len(covered)} batches all three models are "
             f"scored on ({int(sum(production.loc[i, 'rows'] for i in covered)):,} rows).", "",
             "| model | mean prequential MAE | median | batches conveyor beats it | "
             "conveyor MAE / its MAE (mean) |",
             "|---|---:|---:|---:|---:|",
             f"| conveyor, as served (production before each batch: router, champion, "
             f"fallback) | {conveyor.mean():.3f} | {np.median(conveyor):.3f} | - | 1.00 |"]
    champion = prequential[prequential["role"] == "champion"].set_index("batch_id")
    alone = np.array([champion.loc[i, "score"] if i in champion.index
                      else production.loc[i, "score"] for i in covered], dtype=float)
    lines.append(f"| (conveyor's champion alone, every row: role `champion`) | "
                 f"{alone.mean():.3f} | {np.median(alone):.3f} | "
                 f"{int((conveyor < alone).sum())} of {len(covered)} | "
                 f"{conveyor.mean() / alone.mean():.3f} |")
    for name, values in [("baseline (a): HGB trained once on the first window", static),
                         ("baseline (b): HGB refit on the last "
                          f"{args.window_batches} windows before each batch", sliding)]:
        lines.append(f"| {name} | {values.mean():.3f} | {np.median(values):.3f} | "
                     f"{int((conveyor < values).sum())} of {len(covered)} | "
                     f"{conveyor.mean() / values.mean():.2f} |")
    own_covered = [i for i in covered if i in own.index]
    if own_covered:
        values = np.array([own.loc[i, "score"] for i in own_covered], dtype=float)
        mine = np.array([production.loc[i, "score"] for i in own_covered], dtype=float)
        lines.append(f"| (conveyor's own never-updated first model, `prequential` role "
                     f"baseline) | {values.mean():.3f} | {np.median(values):.3f} | "
                     f"{int((mine < values).sum())} of {len(own_covered)} | "
                     f"{mine.mean() / values.mean():.2f} |")

    shares = [m.get("routed_share", 0.0) if isinstance(m, dict) else 0.0
              for m in production.loc[covered, "metrics"]] if "metrics" in production else []
    worst = float(np.max(conveyor / alone))
    lines += ["", f"Served vs champion alone: the fallback answered {np.mean(shares):.1%} of "
              f"the rows on average (at most {np.max(shares):.1%} of a batch); served / "
              f"champion-alone MAE is {conveyor.mean() / alone.mean():.4f} over all batches "
              f"and at worst {worst:.4f} on one batch."]
    by = {s: [u["seconds"] for u in updates if u["strategy"] == s] for s in STRATEGIES}
    fallback = [u["seconds"] for u in updates if u["strategy"] != "incremental"
                and "incremental update did not beat" in u["note"]]
    fits = base["refit_seconds"]
    per_update = [u["seconds"] for u in updates]
    training = training_seconds(updates, timings)
    lines += ["", "| work | n | mean s | median s | p95 s | total s |",
              "|---|---:|---:|---:|---:|---:|",
              stats_row("conveyor update, all", per_update),
              stats_row("conveyor update, first (ingests "
                        f"{len(updates[0]['batch_ids'])} batches, first search)",
                        per_update[:1]),
              stats_row("conveyor update -> incremental model", by["incremental"]),
              stats_row("conveyor update -> refit of production's configuration",
                        by["refit"]),
              stats_row("conveyor update -> retrained model (search)", by["retrain"][1:]
                        if updates and updates[0]["strategy"] == "retrain" else by["retrain"]),
              stats_row("... after a rejected incremental trial", fallback),
              stats_row("conveyor update -> no new model", by["none"]),
              stats_row("conveyor model training per update (stages "
                        f"{', '.join(TRAINING_STAGES)})", training),
              stats_row("baseline (b): HGB refit on the newest window after each update", fits),
              "",
              "Model training, conveyor / baseline (b): mean "
              f"{statistics.mean(training) / statistics.mean(fits):.2f}, median "
              f"{statistics.median(training) / statistics.median(fits):.2f}, total "
              f"{sum(training) / sum(fits):.2f}. A whole update also collects, checks, measures "
              "drift, scores production, its fallback, the first model and staging on the new "
              "batch, interprets and registers: work baseline (b) does not do.",
              "",
              f"Total replay: {total:.1f} s (wall, the sum of {len(updates)} update calls"
              + (" plus the final call that finds the stream exhausted" if args.batches is None
                 else "") + "; baseline work between updates is not included). Ratio of "
              "conveyor's mean seconds per update (after the first) to baseline (b)'s "
              "mean fit seconds: "
              f"{statistics.mean(per_update[1:] or per_update) / statistics.mean(fits):.1f}. "
              f"Baseline (a)'s single fit: {base['static_fit_seconds']:.1f} s.",
              "",
              f"Summary after the replay (`pipeline.summary`): {summary_seconds:.2f} s, HTML "
              f"{summary_path.stat().st_size:,} bytes ({summary_path.stat().st_size / 2**20:.2f}"
              " MiB).",
              "", "Models registered: " + ", ".join(
                  f"{k} {v}" for k, v in sorted(pd.Series(
                      [u["strategy"] for u in updates]).value_counts().items())) + ".",
              "", *stage_table(updates, timings),
              "", f"Baseline features: {len(base['numeric'])} numeric + {len(base['text'])} "
              f"text-as-codes ({', '.join(base['text'])})."]

    lines += ["", "<details><summary>per batch</summary>", "",
              "| batch | window start | rows | conveyor version | strategy of the update | "
              "conveyor MAE | (a) MAE | (b) MAE | (b) fit s |",
              "|---:|---|---:|---:|---|---:|---:|---:|---:|"]
    strategy_of = {b: u for u in updates for b in u["batch_ids"]}
    starts = batches.set_index("id")["window_start"]
    for i in covered:
        update = strategy_of.get(i, {})
        lines.append(f"| {i} | {str(starts.get(i, ''))[:10]} | "
                     f"{int(production.loc[i, 'rows']):,} | v{int(production.loc[i, 'version'])} "
                     f"| {update.get('strategy', '')} ({update.get('seconds', 0):.1f} s) | "
                     f"{production.loc[i, 'score']:.3f} | {base['static'][i]:.3f} | "
                     f"{base['sliding'][i]:.3f} | {base['sliding_fit_seconds'][i]:.2f} |")
    lines += ["", "</details>"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=None,
                        help="stop after N updates (default: the whole stream)")
    parser.add_argument("--config", type=Path, default=ROOT / "conveyor.yaml")
    parser.add_argument("--json", type=Path, default=None, help="also write raw figures here")
    parser.add_argument("--keep", type=Path, default=None,
                        help="replay in this new folder and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    command = "python bench/replay_bench.py" + "".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv))
    env = environment()
    log(env)

    with contextlib.nullcontext(str(args.keep)) if args.keep else \
            tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        folder = Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path, demo = copy_config(args.config, folder)
        config = load_config(path)
        if config.target.task != "regression":
            raise SystemExit("replay_bench compares MAE: regression targets only")
        if demo:
            from conveyor.demo import prepare_demo_data

            start = time.perf_counter()
            prepare_demo_data(config)
            log(f"demo data written in {time.perf_counter() - start:.1f} s (not timed below)")
        setup_logging(config.workspace / "logs", logging.WARNING)  # as `conveyor replay`
        args.window = config.stream.window if config.stream.rows is None \
            else f"{config.stream.rows} rows"
        args.window_batches = config.train.window_batches

        updates, total, base = run(config, args.batches)
        if not updates:
            raise SystemExit("no update ran")
        start = time.perf_counter()
        summary_path = pipeline.summary(config)
        summary_seconds = time.perf_counter() - start
        log(f"summary in {summary_seconds:.2f} s: {summary_path}")

        store = Store.open(Workspace.of(config).db_url)
        try:
            models = store.frame("models")
            prequential = store.frame("prequential")
            batches = store.frame("batches")
            timings = store.frame("stage_timings")
            evaluations = store.frame("evaluations")
        finally:
            store.close()
        label_updates(updates, models)
        text = report(args, command, env, updates, total, prequential, batches, base,
                      summary_seconds, summary_path, timings)
        if args.json:
            args.json.write_text(json.dumps({
                "command": command, "environment": env, "updates": updates, "total": total,
                "prequential": prequential.drop(columns=["metrics"], errors="ignore")
                .to_dict("records"),
                "baselines": {k: v for k, v in base.items()},
                "models": models.drop(columns=["metrics", "libraries"], errors="ignore")
                .to_dict("records"),
                "timings": timings.to_dict("records"),
                "evaluations": evaluations.drop(columns=["metrics"], errors="ignore")
                .to_dict("records"),
                "summary_seconds": summary_seconds,
                "summary_bytes": summary_path.stat().st_size}, indent=1, default=str))
    print(text)


if __name__ == "__main__":
    main()
