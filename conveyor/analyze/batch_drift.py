"""Data drift of one accepted batch: profile it, compare it with the reference window
(the stored profiles of the batches before it) and record the result."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from conveyor.analyze import drift
from conveyor.config import Config
from conveyor.prepare.roles import Roles
from conveyor.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataAlarm:
    """Too many of a batch's features drifted: how many, the worst ones, and the reason
    for people (events, logs, the version's note)."""

    batch_id: int
    share: float                # share of features that drifted
    columns: tuple[str, ...]    # the most drifted, worst first (at most five)
    reason: str

    @staticmethod
    def combined(alarms: list[DataAlarm]) -> str | None:
        """The reasons of one update's alarms, for the strategy's note (None: no alarm)."""
        return "; ".join(a.reason for a in alarms) or None


def drift_row(row: dict[str, Any]) -> dict[str, Any]:
    """A drift result as a database row: non-finite numbers become NULL (JSON has no inf)."""
    def finite(value: Any) -> Any:
        return value if not isinstance(value, float) or np.isfinite(value) else None

    return {**{k: finite(v) for k, v in row.items() if k != "scores"},
            "drifted": int(row["drifted"]),
            "scores": {k: finite(float(v)) for k, v in row["scores"].items()}}


def drift_settings(config: Config) -> drift.BaseDriftSettings:
    """The drift settings from the ``drift`` section: every field DriftSettings declares
    (a field per registered method threshold), read by name, so a new method's threshold
    cannot silently keep its default."""
    settings = drift.settings_class()
    return settings(**{item.name: getattr(config.drift, item.name)
                       for item in dataclasses.fields(settings)})


def measure_drift(config: Config, store: Store, conn: Any, batch_id: int, frame: pd.DataFrame,
                  roles: Roles, reference: dict[str, drift.Profile]) -> DataAlarm | None:
    """Profile the batch, compare it with the reference (merged profiles of production's
    training batches), record it; return the alarm."""
    columns = [c for c in [*roles.features, config.target.column] if c in frame.columns]
    edges = store.bin_edges()
    new_edges = {c: drift.edges_for(frame[c], config.drift.bins) for c in columns
                 if c not in edges and pd.api.types.is_numeric_dtype(frame[c])
                 and not pd.api.types.is_bool_dtype(frame[c])}
    edges.update(new_edges)
    profiles = drift.profile_frame(frame[columns], edges)
    store.insert_rows(conn, "bin_edges", [
        {"column": c, "edges": [float(x) if np.isfinite(x) else str(x) for x in e]}
        for c, e in new_edges.items()])
    store.insert_rows(conn, "profiles", [{"batch_id": batch_id, "column": c,
                                          "profile": drift.profile_to_json(p)}
                                         for c, p in profiles.items()])
    if not reference:
        return None
    settings = drift_settings(config)
    target = config.target.column
    features = drift.compare({c: p for c, p in reference.items() if c != target},
                             {c: p for c, p in profiles.items() if c != target}, settings)
    on_target = drift.compare({c: p for c, p in reference.items() if c == target},
                              {c: p for c, p in profiles.items() if c == target}, settings)
    rows = [{"batch_id": batch_id, "role": "feature", **r} for r in features.to_rows()]
    rows += [{"batch_id": batch_id, "role": "target", **r} for r in on_target.to_rows()]
    store.insert_rows(conn, "drift", [drift_row(r) for r in rows])
    if not features.drifted:
        return None
    top = sorted((c for c in features.columns if c.drifted), key=lambda c: -c.statistic)[:5]
    reason = (f"data drift: {features.share_drifted:.0%} of features drifted "
              f"(threshold {settings.share_threshold:.0%}): "
              + ", ".join(f"{c.column} ({c.method} {c.statistic:.2f})" for c in top))
    store.add_event(conn, "data_drift", reason, batch_id=batch_id)
    log.warning("batch %d: %s", batch_id, reason)
    return DataAlarm(batch_id, features.share_drifted, tuple(c.column for c in top), reason)
