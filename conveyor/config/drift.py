"""Data drift against the reference window.

The methods and their thresholds come from the registry of
:mod:`conveyor.analyze.drift.methods`: :func:`drift_section` adds a key per
threshold (with its default and bounds) and narrows the method keys to the
registered names, so a new method needs no edit here.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field, create_model

from conveyor.analyze.drift import methods
from conveyor.config.base import Section


class DriftSection(Section):
    """The drift keys; :func:`drift_section` narrows the method keys to the registered
    names and adds every method's thresholds."""

    enabled: bool = Field(True, description="Compare each batch with the reference window "
                          "(the production model's training batches).")
    numeric_method: str = Field("ks", description="Deciding method for numbers.")
    categorical_method: str = Field("chi2", description="Deciding method for categories.")
    share_threshold: float = Field(0.3, gt=0, le=1, description="Dataset alarm: share of "
                                   "features that drifted.")
    bins: int = Field(20, ge=4, le=200, description="Quantile bins per numeric column, fixed "
                      "from the first batch so profiles of any batches can be merged.")
    on_alarm: Literal["evidence", "reset", "retrain", "ignore"] = Field(
        "evidence", description="On a dataset alarm: evidence (refit production's "
        "configuration on candidate windows: everything kept, the newest 2 and 4 batches, the "
        "new batches alone; score each on the newest rows and keep the best: history is "
        "discarded only when that is better), reset (train on the newest reset_batches "
        "batches; the window grows again from there), retrain (refit on the usual window "
        "instead of an incremental update), or ignore (record only)."
    )
    reset_batches: int = Field(1, ge=1, description="reset: batches kept in the training "
                               "window, the drifted one included (1: start at the drift point).")


def _method_key(kind: methods.Kind, default: str, words: str) -> tuple[Any, Any]:
    names = methods.names(kind)
    titles = ", ".join(methods.METHODS[n].title for n in names)
    return Literal[names], Field(default, description=f"Deciding method for {words}: {titles}.")


@functools.cache
def _section(registry: tuple[methods.DriftMethod, ...]) -> type[DriftSection]:
    fields: dict[str, Any] = {}
    for name, info in DriftSection.model_fields.items():
        fields[name] = (info.annotation, info)
        if name == "categorical_method":  # the methods' thresholds follow the method keys
            fields["numeric_method"] = _method_key("numeric", "ks", "numbers")
            fields["categorical_method"] = _method_key("categorical", "chi2", "categories")
            fields.update({s.name: (float, Field(s.default, description=s.description, gt=s.gt,
                                                 ge=s.ge, lt=s.lt, le=s.le))
                           for s in methods.settings(registry)})
    made = create_model("DriftConfig", __base__=Section, __module__=__name__,
                        __doc__="The drift section: fixed keys and every method's thresholds.",
                        **fields)
    return cast(type[DriftSection], made)  # the same keys and more; not a subclass


def drift_section() -> type[DriftSection]:
    """The ``drift`` section for the registry as it is now."""
    return _section(tuple(methods.METHODS.values()))


if TYPE_CHECKING:
    DriftConfig = DriftSection
else:
    DriftConfig = drift_section()
