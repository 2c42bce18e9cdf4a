"""Time-ordered evaluation schemes; none of them shuffles time.

Rows are sorted by time before splitting, so every test fold lies after its
training rows.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, TimeSeriesSplit

Split = tuple[np.ndarray, np.ndarray]


def holdout_split(n_rows: int, holdout_start: int) -> list[Split]:
    """Train on rows before ``holdout_start``, test on the rest.

    >>> [(tr.tolist(), te.tolist()) for tr, te in holdout_split(5, 3)]
    [([0, 1, 2], [3, 4])]
    """
    if not 0 < holdout_start < n_rows:
        raise ValueError(
            f"holdout must leave rows on both sides (start {holdout_start} of {n_rows})"
        )
    index = np.arange(n_rows)
    return [(index[:holdout_start], index[holdout_start:])]


def timeseries_splits(n_rows: int, n_splits: int) -> list[Split]:
    """Expanding-window folds (scikit-learn's TimeSeriesSplit).

    >>> [te.tolist() for _, te in timeseries_splits(6, 2)]
    [[2, 3], [4, 5]]
    """
    return list(TimeSeriesSplit(n_splits=n_splits).split(np.zeros(n_rows)))


def kfold_splits(n_rows: int, n_splits: int) -> list[Split]:
    """Contiguous, unshuffled folds: each fold is a block of consecutive time.

    >>> [te.tolist() for _, te in kfold_splits(6, 3)]
    [[0, 1], [2, 3], [4, 5]]
    """
    return list(KFold(n_splits=n_splits, shuffle=False).split(np.zeros(n_rows)))
