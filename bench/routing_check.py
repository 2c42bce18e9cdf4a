"""Routing on rows from the future: train on the demo stream through spring, predict June.

Replays the demo config for ``--updates`` updates (21 weekly updates: trained on January
to May), then runs inference, as a user would, on the flights of ``--start`` ..
``--end`` (never ingested: summer temperatures lie above every training value) and
scores what was served against the production version's champion alone and its
fallback alone on the same rows, with the share of rows each route answered::

    python bench/routing_check.py [--updates 21] [--start 2013-06-01 --end 2013-06-15]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.replay_bench import copy_config, environment, log  # noqa: E402
from conveyor import pipeline  # noqa: E402
from conveyor.collect.enrich import make_enricher  # noqa: E402
from conveyor.config import load_config  # noqa: E402
from conveyor.demo import prepare_demo_data  # noqa: E402
from conveyor.serve.bundle import load_version  # noqa: E402
from conveyor.serve.predict import features_frame  # noqa: E402
from conveyor.store import Store  # noqa: E402
from conveyor.workspace import Workspace  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=21)
    parser.add_argument("--start", default="2013-06-01")
    parser.add_argument("--end", default="2013-06-15")
    parser.add_argument("--config", type=Path, default=ROOT / "conveyor.yaml")
    args = parser.parse_args(argv)
    command = "python bench/routing_check.py" + "".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv))
    log(environment())
    with tempfile.TemporaryDirectory(prefix="routing-check-") as tmp:
        path, _ = copy_config(args.config, Path(tmp))
        config = load_config(path)
        prepare_demo_data(config)
        start = time.perf_counter()
        for _ in range(args.updates):
            if pipeline.update(config).exhausted:
                break
        log(f"{args.updates} updates in {time.perf_counter() - start:.0f} s")
        source = config.source.path
        assert source is not None
        flights = pd.read_csv(source)
        at = pd.to_datetime(flights[config.source.time_column], utc=True)
        june = flights[(at >= pd.Timestamp(args.start, tz="UTC"))
                       & (at < pd.Timestamp(args.end, tz="UTC"))]
        june = june.dropna(subset=[config.target.column]).reset_index(drop=True)
        y = june[config.target.column].to_numpy(float)
        file = Path(tmp) / "june.csv"
        june.drop(columns=[config.target.column]).to_csv(file, index=False)
        config = config.model_copy(update={"serve": config.serve.model_copy(
            update={"route_columns": True})})
        served = pd.read_csv(pipeline.inference(config, file))

        store = Store.open(Workspace.of(config).db_url)
        try:
            production = store.production()
            assert production is not None
            loaded = load_version(Workspace.of(config), production)
            routing = (production["metrics"] or {}).get("routing") or {}
        finally:
            store.close()
        enrich = make_enricher(config, loaded.features)
        frame = enrich(june) if enrich else june
        X = features_frame(frame, loaded.manifest["schema"], str(file))
        champion = np.asarray(loaded.model.predict(X), dtype=float)
        fallback = None if loaded.fallback is None or loaded.router is None else \
            np.asarray(loaded.fallback.predict(loaded.router.bounded(X)), dtype=float)
    routed = (served["route"] == "fallback").to_numpy()
    flagged = served["route_reason"].fillna("").astype(str).to_numpy() != ""

    def mae(pred: np.ndarray | None, rows: np.ndarray) -> str:
        if pred is None or not rows.any():
            return "-"
        return f"{np.abs(y[rows] - pred[rows]).mean():.3f}"

    everything = np.ones(len(y), dtype=bool)
    predict = served["predict"].to_numpy(float)
    on = [rule for rule, e in (routing.get("rules") or {}).items() if e["route"]]
    lines = [f"`{command}`", "",
             f"Production v{production['version']} ({production['family']}, trained on "
             f"{production['window_start'][:10]} .. {production['window_end'][:10]}), "
             f"{len(y):,} flights of {args.start} .. {args.end}. Rules it routes by: "
             f"{', '.join(on) or 'none'}; never by themselves: "
             f"{routing.get('skipped') or {}}.", "",
             "| rows | n | served MAE | champion alone | fallback alone |",
             "|---|---:|---:|---:|---:|"]
    for name, rows in (("all", everything), ("answered by the fallback", routed),
                       ("flagged unusual (any route)", flagged)):
        lines.append(f"| {name} | {int(rows.sum()):,} | {mae(predict, rows)} | "
                     f"{mae(champion, rows)} | {mae(fallback, rows)} |")
    reasons = served.loc[flagged, "route_reason"].str.split(":").str[0].value_counts()
    lines += ["", f"Routed to the fallback: {routed.mean():.1%} of rows; flagged unusual: "
              f"{flagged.mean():.1%} ({', '.join(f'{k} {v:,}' for k, v in reasons.items())})."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
