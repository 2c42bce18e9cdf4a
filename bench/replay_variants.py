"""The full demo replay under variants of the config: what each setting buys and costs.

    python bench/replay_variants.py [--config conveyor.yaml] [--batches N]
        --variant "searches every 8 batches: train.retrain_every=8" [--variant ...]

Each variant is a label and ``key=value`` overrides of the config (dotted keys,
YAML values, separated by ``;``). Every variant runs ``bench/replay_bench.py``
alone in a fresh process, with its own baselines computed in the same run, so
the training-cost ratio of each row is against baseline (b) under that run's
machine load. The prequential MAE does not depend on the load: the same config
and seed give the same figures.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from replay_bench import STRATEGIES, aligned, copy_config, training_seconds  # noqa: E402


def apply_overrides(data: dict[str, Any], overrides: str) -> dict[str, Any]:
    """Set ``a.b=value; c=value`` (YAML values) in a config mapping.

    >>> apply_overrides({"train": {"retrain_every": 4}}, "train.retrain_every=8; seed=1")
    {'train': {'retrain_every': 8}, 'seed': 1}
    """
    for item in filter(None, (part.strip() for part in overrides.split(";"))):
        key, _, value = item.partition("=")
        *parents, leaf = key.strip().split(".")
        node = data
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = yaml.safe_load(value)
    return data


def figures(raw: dict[str, Any]) -> dict[str, Any]:
    """MAE against baseline (b) and model-training seconds against (b)'s fits."""
    covered, mine, _, b = aligned(pd.DataFrame(raw["prequential"]), raw["baselines"])
    training = training_seconds(raw["updates"], pd.DataFrame(raw["timings"]))
    fits = raw["baselines"]["refit_seconds"]
    searches = sum(u["strategy"] == "retrain" for u in raw["updates"])
    by_strategy = {name: [u["seconds"] for u in raw["updates"][1:] if u["strategy"] == name]
                   for name in STRATEGIES}  # whole updates; the first (two batches) left out
    return {"mae": mine.mean(), "b_mae": b.mean(), "beats_b": int((mine < b).sum()),
            "batches": len(covered), "searches": searches, "training": sum(training),
            "b_fits": sum(fits),
            "median_ratio": statistics.median(training) / statistics.median(fits),
            "update_seconds": {k: (len(v), statistics.mean(v)) for k, v in by_strategy.items()
                               if v}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "conveyor.yaml")
    parser.add_argument("--batches", type=int, default=None)
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL: OVERRIDES",
                        help='e.g. "searches every 8 batches: train.retrain_every=8"')
    args = parser.parse_args(argv)
    command = "python bench/replay_variants.py" + "".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv))
    variants = [("the config as it is", "")] + [
        tuple(part.strip() for part in v.split(":", 1)) for v in args.variant]  # type: ignore[misc]
    rows = []
    with tempfile.TemporaryDirectory(prefix="replay-variants-") as tmp:
        copy, _ = copy_config(args.config, Path(tmp))  # its data paths work from tmp
        resolved = yaml.safe_load(copy.read_text(encoding="utf-8"))
        for n, (label, overrides) in enumerate(variants):
            data = apply_overrides(yaml.safe_load(args.config.read_text(encoding="utf-8")),
                                   overrides)
            for name in ("source", "enrich"):
                if name in resolved:
                    data[name] = resolved[name]
            path = Path(tmp) / f"variant{n}.yaml"
            path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
            out = Path(tmp) / f"variant{n}.json"
            bench = [sys.executable, str(ROOT / "bench" / "replay_bench.py"), "--config",
                     str(path), "--json", str(out)]
            bench += ["--batches", str(args.batches)] if args.batches else []
            print(f"variant {n}: {label} {overrides}", file=sys.stderr, flush=True)
            subprocess.run(bench, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
            rows.append((label, overrides, figures(json.loads(out.read_text()))))

    lines = [f"`{command}`", "",
             "Each row is one full replay with its own baselines; \"training\" is the seconds "
             "conveyor's updates spent fitting models (search, validate, fit, incremental), "
             "against baseline (b)'s refits in the same run.", "",
             "| variant | overrides | conveyor MAE | / (b) MAE | batches better than (b) | "
             "searches | training s | / (b) fits, total | / (b), median update |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, overrides, f in rows:
        lines.append(f"| {label} | {f'`{overrides}`' if overrides else '-'} | {f['mae']:.3f} | "
                     f"{f['mae'] / f['b_mae']:.3f} | {f['beats_b']} of {f['batches']} | "
                     f"{f['searches']} | {f['training']:.1f} | "
                     f"{f['training'] / f['b_fits']:.2f} | {f['median_ratio']:.2f} |")
    lines += ["", "Seconds per whole update by what it made (count, mean; the first update "
              "left out):", "",
              "| variant | " + " | ".join(STRATEGIES) + " |",
              "|---|" + "---:|" * len(STRATEGIES)]
    for label, _, f in rows:
        cells = [f"{f['update_seconds'][k][0]}, {f['update_seconds'][k][1]:.2f}"
                 if k in f["update_seconds"] else "-" for k in STRATEGIES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    b_maes = sorted({round(f["b_mae"], 3) for _, _, f in rows})
    lines += ["", f"Baseline (b)'s MAE in these runs: {', '.join(map(str, b_maes))} "
                  "(the same batches and rows in every run)."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
