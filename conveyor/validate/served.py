"""The score of what is served, and the evidence a routing rule needs to earn its rows.

A version answers each row with its champion or, when a proven rule flags the row, its
fallback (:mod:`conveyor.serve.routing`). :class:`Answers` predicts a batch with both
models once and keeps the router's flags, so the same predictions give:

- the served score (the routed mix, exactly what inference and the API answer), with
  the champion alone and the fallback alone beside it, and per route the rows and the
  three scores (:meth:`Answers.score`);
- per rule, the paired row losses of champion and fallback on the rows that rule flags
  (:class:`RuleEvidence`), which add up across batches and decide whether the rule
  routes (:func:`decide_rules`): only when the fallback's loss is lower on at least
  ``min_rows`` rows of two batches or more, by a one-sided t test across batches.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import asdict, astuple, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import UndefinedMetricWarning

from conveyor.config import RoutingConfig
from conveyor.serve.routing import Router, choose_routes, route_kinds, within_float32
from conveyor.validate.metrics import row_losses, score_predictions


@dataclass(frozen=True)
class RuleEvidence:
    """Champion and fallback compared on the rows one rule flagged, batch by batch: sums
    that add up exactly across batches, for a mean gain and its standard error with the
    batches as independent units (rows of one batch share its conditions; batches to come
    are new conditions, so only agreement across batches proves anything)."""

    rows: int = 0
    champion: float = 0.0   # sum of the champion's row losses
    fallback: float = 0.0   # sum of the fallback's row losses
    batches: int = 0
    gain_sq: float = 0.0    # sum over batches of (batch gain) ** 2
    gain_rows: float = 0.0  # sum over batches of batch gain * batch rows
    rows_sq: float = 0.0    # sum over batches of (batch rows) ** 2

    def __add__(self, other: RuleEvidence) -> RuleEvidence:
        return RuleEvidence(*(a + b for a, b in zip(astuple(self), astuple(other),
                                                    strict=True)))

    @classmethod
    def of(cls, champion: np.ndarray, fallback: np.ndarray) -> RuleEvidence:
        """The evidence of one batch: each row's loss under both models."""
        n, gain = len(champion), float(champion.sum() - fallback.sum())
        return cls(n, float(champion.sum()), float(fallback.sum()), 1, gain ** 2, gain * n,
                   float(n) ** 2)

    def gain_and_se(self) -> tuple[float, float]:
        """Mean loss the fallback saves per row, and its standard error across batches
        (a ratio estimator's, clustered by batch; infinite with one batch).

        With batches of equal size it is the standard error of the batches' mean gains:

        >>> e = RuleEvidence.of(np.array([3.0, 5.0]), np.array([1.0, 2.0]))  # gain 2.5
        >>> e = e + RuleEvidence.of(np.array([4.0, 4.0]), np.array([3.0, 4.0]))  # 0.5
        >>> [round(v, 6) for v in e.gain_and_se()]  # mean 1.5, sem of (2.5, 0.5) = 1
        [1.5, 1.0]
        """
        if self.rows == 0:
            return 0.0, math.inf
        mean = (self.champion - self.fallback) / self.rows
        if self.batches < 2:
            return mean, math.inf
        spread = self.gain_sq - 2 * mean * self.gain_rows + mean ** 2 * self.rows_sq
        variance = max(spread, 0.0) / self.rows ** 2 * self.batches / (self.batches - 1)
        return mean, math.sqrt(variance)

    def proven(self, min_rows: int, confidence: float) -> bool:
        """Whether the fallback is better on these rows: at least ``min_rows`` of them
        over two batches or more, and a mean gain above zero by a one-sided Student t
        test at ``confidence`` (batches - 1 degrees of freedom)."""
        gain, se = self.gain_and_se()
        if self.rows < min_rows or not math.isfinite(se) or gain <= 0:
            return False
        return se == 0 or gain / se >= float(stats.t.ppf(confidence, self.batches - 1))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuleEvidence:
        return cls(int(data["rows"]), float(data["champion"]), float(data["fallback"]),
                   int(data["batches"]), float(data["gain_sq"]), float(data["gain_rows"]),
                   float(data["rows_sq"]))


Evidence = dict[str, RuleEvidence]


def combined(*parts: Evidence) -> Evidence:
    """Evidence from several sources added up, rule by rule."""
    total: Evidence = {}
    for part in parts:
        for rule, evidence in part.items():
            total[rule] = total.get(rule, RuleEvidence()) + evidence
    return total


def pooled(parts: Iterable[dict[str, Any] | None]) -> Evidence:
    """Add up evidence stored as JSON (one dict of rules per batch), rule by rule."""
    return combined(*({rule: RuleEvidence.from_json(data) for rule, data in (part or {}).items()}
                      for part in parts))


@dataclass(frozen=True)
class ServedScore:
    """A version scored on one batch as it serves it."""

    served: dict[str, float | None]
    champion: dict[str, float | None]
    fallback: dict[str, float | None] | None
    routes: dict[str, dict[str, Any]]  # per route: rows and the three scores
    evidence: Evidence                 # per rule: the paired losses on its flagged rows
    routed_share: float                # of rows the fallback answered

    def served_metrics(self) -> dict[str, Any]:
        """The served metrics with the routes' figures and the rules' evidence, as stored
        in the prequential table."""
        return {**self.served, "routed_share": self.routed_share, "routes": self.routes,
                "rules": {rule: e.to_json() for rule, e in self.evidence.items()}}


