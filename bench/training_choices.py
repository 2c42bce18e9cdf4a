"""Two training choices on the demo stream: how often to refit, and which rows halving samples.

    python bench/training_choices.py [--config conveyor.yaml] [--batches N]
        [--halving-every 5] [--threads 1] [--json out.json]

The config is copied into a temporary folder as ``bench/replay_bench.py`` does
(demo data written beside it), with one linear candidate, no scheduled search
(``train.retrain_every=1000``), drift alarms and model drift ignored, and the
stream replayed in this process (``pipeline.replay``, logs at WARNING):
the replay only stores the accepted batches and their cleaning plans. Each
accepted batch is read back cleaned, as ``conveyor.train.data.BatchFrames`` does; a model
is fitted on the newest ``train.window_batches`` accepted batches before batch
t and scored by MAE on batch t, for every accepted batch from the third on
(the batches replay_bench scores). Pipelines are conveyor's own
(``search.make_pipeline`` on the window's ``conveyor.train.data.design``, with the
``loss_params`` overrides, so gradient boosting fits ``absolute_error``).

1. Refit cadence: the demo's gradient boosting candidate and linear (alpha 1,
   onehot) refit before every batch, every 2nd or every 4th (the model kept
   as it is in between). A stale model is the same fit as the every-batch one
   made when it was fitted, so each configuration is fitted once per batch.
2. Halving samples: at every test batch whose id is a multiple of
   ``--halving-every``, three configurations fitted on the newest 1/9 or 1/3
   of the window's rows, on every 9th or 3rd row counted back from the newest
   (``search.spread``, what the halving rungs fit on), and on all rows (roles
   from the whole window, as in the search). A cheap sample is only useful if
   it ranks the configurations as the full rows do.

MAE does not depend on machine load; fit seconds do and are indicative only.
Fits run on ``--threads`` threads (threadpoolctl): on a loaded machine, a boosting
fit on two OpenMP threads took 100 times as long as on one (the threads wait).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import mean_absolute_error
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from replay_bench import (  # noqa: E402
    accepted_batches,
    cleaned_batch,
    copy_config,
    environment,
    log,
)
from replay_variants import apply_overrides  # noqa: E402

from conveyor import pipeline  # noqa: E402
from conveyor.config import Config, load_config  # noqa: E402
from conveyor.logs import setup_logging  # noqa: E402
from conveyor.train import data as learn  # noqa: E402
from conveyor.train.families import loss_params  # noqa: E402
from conveyor.train.search import Candidate, make_pipeline, spread  # noqa: E402
from conveyor.workspace import Workspace  # noqa: E402

REPLAY = ("train.families={linear: {grid: {alpha: [1.0]}, variants: [onehot]}}; "
          "train.retrain_every=1000; drift.on_alarm=ignore; validate.model_drift.enabled=false")
HGB = Candidate("hgb", {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31,
                        "early_stopping": True}, "native")
LINEAR = Candidate("linear", {"alpha": 1.0}, "onehot")
ROBUST = Candidate("linear", {"alpha": 1.0}, "robust")
CONFIGS = {"linear/onehot": LINEAR, "linear/robust": ROBUST, "hgb/native": HGB}
CADENCES = {1: "every batch", 2: "every 2nd", 4: "every 4th"}
SAMPLES = (("newest 1/9", "newest", 9), ("spread 1/9", "spread", 9),
           ("newest 1/3", "newest", 3), ("spread 1/3", "spread", 3), ("all rows", "all", 1))


def sample(n: int, how: str, step: int) -> np.ndarray:
    """Row positions (time order) of a window of ``n`` rows that a sample fits on."""
    rows = np.arange(n)
    return rows[n - n // step:] if how == "newest" else spread(rows, step)


class Lab:
    """The cleaned accepted batches, and conveyor's pipelines fitted and scored on them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        workspace = Workspace.of(config)
        batches = accepted_batches(config)
        self.ids = [int(b["id"]) for b in batches]
        self.frames = [cleaned_batch(config, workspace, b).assign(
            **{learn.BATCH_COLUMN: b["id"]}) for b in batches]
        self.overrides = {"knn": {"memory": config.train.knn_memory},
                          **loss_params(config.target.task, config.metric)}

    def window(self, pos: int) -> pd.DataFrame:
        """The newest ``window_batches`` batches before ``pos``, joined as _training_frame does."""
        parts = self.frames[max(0, pos - self.config.train.window_batches):pos]
        data = pd.concat(parts, ignore_index=True).sort_values(
            self.config.source.time_column, kind="stable").reset_index(drop=True)
        rows = self.config.train.max_rows
        return data if rows is None else data.iloc[-rows:].reset_index(drop=True)

    def fit(self, candidate: Candidate, design: learn.Design, data: pd.DataFrame
            ) -> tuple[Any, float]:
        model = make_pipeline(candidate, design.roles, self.config.prepare, "regression",
                              self.config.seed, design.maker, self.overrides)
        start = time.perf_counter()
        model.fit(data[design.inputs], learn.target_values(self.config, data))
        return model, time.perf_counter() - start

    def mae(self, model: Any, design: learn.Design, data: pd.DataFrame) -> float:
        return float(mean_absolute_error(learn.target_values(self.config, data), model.predict(
            learn.model_input(data, design.inputs))))


