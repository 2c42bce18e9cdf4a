"""The registry of drift methods: what each scores, on which column kinds, and when it
calls a column drifted.

A method is one :class:`DriftMethod` in :data:`METHODS`. Its thresholds are
:class:`Setting` s; each becomes a key of the config's ``drift`` section and a
field of :class:`~conveyor.analyze.drift.decide.DriftSettings`, with its
default, so a new method needs no other edit. Every method applicable to a
column's kind is scored (all scores are stored); the configured one decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from conveyor.analyze.drift.profiles import CategoricalProfile, NumericProfile, Profile

# The statistics (numpy, scipy) are imported by the functions that compute them: the
# config reads this registry's names and settings, and `conveyor status` or `--help`
# must not wait for scipy.

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Setting:
    """A threshold: a ``drift`` config key and a DriftSettings field of the same name.

    ``direction`` says which side of it is drifted: a score ``above`` it, or (a
    p-value) ``below`` it. The bounds are the key's valid range (pydantic's).
    """

    name: str
    default: float
    direction: Literal["above", "below"]
    description: str
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def crossed(self, score: float, limit: float) -> bool:
        """Whether ``score`` is on the drifted side of ``limit``."""
        return score > limit if self.direction == "above" else score < limit


@dataclass(frozen=True)
class DriftMethod:
    """A drift method: its scores for two profiles of one kind, and its decision.

    ``score`` returns named scores (all are stored with the column); ``statistic``
    and ``p_value`` name the ones reported; a column drifted when every
    ``(score name, setting)`` of ``thresholds`` is crossed.
    """

    name: str
    title: str  # how the config's description names it
    kinds: tuple[Kind, ...]
    score: Callable[[Any, Any], dict[str, float]]
    statistic: str
    thresholds: tuple[tuple[str, Setting], ...]
    p_value: str | None = None

    def decide(self, scores: dict[str, float], limits: Any) -> bool:
        """Whether the scores cross every threshold; ``limits`` holds the settings by name."""
        return all(setting.crossed(scores[key], getattr(limits, setting.name))
                   for key, setting in self.thresholds)


def counts(ref: Profile, cur: Profile) -> tuple[Any, Any]:
    """Both profiles' counts over shared bins (numbers) or the union of levels."""
    from conveyor.analyze.drift.profiles import CategoricalProfile
    from conveyor.analyze.drift.stats import align

    if isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        return align(ref.counts, cur.counts)
    return ref.counts, cur.counts


def _ks(ref: NumericProfile, cur: NumericProfile) -> dict[str, float]:
    from conveyor.analyze.drift.stats import ks_from_counts

    ks = ks_from_counts(ref.counts, cur.counts)
    return {"ks": ks.statistic, "ks_p": ks.p_value}


def _wasserstein(ref: NumericProfile, cur: NumericProfile) -> dict[str, float]:
    from conveyor.analyze.drift.stats import wasserstein_from_counts, wasserstein_normalised

    return {"wasserstein": wasserstein_from_counts(ref.edges, ref.counts, cur.counts),
            "wasserstein_norm": wasserstein_normalised(ref.edges, ref.counts, cur.counts)}


def _chi2(ref: CategoricalProfile, cur: CategoricalProfile) -> dict[str, float]:
    import numpy as np

    from conveyor.analyze.drift.stats import align, chi_square, cramers_v

    chi = chi_square(ref.counts, cur.counts)
    r, c = align(ref.counts, cur.counts)
    v = cramers_v(chi.statistic, int(r.sum() + c.sum()), int(np.count_nonzero(r + c)))
    return {"chi2": chi.statistic, "chi2_p": chi.p_value, "cramers_v": v}


def _psi(ref: Profile, cur: Profile) -> dict[str, float]:
    from conveyor.analyze.drift.stats import psi

    return {"psi": psi(*counts(ref, cur))}


def _js(ref: Profile, cur: Profile) -> dict[str, float]:
    from conveyor.analyze.drift.stats import jensen_shannon

    return {"js": jensen_shannon(*counts(ref, cur))}


ALPHA = Setting("alpha", 0.01, "below", "ks/chi2: p-value below which a column may have "
                "drifted ...", gt=0, lt=1)
MIN_EFFECT = Setting("min_effect", 0.1, "above", "... if its effect (KS D, Cramer's V) also "
                     "exceeds this; p alone flags trivial shifts on big batches.", ge=0)

METHODS: dict[str, DriftMethod] = {m.name: m for m in (
    # tests: significant AND large enough to matter
    DriftMethod("ks", "Kolmogorov-Smirnov", ("numeric",), _ks, "ks",
                (("ks_p", ALPHA), ("ks", MIN_EFFECT)), p_value="ks_p"),
    DriftMethod("wasserstein", "Wasserstein (in reference IQRs)", ("numeric",), _wasserstein,
                "wasserstein_norm", (("wasserstein_norm", Setting(
                    "wasserstein_threshold", 0.1, "above",
                    "wasserstein: drifted above this many reference IQRs.", gt=0)),)),
    DriftMethod("chi2", "chi-square", ("categorical",), _chi2, "chi2",
                (("chi2_p", ALPHA), ("cramers_v", MIN_EFFECT)), p_value="chi2_p"),
    DriftMethod("psi", "population stability index", ("numeric", "categorical"),
                _psi, "psi",
                (("psi", Setting("psi_threshold", 0.2, "above", "psi: drifted above this.",
                                 gt=0)),)),
    DriftMethod("js", "Jensen-Shannon distance", ("numeric", "categorical"),
                _js, "js",
                (("js", Setting("js_threshold", 0.1, "above", "js: drifted above this.",
                                gt=0, le=1)),)),
)}


def register(method: DriftMethod) -> None:
    """Add a method (its settings appear in the ``drift`` section and DriftSettings)."""
    if method.name in METHODS:
        raise ValueError(f"drift method '{method.name}' is already registered")
    METHODS[method.name] = method


def unregister(name: str) -> None:
    """Remove a method added by :func:`register`."""
    del METHODS[name]


def names(kind: Kind) -> tuple[str, ...]:
    """The methods that apply to a column kind, in registry order.

    >>> names("categorical")
    ('chi2', 'psi', 'js')
    """
    return tuple(m.name for m in METHODS.values() if kind in m.kinds)


def settings(methods: Iterable[DriftMethod] | None = None) -> tuple[Setting, ...]:
    """Every method's thresholds, each once, in registry order.

    >>> [s.name for s in settings()]
    ['alpha', 'min_effect', 'wasserstein_threshold', 'psi_threshold', 'js_threshold']
    """
    found: dict[str, Setting] = {}
    for method in METHODS.values() if methods is None else methods:
        for _, setting in method.thresholds:
            if found.setdefault(setting.name, setting) != setting:
                raise ValueError(f"drift setting '{setting.name}' is declared twice, "
                                 "differently")
    return tuple(found.values())


def scores(kind: Kind, ref: Profile, cur: Profile) -> dict[str, float]:
    """Every applicable method's scores of one column, in registry order."""
    out: dict[str, float] = {}
    for method in METHODS.values():
        if kind in method.kinds:
            out.update(method.score(ref, cur))
    return out
