"""Preprocessing variants, model families, the search and where it runs, the training window."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from conveyor.config.base import Section


class VariantConfig(Section):
    numeric_impute: Literal["median", "mean", "none"] = Field(
        "median", description="Missing numbers: filled with the median or mean, or left as NaN "
        "(none: only for families that take NaN natively: tree, forest, hgb)."
    )
    missing_indicators: bool = Field(
        False, description="Add a 0/1 column per numeric feature that had missing values."
    )
    scale: Literal["standard", "robust", "quantile", "none"] = Field(
        "standard", description="Scaling of numbers: z-score, median/IQR, quantile-to-normal, "
        "or none."
    )
    categorical: Literal["onehot", "ordinal", "target", "native"] = Field(
        "onehot", description="Categories: one-hot (rare levels grouped), ordinal codes, "
        "target encoding (cross-fitted), or native (ordinal codes, NaN kept, declared "
        "categorical to hgb)."
    )


def default_variants() -> dict[str, VariantConfig]:
    return {
        "onehot": VariantConfig(),
        "robust": VariantConfig(missing_indicators=True, scale="robust", categorical="target"),
        "native": VariantConfig(numeric_impute="none", scale="none", categorical="native"),
    }


class PrepareConfig(Section):
    max_categories: int = Field(
        30, ge=2, description="One-hot levels kept per categorical column; rarer ones are grouped."
    )
    min_frequency: int = Field(
        5, ge=1, description="A category seen fewer times than this is grouped as infrequent."
    )
    variants: dict[str, VariantConfig] = Field(
        default_factory=default_variants,
        description="Named preprocessing variants the search pairs with model families.",
    )


class FamilyConfig(Section):
    enabled: bool = Field(True, description="Whether the search tries this family.")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="Hyperparameter grid: estimator parameter -> values."
    )
    variants: list[str] | None = Field(
        None, description="Preprocessing variants to pair with this family; null: the "
        "family's default (onehot and robust for linear, sgd, knn; native for trees)."
    )


def default_families() -> dict[str, FamilyConfig]:
    return {
        "linear": FamilyConfig(grid={"alpha": [0.1, 1.0, 10.0]}),
        "knn": FamilyConfig(grid={"n_neighbors": [10, 30]}),
        "tree": FamilyConfig(grid={"max_depth": [6, 10], "min_samples_leaf": [20]}),
        "hgb": FamilyConfig(grid={"max_iter": [200]}),
    }


class SearchConfig(Section):
    sampler: Literal["grid", "random"] = Field(
        "grid", description="grid: every combination; random: n_candidates drawn from the grid."
    )
    n_candidates: int = Field(
        20, ge=1, description="Random sampler: candidates drawn per update (across families)."
    )
    halving: bool = Field(
        False, description="Successive halving (factor 3): score every candidate on 1/9 (or "
        "1/27, ...) of each training split first (every 9th row, so the sample spans the "
        "split's whole period), the best third of them on three times more rows, and so on; "
        "at least two reach the full splits. Every rung is stored in the evaluations table."
    )
    warm_start: bool = Field(
        True, description="Budgeted search: once the meta-learner has shown on later batches "
        "that it can rank candidates, try its most promising first; false: cheapest first."
    )
    cost_tolerance: float = Field(
        0.0, ge=0.0, le=0.5, description="Take the best candidate of the cheapest family "
        "(linear, sgd, tree, knn, hgb, forest) among those whose score is within this "
        "relative distance of the best (0.01: 1%); a cheaper model is cheaper at every refit "
        "and prediction after. 0: the best score wins."
    )
    explore: float = Field(
        0.25, ge=0.0, le=1.0, description="Warm start: share of the search order given to "
        "candidates drawn at random from the rest (every 1/explore-th slot), so the "
        "meta-learner keeps seeing configurations it would not pick; 0: its order only."
    )


class ComputeConfig(Section):
    backend: Literal["local", "dask"] = Field(
        "local", description="Where the search runs: local processes (joblib) or a Dask cluster."
    )
    n_jobs: int = Field(1, description="Parallel candidate fits; -1 uses every core; with dask, "
                        "1 or -1 means one per worker.")
    threads: int | None = Field(
        1, ge=1, description="OpenMP/BLAS threads per process during update; null: the "
        "libraries' default (all cores). One is the safe choice: gradient boosting's spinning "
        "OpenMP threads slow down ~50x when the cores are shared (measured: a latency check "
        "took 3.7 s instead of 0.05 s per 1,000 rows)."
    )
    dask_address: str | None = Field(
        None, description="Dask scheduler address (tcp://host:8786); null starts a local "
        "cluster in this process."
    )


class TrainConfig(Section):
    window_batches: int = Field(
        8, ge=1, description="Sliding training window: the newest N accepted batches."
    )
    max_rows: int | None = Field(
        None, ge=100, description="Cap on training rows (newest kept); null means no cap."
    )
    history_features: Literal["earned", "always"] = Field(
        "earned", description="earned: after each search, features.history stay only when "
        "the choice with them beats each family's best without them by more than "
        "search.cost_tolerance; always: every model reads them."
    )
    sample_every: int = Field(
        1, ge=1, description="Train and validate on every N-th row of the window, counted "
        "back from the newest (a sample spread over the whole window), for fits N times "
        "cheaper; 1 uses every row. Prequential scores still use whole batches."
    )
    families: dict[str, FamilyConfig] = Field(
        default_factory=default_families,
        description="Model families to search: linear, sgd, knn, tree, forest, hgb.",
    )
    strategy: Literal["auto", "refit", "retrain", "incremental"] = Field(
        "auto", description="auto: update the production model incrementally when its family "
        "can and nothing drifted, else refit its configuration on the window; search all "
        "candidates for the first model, when production's error drifts (model drift) and "
        "every retrain_every batches; refit: like auto, but production's configuration is "
        "always refit on the window, never updated incrementally (a refit validated by "
        "production itself costs one fit); retrain: always search; incremental: like auto "
        "without the scheduled search."
    )
    retrain_every: int = Field(
        4, ge=1, description="auto: search all candidates at least every N accepted batches "
        "(one update each; the updates between are incremental or refits)."
    )
    knn_memory: int = Field(
        50_000, ge=100, description="kNN: rows kept in its time-ordered memory (newest kept)."
    )
    budget_seconds: float | None = Field(
        None, gt=0, description="Search time budget per update, successive halving's rungs "
        "included: no new candidate starts after it is spent; cheap and (by the "
        "meta-learner) promising candidates run first. null: no limit."
    )
    search: SearchConfig = Field(default_factory=SearchConfig,
                                 description="How candidates are drawn from the grids.")

    @field_validator("families")
    @classmethod
    def _known_families(cls, value: dict[str, FamilyConfig]) -> dict[str, FamilyConfig]:
        from conveyor.train.families import FAMILIES

        unknown = sorted(set(value) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown family {unknown}; choose from {sorted(FAMILIES)}")
        if not any(f.enabled for f in value.values()):
            raise ValueError("at least one family must be enabled")
        return value
