"""A trained version before it is registered: the fitted model, how it came to be, the
rows it learnt from and how it was validated."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from conveyor.train.search import Evaluation
from conveyor.validate.checks import SanityReport
from conveyor.validate.decide import Validation
from conveyor.validate.served import Evidence, RoutingDecision


class Origin(enum.Enum):
    """How a version came to be (the registry's ``strategy`` column)."""

    RETRAIN = "retrain"          # a search chose its configuration
    REFIT = "refit"              # its parent's configuration fitted on the window
    INCREMENTAL = "incremental"  # its parent updated with the new batches


@dataclass(frozen=True)
class SearchRecord:
    """The candidates a search scored (with the chosen one) and the naive baseline, for
    the ``evaluations`` table."""

    evaluations: list[Evaluation]
    best: Evaluation | None
    scheme: str
    baseline: tuple[dict[str, Any], float] | None = None  # scores, seconds


@dataclass(frozen=True)
class Trained:
    """A fitted model ready to register."""

    model: Any
    family: str
    variant: str
    params: dict[str, Any]
    origin: Origin
    note: str                       # how it came to be, for people
    parent: int | None
    schema: dict[str, Any]          # its feature schema
    engineered: list[str]
    window: list[dict[str, Any]]    # the batches it learnt from
    train_rows: int
    train_seconds: float
    validation: Validation
    validation_metrics: dict[str, Any]  # scores of the search's scheme (or the update's)
    sanity: SanityReport
    explanation: dict[str, Any]
    predictions: dict[str, Any] | None = None  # profile of its predictions on held-out rows
    fallback: Any = None  # robust model for the rows the router flags
    router: Any = None
    search: SearchRecord | None = field(default=None)
    how: str = ""  # an incremental update: what it did
    evidence: Evidence = field(default_factory=dict)  # routing rules on its held-out rows
    routing: RoutingDecision | None = None  # which rules route, decided before registering
    fallback_candidate: dict[str, Any] | None = None  # the fallback's family, variant, params
