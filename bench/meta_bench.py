"""Meta-learning warm start: does the meta-learner's order reach the best candidate sooner?

    python bench/meta_bench.py [--batches 10] [--candidates 20] [--explore 0.25] [--json F]

Setup: the demo config is copied into a temporary folder (workspace and demo data there)
with a wider search than the demo's (``GRID`` below, ``search.sampler: random`` drawing
``--candidates`` per update), ``train.strategy: retrain`` and no time budget, so every
update evaluates every drawn candidate; ``--batches`` updates are replayed in this
process.

Then, for every update after the first three, three search orders of that update's
candidates are compared, each decided only from what was known before it ran (the
evaluations of earlier updates and the data properties of the batches up to its own,
exactly what :func:`conveyor.meta.order.search_order` sees live):

* cold: cheapest first (mean fit seconds of each family and variant so far), conveyor's
  order without warm start (``search.warm_start: false``);
* warm: the meta-learner's ranking with ``--explore`` of the slots exploring, conveyor's
  default, falling back to cold while the meta-learner has not shown on later batches
  that it can rank (its forward R² is not above 0);
* random: the mean over ``RANDOM_DRAWS`` seeded permutations (the reference a ranking
  has to beat).

Per order: how many candidates a search evaluates until it has seen the update's best
score, and the best score found within the first quarter and half of the candidates,
as a ratio to the best of all (1.00 = found; for MAE, above 1 is worse). Since every
candidate was evaluated, this replays what a budget that stops after k candidates would
have chosen, on the same scores: the orders are the only difference.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.replay_bench import copy_config, environment  # noqa: E402
from conveyor import pipeline  # noqa: E402
from conveyor.config import SearchConfig, load_config  # noqa: E402
from conveyor.demo import prepare_demo_data  # noqa: E402
from conveyor.logs import setup_logging  # noqa: E402
from conveyor.meta.features import batch_features  # noqa: E402
from conveyor.meta.order import search_order  # noqa: E402
from conveyor.store import Store  # noqa: E402
from conveyor.train.search import Candidate, full_rows  # noqa: E402
from conveyor.validate.metrics import LOWER_IS_BETTER  # noqa: E402

GRID = {
    "linear": {"grid": {"alpha": [0.1, 1.0, 10.0, 100.0]}, "variants": ["onehot", "robust"]},
    "sgd": {"grid": {"alpha": [0.00001, 0.0001, 0.001]}, "variants": ["onehot"]},
    "knn": {"grid": {"n_neighbors": [5, 15, 40, 100]}},
    "tree": {"grid": {"max_depth": [4, 6, 10, 16], "min_samples_leaf": [5, 20, 80]}},
    "hgb": {"grid": {"max_iter": [100, 200], "learning_rate": [0.05, 0.1, 0.3],
                     "max_leaf_nodes": [15, 31, 63]}},
    "forest": {"grid": {"max_depth": [8, 12], "n_estimators": [40]}},
}
RANDOM_DRAWS = 200
SHARES = (0.25, 0.5)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def replay(batches: int, candidates: int, folder: Path) -> tuple[Store, str, str]:
    """Replay the demo with the wide search; return its store, metric and target."""
    path, _ = copy_config(ROOT / "conveyor.yaml", folder)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["train"].update({"strategy": "retrain", "budget_seconds": None, "families": GRID,
                          "search": {"sampler": "random", "n_candidates": candidates}})
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    config = load_config(path)
    prepare_demo_data(config)
    setup_logging(config.workspace / "logs", logging.WARNING)
    for n in range(batches):
        start = time.perf_counter()
        result = pipeline.update(config)
        log(f"update {n + 1}/{batches}: {time.perf_counter() - start:.1f} s {result.message}")
        if result.exhausted:
            break
    store = Store.open(f"sqlite:///{config.workspace / 'conveyor.db'}")
    return store, config.metric, config.target.column


def steps_to_best(scores: list[float], best: float) -> int:
    """1-based position of the first score equal to the best."""
    return next(i + 1 for i, s in enumerate(scores) if math.isclose(s, best, rel_tol=1e-12))


def best_within(scores: list[float], share: float, lower: bool) -> float:
    head = scores[:max(1, math.ceil(share * len(scores)))]
    return min(head) if lower else max(head)


def compare(store: Store, metric: str, target: str, explore: float, seed: int
            ) -> list[dict[str, Any]]:
    evaluations = full_rows(store.frame("evaluations"))
    evaluations = evaluations[(evaluations["family"] != "baseline")
                              & evaluations["score"].notna()]
    features = batch_features(store.frame("batches"), store.frame("column_stats"), target)
    lower = metric in LOWER_IS_BETTER
    rows = []
    searched = sorted(evaluations["batch_id"].unique())
    for batch in searched[3:]:
        now = evaluations[evaluations["batch_id"] == batch]
        past = evaluations[evaluations["batch_id"] < batch]
        known = features[features["batch_id"] <= batch]
        cands = [Candidate(r.family, r.params, r.variant) for r in now.itertuples()]
        score = {json.dumps(c.as_dict(), sort_keys=True, default=str): s
                 for c, s in zip(cands, now["score"].astype(float), strict=True)}

        def scores_of(order: list[Candidate], score=score) -> list[float]:
            return [score[json.dumps(c.as_dict(), sort_keys=True, default=str)] for c in order]

        best = min(score.values()) if lower else max(score.values())
        cold, _ = search_order(past, known, cands, metric, SearchConfig(warm_start=False),
                               seed)
        warm, meta = search_order(past, known, cands, metric,
                                  SearchConfig(warm_start=True, explore=explore), seed)
        rng = np.random.default_rng(seed + int(batch))
        draws = [scores_of([cands[i] for i in rng.permutation(len(cands))])
                 for _ in range(RANDOM_DRAWS)]
        row = {"batch": int(batch), "candidates": len(cands), "best": best,
               "meta_r2": None if meta is None or not meta.fitted else meta.cv_r2,
               "warm_used": meta is not None and meta.informative}
        for name, order in (("cold", scores_of(cold)), ("warm", scores_of(warm))):
            row[f"{name}_steps"] = steps_to_best(order, best)
            for share in SHARES:
                row[f"{name}_{share}"] = best_within(order, share, lower) / best
        row["random_steps"] = statistics.fmean(steps_to_best(d, best) for d in draws)
        for share in SHARES:
            row[f"random_{share}"] = statistics.fmean(best_within(d, share, lower) / best
                                                      for d in draws)
        rows.append(row)
    return rows


def report(command: str, env: str, metric: str, rows: list[dict[str, Any]], args: Any,
           replay_seconds: float) -> str:
    used = [r for r in rows if r["warm_used"]]
    per_update = statistics.fmean(r["candidates"] for r in rows)
    lines = [
        f"`{command}`", "",
        f"Machine: {env}. Replay of {len(rows) + 3} updates with every drawn candidate "
        f"evaluated ({replay_seconds / 60:.1f} min); the search orders compared on the "
        f"{len(rows)} updates after the first three ({per_update:.0f} candidates each on "
        f"average, metric {metric}); the meta-learner ranked "
        f"{len(used)} of them (on the others warm start falls back to cold). "
        f"Exploration: {args.explore:.0%} of the slots.", "",
        "| order | candidates until the best (mean) | median | best within the first 25% "
        "/ best of all | within the first 50% |", "|---|---:|---:|---:|---:|"]
    for name, label in (("cold", "cold: cheapest first (`warm_start: false`)"),
                        ("warm", "warm: meta-learner first (default)"),
                        ("random", f"random order (mean of {RANDOM_DRAWS} draws)")):
        steps = [r[f"{name}_steps"] for r in rows]
        lines.append(f"| {label} | {statistics.fmean(steps):.1f} | {statistics.median(steps):.1f}"
                     f" | {statistics.fmean(r[f'{name}_0.25'] for r in rows):.3f} | "
                     f"{statistics.fmean(r[f'{name}_0.5'] for r in rows):.3f} |")
    if used:
        lines += ["", f"Only the updates where the meta-learner ranked ({len(used)}):", "",
                  "| order | candidates until the best (mean) | best within 25% / best |",
                  "|---|---:|---:|"]
        for name in ("cold", "warm", "random"):
            lines.append(f"| {name} | {statistics.fmean(r[f'{name}_steps'] for r in used):.1f}"
                         f" | {statistics.fmean(r[f'{name}_0.25'] for r in used):.3f} |")
    lines += ["", "<details><summary>per update</summary>", "",
              "| batch | candidates | meta forward R² | ranked | cold | warm | random |",
              "|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        r2 = "-" if r["meta_r2"] is None else f"{r['meta_r2']:.2f}"
        lines.append(f"| {r['batch']} | {r['candidates']} | {r2} | "
                     f"{'yes' if r['warm_used'] else 'no'} | {r['cold_steps']} | "
                     f"{r['warm_steps']} | {r['random_steps']:.1f} |")
    lines += ["", "</details>"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10, help="updates replayed")
    parser.add_argument("--candidates", type=int, default=20, help="candidates per update")
    parser.add_argument("--explore", type=float, default=SearchConfig().explore)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write raw figures here")
    args = parser.parse_args(argv)
    if args.batches < 5:
        raise SystemExit("--batches must be at least 5: the first three updates only teach")
    command = "python bench/meta_bench.py " + shlex.join(sys.argv[1:] if argv is None
                                                         else argv)
    env = environment()
    with tempfile.TemporaryDirectory(prefix="conveyor-meta-") as tmp:
        start = time.perf_counter()
        store, metric, target = replay(args.batches, args.candidates, Path(tmp))
        seconds = time.perf_counter() - start
        rows = compare(store, metric, target, args.explore, args.seed)
    if not rows:
        raise SystemExit("no update to compare: the stream ended too early")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print(report(command.strip(), env, metric, rows, args, seconds))


if __name__ == "__main__":
    pd.set_option("mode.copy_on_write", True)
    main()
