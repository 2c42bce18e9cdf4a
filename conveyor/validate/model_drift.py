"""Model drift: a Page-Hinkley test on the production model's prequential error.

The detector follows the online-detector contract: ``update(x)`` returns self,
``drift_detected`` is read-only, and all state lives in ``_reset()``.
"""

from __future__ import annotations

import math


class PageHinkley:
    """Page-Hinkley test for an upward shift in the mean of a stream.

    Parameters
    ----------
    delta : magnitude of change that is tolerated (per observation).
    threshold : alarm when the cumulative deviation above its minimum exceeds this (lambda).
    min_instances : observations needed before an alarm can fire.

    Examples
    --------
    >>> detector = PageHinkley(delta=0.05, threshold=1.0, min_instances=3)
    >>> stream = [1.0, 1.1, 0.9, 1.0, 1.05, 3.0, 3.2]
    >>> [i for i, x in enumerate(stream) if detector.update(x).drift_detected]
    [5, 6]

    References
    ----------
    E. S. Page, "Continuous inspection schemes", Biometrika 41 (1954) 100-115.
    """

    def __init__(self, delta: float = 0.05, threshold: float = 1.0,
                 min_instances: int = 3) -> None:
        self.delta = delta
        self.threshold = threshold
        self.min_instances = min_instances
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._sum = 0.0
        self._min = math.inf
        self._drift = False

    @property
    def drift_detected(self) -> bool:
        return self._drift

    @property
    def statistic(self) -> float:
        """The cumulative deviation above its running minimum (0 before any data)."""
        return 0.0 if self._n == 0 else self._sum - self._min

    def update(self, x: float) -> PageHinkley:
        self._n += 1
        self._mean += (x - self._mean) / self._n
        self._sum += x - self._mean - self.delta
        self._min = min(self._min, self._sum)
        self._drift = self._n >= self.min_instances and self.statistic > self.threshold
        return self


def relative_loss(score: float, reference: float, lower_is_better: bool) -> float:
    """Express a score as loss relative to the score at promotion (0 = as good as then).

    >>> relative_loss(12.0, 10.0, lower_is_better=True)
    0.2
    >>> round(relative_loss(0.7, 0.8, lower_is_better=False), 6)  # e.g. ROC AUC fell
    0.125
    """
    scale = abs(reference) if reference else 1.0
    change = score - reference if lower_is_better else reference - score
    return change / scale