def measure(lab: Lab, every: int) -> dict[str, Any]:
    """Both measurements in one pass over the test batches (the full-window fits of the
    cadence's configurations serve the halving's "all rows" too)."""
    cadence = {"linear/onehot": LINEAR, "hgb/native": HGB}
    tests = list(range(2, len(lab.ids)))
    out: dict[str, Any] = {
        "batches": [lab.ids[p] for p in tests], "every": every, "halving_batches": [],
        "cadence": {n: {k: [] for k in CADENCES} for n in cadence},
        "fit_seconds": {n: [] for n in cadence}, "halving": {}, "halving_seconds": {}}
    fitted: dict[str, dict[int, tuple[Any, learn.Design]]] = {n: {} for n in cadence}
    for i, pos in enumerate(tests):
        data, test = lab.window(pos), lab.frames[pos]
        design = learn.design(lab.config, data)
        full = {}
        for name, candidate in cadence.items():
            model, seconds = lab.fit(candidate, design, data)
            out["fit_seconds"][name].append(seconds)
            fitted[name] = {j: m for j, m in fitted[name].items() if j > i - max(CADENCES)}
            fitted[name][i] = (model, design)
            full[name] = (model, seconds)
            for k in CADENCES:  # refit at test batches 0, k, 2k, ...: kept since then
                out["cadence"][name][k].append(lab.mae(*fitted[name][i - i % k], test))
        log(f"batch {lab.ids[pos]} ({i + 1} of {len(tests)}): window {len(data):,} rows")
        if lab.ids[pos] % every:
            continue
        out["halving_batches"].append(lab.ids[pos])
        for name, candidate in CONFIGS.items():
            for label, how, step in SAMPLES:
                if how == "all" and name in full:
                    model, seconds = full[name]
                else:
                    part = data.iloc[sample(len(data), how, step)]
                    model, seconds = lab.fit(candidate, design, part)
                out["halving"].setdefault(f"{name} | {label}", []).append(
                    lab.mae(model, design, test))
                out["halving_seconds"].setdefault(f"{name} | {label}", []).append(seconds)
    return out


