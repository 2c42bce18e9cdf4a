"""Data drift against the reference window."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from conveyor.config.base import Section


class DriftConfig(Section):
    enabled: bool = Field(True, description="Compare each batch with the reference window "
                          "(the production model's training batches).")
    numeric_method: Literal["ks", "wasserstein", "psi", "js"] = Field(
        "ks", description="Deciding method for numbers: Kolmogorov-Smirnov, Wasserstein "
        "(in reference IQRs), population stability index, Jensen-Shannon distance."
    )
    categorical_method: Literal["chi2", "psi", "js"] = Field(
        "chi2", description="Deciding method for categories: chi-square, PSI, Jensen-Shannon."
    )
    alpha: float = Field(0.01, gt=0, lt=1, description="ks/chi2: p-value below which a "
                         "column may have drifted ...")
    min_effect: float = Field(0.1, ge=0, description="... if its effect (KS D, Cramer's V) "
                              "also exceeds this; p alone flags trivial shifts on big batches.")
    psi_threshold: float = Field(0.2, gt=0, description="psi: drifted above this.")
    js_threshold: float = Field(0.1, gt=0, le=1, description="js: drifted above this.")
    wasserstein_threshold: float = Field(0.1, gt=0, description="wasserstein: drifted above "
                                         "this many reference IQRs.")
    share_threshold: float = Field(0.3, gt=0, le=1, description="Dataset alarm: share of "
                                   "features that drifted.")
    bins: int = Field(20, ge=4, le=200, description="Quantile bins per numeric column, fixed "
                      "from the first batch so profiles of any batches can be merged.")
    on_alarm: Literal["reset", "retrain", "ignore"] = Field(
        "reset", description="On a dataset alarm: reset (refit production's configuration on "
        "a window that starts at the drift point; the window grows again from there, and the "
        "reference moves with the new production model), retrain (refit on the usual window "
        "instead of an incremental update), or ignore (record only)."
    )
    reset_batches: int = Field(1, ge=1, description="reset: batches kept in the training "
                               "window, the drifted one included (1: start at the drift point).")