@dataclass(frozen=True)
class Answers:
    """Both models' answers on every row of a batch, and the router's flags."""

    y: np.ndarray
    champion: np.ndarray
    fallback: np.ndarray | None
    champion_proba: np.ndarray | None
    fallback_proba: np.ndarray | None
    classes: np.ndarray | None
    rules: list[str]
    flagged: np.ndarray  # rows by rules

    @classmethod
    def of(cls, model: Any, fallback: Any, router: Router | None, task: str,
           X: pd.DataFrame, y: np.ndarray) -> Answers:
        X = within_float32(X)
        proba = task != "regression" and hasattr(model, "predict_proba")
        classes = np.asarray(model.classes_) if task != "regression" else None
        rules: list[str] = []
        flagged = np.zeros((len(X), 0), dtype=bool)
        other = other_proba = None
        if router is not None and fallback is not None:
            rules, flagged = router.flags(X)
            bounded = router.bounded(X)
            other = np.asarray(fallback.predict(bounded))
            if proba and hasattr(fallback, "predict_proba"):
                other_proba = _aligned(fallback.predict_proba(bounded),
                                       np.asarray(fallback.classes_), classes)
        return cls(np.asarray(y), np.asarray(model.predict(X)), other,
                   model.predict_proba(X) if proba else None, other_proba, classes,
                   rules, flagged)

    def route(self, on: dict[str, bool] | None) -> tuple[np.ndarray, np.ndarray]:
        """Which rows the fallback answers under these rules (None: every rule routes, as
        a router saved before rules were proven), and the reasons."""
        if self.fallback is None:
            n = len(self.y)
            return np.zeros(n, dtype=bool), np.full(n, "", dtype=object)
        return choose_routes(self.rules, self.flagged, on)

    def score(self, task: str, metric: str, on: dict[str, bool] | None) -> ServedScore:
        to_fallback, reason = self.route(on)
        served, served_proba = self.champion, self.champion_proba
        if to_fallback.any() and self.fallback is not None:
            served = np.where(to_fallback, self.fallback, self.champion)
            if served_proba is not None and self.fallback_proba is not None:
                served_proba = np.where(to_fallback[:, None], self.fallback_proba, served_proba)

        def scores(pred: np.ndarray, proba: np.ndarray | None,
                   rows: np.ndarray | slice = slice(None)) -> dict[str, float | None]:
            with warnings.catch_warnings():  # a route's few rows may hold one class only
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                return score_predictions(task, self.y[rows], pred[rows],
                                         None if proba is None else proba[rows], self.classes)

        kinds = route_kinds(to_fallback, reason)
        routes = {}
        for kind in sorted(set(kinds)):
            rows = kinds == kind
            routes[str(kind)] = {
                "rows": int(rows.sum()),
                "served": scores(served, served_proba, rows).get(metric),
                "champion": scores(self.champion, self.champion_proba, rows).get(metric),
                "fallback": None if self.fallback is None else
                scores(self.fallback, self.fallback_proba, rows).get(metric)}
        return ServedScore(
            scores(served, served_proba), scores(self.champion, self.champion_proba),
            None if self.fallback is None else scores(self.fallback, self.fallback_proba),
            routes, self.evidence(metric), float(to_fallback.mean()) if len(self.y) else 0.0)

    def evidence(self, metric: str) -> Evidence:
        """Per rule that flagged a row, the paired losses of both models on its rows."""
        if self.fallback is None or not self.flagged.any():
            return {}
        champion = row_losses(metric, self.y, self.champion, self.champion_proba, self.classes)
        fallback = row_losses(metric, self.y, self.fallback, self.fallback_proba, self.classes)
        return {rule: RuleEvidence.of(champion[rows], fallback[rows])
                for rule, rows in zip(self.rules, self.flagged.T, strict=True) if rows.any()}


def score_as_served(model: Any, fallback: Any, router: Router | None, task: str, metric: str,
                    X: pd.DataFrame, y: np.ndarray) -> ServedScore:
    """A champion scored as it would serve beside this fallback and router, with the
    router's own rules."""
    return Answers.of(model, fallback, router, task, X, y).score(
        task, metric, None if router is None else router.proven_rules())


def _aligned(proba: np.ndarray, have: np.ndarray, want: np.ndarray | None) -> np.ndarray:
    """Class probabilities reordered to ``want``'s classes (a class the model never saw
    gets 0)."""
    if want is None or np.array_equal(have, want):
        return proba
    out = np.zeros((len(proba), len(want)))
    for j, label in enumerate(want):
        hits = np.flatnonzero(have == label)
        if hits.size:
            out[:, j] = proba[:, hits[0]]
    return out


@dataclass(frozen=True)
class RoutingDecision:
    """Which rules route, on what evidence: stored with the version, shown in the summary."""

    rules: dict[str, bool]
    evidence: Evidence
    skipped: dict[str, str]  # columns that never route by themselves, and why

    def to_json(self) -> dict[str, Any]:
        table = {}
        for rule, routes in self.rules.items():
            e = self.evidence.get(rule, RuleEvidence())
            gain, se = e.gain_and_se()
            table[rule] = {"route": routes, "rows": e.rows, "batches": e.batches,
                           "champion_loss": e.champion / e.rows if e.rows else None,
                           "fallback_loss": e.fallback / e.rows if e.rows else None,
                           "gain_se": None if not e.rows or not math.isfinite(se) else se,
                           "gain": gain if e.rows else None}
        return {"rules": table, "skipped": self.skipped}


def decide_rules(router: Router, evidence: Evidence, settings: RoutingConfig
                 ) -> tuple[Router, RoutingDecision]:
    """The router with each rule on only where its evidence proves the fallback better."""
    rules = {rule: evidence.get(rule, RuleEvidence()).proven(settings.min_rows,
                                                             settings.confidence)
             for rule in router.rules()}
    return router.with_rules(rules), RoutingDecision(
        rules, {r: e for r, e in evidence.items() if r in rules},
        dict(router.__dict__.get("skipped_") or {}))
