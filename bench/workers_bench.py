"""Training on more workers: search seconds with 1 and 2 joblib processes and on Dask.

    python bench/workers_bench.py [--repeats 2] [--initial 6] [--json F]

The same first update of the demo (``--initial`` weekly batches ingested, then a search
over the demo's candidates with no time budget, so every setting does the same work)
runs in a fresh workspace per setting:

* ``compute.n_jobs: 1`` (the baseline: one process);
* ``compute.n_jobs: 2`` (joblib's process pool; this machine has 2 cores);
* ``compute.backend: dask`` with a ``distributed.LocalCluster`` of 2 single-threaded
  worker processes started for the update (what a cluster address would use, minus the
  network).

The figure is the ``search`` stage's seconds (``stage_timings``; for Dask it includes
starting the local cluster, ~2-3 s, as an update with no address does), median over
``--repeats`` rounds, the settings interleaved within each round; the chosen model and
its hold-out score must be the same in every setting (the seed is fixed).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.replay_bench import copy_config, environment  # noqa: E402
from conveyor import pipeline  # noqa: E402
from conveyor.config import load_config  # noqa: E402
from conveyor.demo import prepare_demo_data  # noqa: E402
from conveyor.logs import setup_logging  # noqa: E402
from conveyor.store import Store  # noqa: E402

SETTINGS = {
    "joblib, 1 process": {"backend": "local", "n_jobs": 1},
    "joblib, 2 processes": {"backend": "local", "n_jobs": 2},
    "Dask LocalCluster, 2 workers": {"backend": "dask", "n_jobs": -1},
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def one_update(folder: Path, compute: dict[str, Any], initial: int) -> dict[str, Any]:
    path, _ = copy_config(ROOT / "conveyor.yaml", folder)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["compute"] = {**data.get("compute", {}), **compute}
    # every candidate on the full window: the parallel part this bench measures
    data["train"].update({"budget_seconds": None, "strategy": "retrain"})
    data["train"]["search"] = {**data["train"].get("search", {}), "halving": False}
    data["stream"]["initial_batches"] = initial
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    config = load_config(path)
    prepare_demo_data(config)
    setup_logging(None, logging.WARNING)
    start = time.perf_counter()
    result = pipeline.update(config)
    seconds = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"update failed: {result.message}")
    store = Store.open(f"sqlite:///{config.workspace / 'conveyor.db'}")
    try:
        timings = store.frame("stage_timings")
        evaluations = store.frame("evaluations")
        model = store.model(result.version)
    finally:
        store.close()
    search = float(timings.loc[timings["stage"] == "search", "seconds"].sum())
    return {"update_seconds": seconds, "search_seconds": search,
            "candidates": int((evaluations["family"] != "baseline").sum()),
            "winner": f"{model['family']} {model['variant']} {json.dumps(model['params'])}",
            "score": model["metrics"]["holdout"][config.metric]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--initial", type=int, default=6, help="weekly batches trained on")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    command = "python bench/workers_bench.py " + shlex.join(sys.argv[1:] if argv is None
                                                            else argv)
    env = environment()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SETTINGS}
    for round_ in range(args.repeats):
        for name, compute in SETTINGS.items():
            with tempfile.TemporaryDirectory(prefix="conveyor-workers-") as tmp:
                run = one_update(Path(tmp), compute, args.initial)
            log(f"round {round_ + 1}, {name}: search {run['search_seconds']:.1f} s, "
                f"winner {run['winner']} ({run['score']:.4g})")
            runs[name].append(run)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1), encoding="utf-8")
    base = statistics.median(r["search_seconds"] for r in runs["joblib, 1 process"])
    winners = {r["winner"] for rs in runs.values() for r in rs}
    scores = {round(r["score"], 9) for rs in runs.values() for r in rs}
    first = runs["joblib, 1 process"][0]
    lines = [
        f"`{command.strip()}`", "",
        f"Machine: {env}. The demo's first update ({args.initial} weekly batches, "
        f"{first['candidates']} candidates, no budget, no halving), a fresh workspace per setting, "
        f"median of {args.repeats} interleaved rounds. Same winner and hold-out score in "
        f"every run: {'yes' if len(winners) == 1 and len(scores) == 1 else 'NO'} "
        f"({'; '.join(sorted(winners))}).", "",
        "| setting | search s (median) | speed-up over 1 process | whole update s |",
        "|---|---:|---:|---:|"]
    for name, rs in runs.items():
        search = statistics.median(r["search_seconds"] for r in rs)
        lines.append(f"| {name} | {search:.1f} | {base / search:.2f}x | "
                     f"{statistics.median(r['update_seconds'] for r in rs):.1f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
