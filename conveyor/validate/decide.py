"""The promotion decision: a new version becomes production, waits in staging, or
stays a candidate (it failed its checks)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from conveyor.validate.checks import SanityReport
from conveyor.validate.metrics import is_better


class Verdict(enum.Enum):
    PROMOTE = "promote"  # production from now on
    STAGE = "stage"      # passed its checks, did not beat production: staging
    REJECT = "reject"    # failed its checks: stays a candidate


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str  # for people: the event and the registry say it

    @property
    def promoted(self) -> bool:
        return self.verdict is Verdict.PROMOTE


@dataclass(frozen=True)
class Validation:
    """A new version's hold-out scores and what it is compared with."""

    challenger: dict[str, Any]        # its scores on the newest rows
    incumbent: dict[str, Any] | None  # production's scores on the same rows
    margin: float                     # how much better it must be
    refresh: bool = False             # production refit with the new batch


def decide(metric: str, validation: Validation, sanity: SanityReport,
           production_version: int | None, version: int) -> Decision:
    """Promote or keep a new version: it must pass its checks and beat production by
    the margin on the newest rows; a refresh (production's configuration refit with the
    new batch, validated by production's own score on it) replaces production as a
    sliding-window refit does, since no other model was compared."""
    if not sanity.passed:
        return Decision(Verdict.REJECT,
                        f"v{version} failed its checks: {'; '.join(sanity.failures)}")
    score = validation.challenger.get(metric)
    incumbent = validation.incumbent
    if production_version is None or incumbent is None:
        return Decision(Verdict.PROMOTE, f"first model: hold-out {metric} {score:.4g}")
    if validation.refresh:
        return Decision(Verdict.PROMOTE, (
            f"refresh of production v{production_version} with the new batch; "
            f"v{production_version}'s hold-out {metric} on it {score:.4g}"))
    current = incumbent.get(metric)
    text = f"hold-out {metric} {score:.4g} vs production v{production_version} {current:.4g}"
    if is_better(metric, score, current, validation.margin):
        return Decision(Verdict.PROMOTE, f"beats production: {text}")
    return Decision(Verdict.STAGE,
                    f"does not beat production by {validation.margin:.0%}: {text}")
