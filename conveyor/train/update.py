"""Update a fitted pipeline with one batch, the way its family's registry entry says."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from conveyor.errors import ModelError
from conveyor.train.families import FAMILIES


def can_update(family: str) -> bool:
    """Whether ``family`` learns from a new batch without a refit (its registry entry
    has an incremental update).

    >>> can_update("sgd"), can_update("tree"), can_update("no such family")
    (True, False, False)
    """
    spec = FAMILIES.get(family)
    return spec is not None and spec.incremental is not None


def update_model(pipeline: Pipeline, family: str, X: Any, y: np.ndarray,
                 seed: int = 0, **options: Any) -> tuple[Pipeline, str]:
    """Return a copy of ``pipeline`` updated with one batch, and how it was done.

    The preprocessing steps are reused as fitted; only the model step learns,
    through the family's ``Family.incremental`` function (``options`` go to it).
    """
    spec = FAMILIES.get(family)
    if spec is None or spec.incremental is None:
        raise ModelError(f"family '{family}' cannot learn incrementally; it is refit instead")
    *prep, (name, model) = pipeline.steps
    Xt = Pipeline(prep).transform(X) if prep else X
    updated, how = spec.incremental(model, Xt, y, seed, **options)
    return Pipeline([*prep, (name, updated)]), how
