"""What history features add to one API request: the enrichment step for one record with
the model's history features and without them, in process, interleaved.

    python bench/history_bench.py --config PATH [--repeats 500] [--rounds 5]

``PATH`` is a config whose workspace has a production model reading history features
(e.g. the demo config with ``features.history`` and ``train.history_features: always``
after a few updates). The record is the newest stored batch's last row without its
target, its time moved one hour past it (a row the API could be asked about next).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from conveyor.collect.enrich import make_enricher  # noqa: E402
from conveyor.config import load_config  # noqa: E402
from conveyor.serve.bundle import load_version  # noqa: E402
from conveyor.store import Store  # noqa: E402
from conveyor.train.data import BatchFrames  # noqa: E402
from conveyor.workspace import Workspace  # noqa: E402


def per_call_ms(step, record: pd.DataFrame, repeats: int) -> float:
    step(record.copy())
    start = time.perf_counter()
    for _ in range(repeats):
        step(record.copy())
    return 1000 * (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    config = load_config(args.config)
    workspace = Workspace.of(config)
    store = Store.open(workspace.db_url)
    try:
        loaded = load_version(workspace, store.production())
        enricher = make_enricher(config, loaded.features, store)
        newest = store.accepted_batches(1)[0]
    finally:
        store.close()
    if enricher is None or enricher.history is None:
        sys.exit("production reads no history features: nothing to measure")
    plain = dataclasses.replace(enricher, history=None, history_mark=None)
    time_column, target = config.source.time_column, config.target.column
    row = BatchFrames(config, workspace).plain(newest).tail(1)
    record = row.drop(columns=[target, *enricher.added], errors="ignore")
    record[time_column] = (pd.to_datetime(record[time_column], utc=True)
                           + pd.Timedelta("1h")).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    features = enricher(record.copy())[list(enricher.history.names)]
    with_history, without = [], []
    for _ in range(args.rounds):  # interleaved: the machine's load hits both alike
        with_history.append(per_call_ms(enricher, record, args.repeats))
        without.append(per_call_ms(plain, record, args.repeats))
    a, b = statistics.median(with_history), statistics.median(without)
    print(f"history features {list(enricher.history.names)}: "
          f"{features.iloc[0].round(3).to_dict()}")
    print(f"one record, median of {args.rounds} rounds of {args.repeats}: enrichment with "
          f"history {a:.2f} ms, without {b:.2f} ms, difference {a - b:+.2f} ms")


if __name__ == "__main__":
    main()
