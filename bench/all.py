"""Every conveyor benchmark with one command; writes BENCHMARKS.md.

    python bench/all.py                  # all of them (about two hours on 2 cores)
    python bench/all.py --only replay api
    python bench/all.py --quick          # small sizes: checks the benches run, not figures

Each bench is a script in this folder that prints one Markdown section (its
command first, then tables) and measures its own baseline in the same run.
This runs them one after another in fresh processes, keeps each section in
``bench/results/<name>.md`` as soon as it is done, then writes BENCHMARKS.md
from all sections in ``bench/results`` (so rerunning one bench keeps the
others' last figures, each with its own command and date).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    args: tuple[str, ...]
    quick: tuple[str, ...]


BENCHES = [
    Bench("replay", "Full demo replay: quality and cost against two baselines",
          ("bench/replay_bench.py",), ("bench/replay_bench.py", "--batches", "3")),
    Bench("variants", "The replay under other settings: what each one buys and costs",
          ("bench/replay_variants.py",
           "--variant", "every row of the window: train.sample_every=1",
           "--variant", "every 2nd row: train.sample_every=2",
           "--variant", "the demo's earlier settings (every row, incremental updates, a search "
                        "every 4 batches, 1% cost tolerance, model-drift threshold 0.5): "
                        "train.sample_every=1; train.strategy=auto; train.retrain_every=4; "
                        "train.search.cost_tolerance=0.01; validate.model_drift.threshold=0.5"),
          ("bench/replay_variants.py", "--batches", "3",
           "--variant", "every row of the window: train.sample_every=1")),
    Bench("routing", "Routing on rows from the future: train through May, predict June",
          ("bench/routing_check.py", "--updates", "20"),
          ("bench/routing_check.py", "--updates", "3")),
    Bench("generality", "Generality: `conveyor init` alone on real and synthetic streams, "
          "against strong baselines", ("bench/generality.py",),
          ("bench/generality.py", "--quick", "--streams", "sea,births")),
    Bench("training_choices", "Training choices (refit cadence, halving samples)",
          ("bench/training_choices.py",),
          ("bench/training_choices.py", "--batches", "5", "--halving-every", "3")),
    Bench("inference", "Batch inference: a 1,000,000-row CSV",
          ("bench/inference_bench.py",),
          ("bench/inference_bench.py", "--rows", "100000", "--repeats", "1")),
    Bench("api", "REST API: requests/s and latency against a bare FastAPI app",
          ("bench/api_bench.py", "--seconds", "20"),
          ("bench/api_bench.py", "--seconds", "3", "--rounds", "1", "--concurrency", "8",
           "--big-rows", "100")),
    Bench("analyze", "Analyze: quality, cleaning, EDA and drift per batch",
          ("bench/analyze_bench.py",), ("bench/analyze_bench.py", "--repeats", "1")),
    Bench("scale", "A 10x longer stream: does the cost per update stay flat?",
          ("bench/scale_bench.py", "--repeat", "10", "--window", "28D"),
          ("bench/scale_bench.py", "--repeat", "2", "--window", "28D", "--sizes", "7D",
           "--edge", "5")),
    Bench("workers", "Training on more workers: joblib processes and Dask",
          ("bench/workers_bench.py",), ("bench/workers_bench.py", "--repeats", "1")),
    Bench("meta", "Meta-learning warm start: same quality with fewer candidates?",
          ("bench/meta_bench.py",), ("bench/meta_bench.py", "--batches", "5",
                                     "--candidates", "6")),
]

HEADER = """# conveyor benchmarks

Measured on the development machine: 2 cores, 24 GB, shared with other jobs and
noisy. Absolute timings move between runs, so every result is given next to a
baseline measured in the same run (a ratio where one makes sense), with the
command that produced it. `python bench/all.py` reruns everything and rewrites
this file; `python bench/all.py --only NAME` reruns one section. Sections:
{names}.
"""


def run(bench: Bench, quick: bool) -> str:
    command = [sys.executable, *(bench.quick if quick else bench.args)]
    print(f"[{time.strftime('%H:%M:%S')}] {bench.name}: {' '.join(command[1:])}",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise SystemExit(f"{bench.name} failed with exit code {done.returncode}; "
                         "its output is above")
    print(f"[{time.strftime('%H:%M:%S')}] {bench.name}: done in "
          f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return (f"## {bench.title}\n\n_Run {dt.date.today().isoformat()}._ "
            f"{done.stdout.strip()}\n")


def assemble() -> str:
    present = [b for b in BENCHES if (RESULTS / f"{b.name}.md").exists()]
    parts = [HEADER.format(names=", ".join(f"[{b.name}](#{anchor(b.title)})"
                                          for b in present))]
    parts += [(RESULTS / f"{b.name}.md").read_text(encoding="utf-8") for b in present]
    return "\n".join(parts)


def anchor(title: str) -> str:
    """GitHub's anchor for a heading."""
    keep = "".join(c for c in title.lower() if c.isalnum() or c in " -")
    return keep.replace(" ", "-")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHES],
                        help="run only these benches (the others keep their last section)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, to check the benches run; writes to a temp "
                             "folder, not to BENCHMARKS.md")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if args.only is None or b.name in args.only]
    for bench in chosen:
        section = run(bench, args.quick)
        if args.quick:
            print(section)
            continue
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{bench.name}.md").write_text(section, encoding="utf-8")
    if not args.quick:
        (ROOT / "BENCHMARKS.md").write_text(assemble(), encoding="utf-8")
        print(ROOT / "BENCHMARKS.md")


if __name__ == "__main__":
    main()