def report(command: str, env: str, replay_seconds: float, lab: Lab,
           out: dict[str, Any]) -> str:
    n, tests = len(lab.ids), len(out["batches"])
    lines = [f"`{command}` on {dt.date.today().isoformat()}", "",
             f"Machine: {env}.", "",
             f"Stream: replayed once with `{REPLAY}` ({replay_seconds:.0f} s), "
             f"{n} accepted batches, {sum(map(len, lab.frames)):,} rows. Prequential: fitted "
             f"on the newest {lab.config.train.window_batches} accepted batches before each "
             f"batch, scored by MAE on it, for the {tests} batches from the third on "
             f"(ids {out['batches'][0]}-{out['batches'][-1]}). Fit seconds ({out['threads']} "
             f"thread{'s' if out['threads'] > 1 else ''} per fit) are indicative: other jobs "
             "shared the machine; MAE does not depend on the load.", "",
             "### Refit cadence", "",
             "| model | refit | fits | mean MAE | vs every batch | batches worse than "
             "every batch | fit s in all |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, by in out["cadence"].items():
        base, seconds = np.array(by[1]), out["fit_seconds"][name]
        for k, values in by.items():
            mine = np.array(values)
            lines.append(f"| {name} | {CADENCES[k]} | "
                         f"{math.ceil(tests / k)} | {mine.mean():.3f} | "
                         f"{mine.mean() - base.mean():+.3f} | "
                         f"{'-' if k == 1 else f'{int((mine > base).sum())} of {tests}'} | "
                         f"{sum(seconds[::k]):.1f} |")
    lines += ["", "Mean seconds per fit (indicative): " + ", ".join(
        f"{name} {np.mean(s):.2f}" for name, s in out["fit_seconds"].items()) + "."]

    halved, h = out["halving"], len(out["halving_batches"])
    if not h:
        return "\n".join(lines + ["", "No test batch id is a multiple of --halving-every."])
    labels = [s[0] for s in SAMPLES]
    lines += ["", "### Halving samples", "",
              f"At the {h} batches whose id is a multiple of {out['every']} "
              f"({', '.join(map(str, out['halving_batches']))}): mean MAE, and in brackets "
              "the mean absolute gap to the same configuration fitted on all rows.", "",
              "| configuration | " + " | ".join(labels) + " |",
              "|---|" + "---:|" * len(labels)]
    for name in CONFIGS:
        full = np.array(halved[f"{name} | all rows"])
        cells = [f"{np.mean(halved[f'{name} | {s}']):.3f}" + (
            "" if s == "all rows" else
            f" ({np.mean(np.abs(np.array(halved[f'{name} | {s}']) - full)):.3f})")
            for s in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    def order(label: str, j: int) -> list[str]:
        return sorted(CONFIGS, key=lambda c: halved[f"{c} | {label}"][j])

    truth = [order("all rows", j) for j in range(h)]
    for what, same in (("order of the three as all rows'", lambda a, b: a == b),
                       ("best of the three as all rows'", lambda a, b: a[0] == b[0])):
        lines.append(f"| {what} | " + " | ".join(
            "-" if s == "all rows" else
            f"{sum(same(order(s, j), truth[j]) for j in range(h))} of {h}" for s in labels)
            + " |")
    lines += ["", "Mean fit seconds (indicative), " + ", ".join(labels) + ": " + "; ".join(
        f"{name} " + ", ".join(f"{np.mean(out['halving_seconds'][f'{name} | {s}']):.2f}"
                               for s in labels) for name in CONFIGS) + ".",
              "", "<details><summary>per batch</summary>", "",
              "| batch | configuration | " + " | ".join(labels) + " |",
              "|---:|---|" + "---:|" * len(labels)]
    for j, batch in enumerate(out["halving_batches"]):
        for name in CONFIGS:
            lines.append(f"| {batch} | {name} | " + " | ".join(
                f"{halved[f'{name} | {s}'][j]:.2f}" for s in labels) + " |")
    lines += ["", "</details>"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "conveyor.yaml")
    parser.add_argument("--batches", type=int, default=None,
                        help="replay only N updates (default: the whole stream)")
    parser.add_argument("--halving-every", type=int, default=5, metavar="N",
                        help="halving samples at test batches whose id is a multiple of N")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads per fit (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="also write raw figures here")
    args = parser.parse_args(argv)
    command = "python bench/training_choices.py" + "".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv))
    env = environment()
    log(env)
    with tempfile.TemporaryDirectory(prefix="training-choices-") as tmp:
        path, demo = copy_config(args.config, Path(tmp))
        data = apply_overrides(yaml.safe_load(path.read_text(encoding="utf-8")), REPLAY)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        config = load_config(path)
        if config.target.task != "regression":
            raise SystemExit("training_choices compares MAE: regression targets only")
        if demo:
            from conveyor.demo import prepare_demo_data

            prepare_demo_data(config)
        setup_logging(config.workspace / "logs", logging.WARNING)  # as `conveyor replay`
        start = time.perf_counter()
        results = pipeline.replay(config, args.batches)
        replay_seconds = time.perf_counter() - start
        log(f"replayed {len(results)} updates in {replay_seconds:.0f} s")
        lab = Lab(config)
        with threadpool_limits(args.threads):
            out = measure(lab, args.halving_every)
        out["threads"] = args.threads
    text = report(command, env, replay_seconds, lab, out)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "environment": env,
                                         "replay_seconds": replay_seconds, **out},
                                        indent=1, default=str))
    print(text)


if __name__ == "__main__":
    main()
