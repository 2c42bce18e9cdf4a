"""A meta-model over all past evaluations: what makes a candidate rank well on a batch.

``quality`` is a candidate's rank percentile within its batch (1 = best, 0 = worst,
ties averaged). Raw scores are not comparable across batches, metrics and targets;
a ratio to the baseline explodes when the baseline is near zero (r2) or saturated
(accuracy), and one diverged model would dominate a regression on raw gains. Ranks
are bounded, scale-free and answer what the search asks: what to try first. A data
property that hurts every model leaves ranks alone, so ``data:`` inputs show which
candidates win on which batches ("with more missing values, tree ranks higher").

The model is a random forest (it handles missing values: a hyperparameter of
another family stays missing, never imputed; trees ignore monotone rescaling, so
alpha or C need no log10). Its honesty is forward validation by batch (ids are in
time order): the later half of the batches in up to three blocks, each predicted
by a model fitted on every earlier batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

BASELINE, NOT_APPLICABLE = "baseline", "n/a"
MIN_BATCHES, MIN_ROWS = 3, 30
MAX_LEVELS = 20  # a numeric input with more distinct values is read in quantile bins
WEAK = 0.01  # an importance below this (in R²) is read as no clear effect
_ABSENT = object()
Reading = tuple[str, str, tuple[Any, ...], tuple[float, ...]]  # label, text, x, mean quality


@dataclass(frozen=True)
class MetaModel:
    """A fitted meta-model (or why there is none) and its forward-validated honesty."""

    fitted: bool
    reason: str
    n_rows: int = 0
    n_batches: int = 0
    inputs: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    cv_r2: float | None = None
    cv_top_quality: float | None = None  # mean quality of its first pick on held-out batches
    model: Pipeline | None = field(default=None, repr=False, compare=False)
    folds: tuple[tuple[Pipeline, tuple[int, ...]], ...] = field(
        default=(), repr=False, compare=False)

    @property
    def informative(self) -> bool:
        """Whether it beats a constant guess on batches it never saw."""
        return self.fitted and self.cv_r2 is not None and self.cv_r2 > 0


@dataclass(frozen=True)
class Finding:
    """How much one input drives quality (``family`` counts with its hyperparameters)."""

    input: str
    importance: float  # drop in held-out R² when the input is shuffled
    reading: str
    x: tuple[Any, ...] = ()
    y: tuple[float, ...] = ()  # mean quality at each x


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)


def _category(value: Any) -> Any:
    return np.nan if value is _ABSENT else "None" if value is None else str(value)


def _params(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return dict(json.loads(value)) if value else {}
    return dict(value) if isinstance(value, dict) else {}


def _flatten(params: list[dict[str, Any]]) -> dict[str, pd.Series]:
    """Return one column per hyperparameter: float when every value is a number, else text.

    >>> cols = _flatten([{"max_depth": 6}, {"weights": "distance", "n_neighbors": 9}])
    >>> cols["param:max_depth"].tolist(), cols["param:weights"].tolist()
    ([6.0, nan], [nan, 'distance'])
    """
    out = {}
    for name in sorted({k for p in params for k in p}):
        raw = [p.get(name, _ABSENT) for p in params]
        if all(_is_number(v) for v in raw if v is not _ABSENT):
            out[f"param:{name}"] = pd.Series([np.nan if v is _ABSENT else v for v in raw],
                                             dtype=float)
        else:
            out[f"param:{name}"] = pd.Series([_category(v) for v in raw], dtype=object)
    return out


def meta_table(evaluations: pd.DataFrame, batch_features: pd.DataFrame,
               metric_direction: str) -> pd.DataFrame:
    """Return one row per scored candidate: ``batch_id``, inputs and ``quality`` (0..1).

    ``batch_features`` has a ``batch_id`` column (or index); its numeric columns
    become ``data:`` inputs. Candidates are ranked within their race: one rung of a
    batch's search, or (``race`` = ``served``) the models scored as served on it. The
    baseline, unscored rows and lone candidates are left out.

    >>> ev = pd.DataFrame({"batch_id": [1, 1, 1], "family": ["tree", "knn", "baseline"],
    ...                    "params": [{"max_depth": 6}, {"n_neighbors": 9}, {}],
    ...                    "score": [3.0, 5.0, 9.0]})
    >>> t = meta_table(ev, pd.DataFrame({"batch_id": [1], "rows": [500]}), "min")
    >>> t[["family", "param:max_depth", "data:rows", "quality"]].values.tolist()
    [['tree', 6.0, 500.0, 1.0], ['knn', nan, 500.0, 0.0]]
    """
    if metric_direction not in ("min", "max"):
        raise ValueError(f"metric_direction must be 'min' or 'max', got {metric_direction!r}")
    scored = evaluations[evaluations["score"].notna()
                         & (evaluations["family"].astype(str) != BASELINE)]
    # a race: one rung of a batch's search, or the models scored as served on one batch
    race = [scored["batch_id"]]
    if "race" in scored:
        race.append(scored["race"].fillna("search"))
    if "rung" in scored:
        race.append(scored["rung"].fillna(0))
    by_batch = scored["score"].astype(float).groupby(race)
    ranks = by_batch.rank(ascending=metric_direction == "max", method="average")
    quality = (ranks - 1) / (by_batch.transform("size") - 1)  # NaN for a lone candidate
    variant = (scored["variant"] if "variant" in scored
               else pd.Series(None, index=scored.index)).astype(object)
    table = pd.DataFrame({"batch_id": scored["batch_id"].to_numpy(),
                          "family": scored["family"].astype(str).to_numpy(),
                          "variant": variant.fillna("default").astype(str).to_numpy()})
    for name, column in _flatten([_params(p) for p in scored["params"]]).items():
        table[name] = column.to_numpy()
    data = batch_features.set_index("batch_id") if "batch_id" in batch_features \
        else batch_features
    data = data.select_dtypes("number").drop(columns=["id"], errors="ignore").astype(float)
    data.columns = [c if str(c).startswith("data:") else f"data:{c}" for c in data.columns]
    table = table.join(data, on="batch_id")
    table["quality"] = quality.to_numpy()
    return table[table["quality"].notna()].reset_index(drop=True)


def _prepare(table: pd.DataFrame, inputs: tuple[str, ...],
             categorical: tuple[str, ...]) -> pd.DataFrame:
    """Return the inputs as the model reads them: text with ``n/a``, numbers as float."""
    columns = {}
    for name in inputs:
        column = table[name] if name in table else pd.Series(np.nan, index=table.index)
        columns[name] = (column.astype(object).where(column.notna(), NOT_APPLICABLE)
                         if name in categorical
                         else pd.to_numeric(column, errors="coerce").astype(float))
    return pd.DataFrame(columns, index=table.index)


def _estimator(categorical: tuple[str, ...], seed: int) -> Pipeline:
    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
          list(categorical))], remainder="passthrough", verbose_feature_names_out=False)
    forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=3, max_features=0.5,
                                   random_state=seed, n_jobs=1)
    return Pipeline([("encode", encode), ("model", forest)])


def _forward_blocks(batches: np.ndarray) -> list[np.ndarray]:
    """Split the later half of the batches into up to three consecutive test blocks.

    >>> [b.tolist() for b in _forward_blocks(np.arange(1, 11))]
    [[6, 7], [8, 9], [10]]
    """
    later = batches[(len(batches) + 1) // 2:]
    return [b for b in np.array_split(later, min(3, len(later))) if len(b)]


def _scored(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["family"] != BASELINE) & table["quality"].notna()]


def fit_meta(table: pd.DataFrame, seed: int = 0) -> MetaModel:
    """Fit the meta-model on a ``meta_table`` and measure it on later, unseen batches."""
    rows = _scored(table)
    batches = np.sort(rows["batch_id"].unique())
    n_rows, n_batches = len(rows), len(batches)
    if n_batches < MIN_BATCHES or n_rows < MIN_ROWS:
        return MetaModel(False, f"needs at least {MIN_BATCHES} batches and {MIN_ROWS} scored "
                         f"candidates, has {n_batches} and {n_rows} (a search scores many; "
                         "each later batch scores production's champion and fallback)",
                         n_rows, n_batches)
    inputs = [c for c in rows.columns if c not in ("batch_id", "quality")
              and rows[c].nunique(dropna=False) > 1]
    if not inputs:
        return MetaModel(False, "every candidate has the same inputs", n_rows, n_batches)
    categorical = tuple(c for c in inputs if not pd.api.types.is_numeric_dtype(rows[c]))
    ordered = categorical + tuple(c for c in inputs if c not in categorical)
    X, y = _prepare(rows, ordered, categorical), rows["quality"].to_numpy(float)
    folds, truth, guesses, tops = [], [], [], []
    for block in _forward_blocks(batches):
        train, test = (rows["batch_id"] < block[0]).to_numpy(), rows["batch_id"].isin(block)
        model = _estimator(categorical, seed).fit(X[train], y[train])
        folds.append((model, tuple(int(b) for b in block)))
        held = pd.DataFrame({"batch": rows.loc[test, "batch_id"].to_numpy(),
                             "guess": model.predict(X[test.to_numpy()]),
                             "quality": y[test.to_numpy()]})
        truth.append(held["quality"])
        guesses.append(held["guess"])
        tops += held.loc[held.groupby("batch")["guess"].idxmax(), "quality"].tolist()
    cv_r2 = float(r2_score(pd.concat(truth), pd.concat(guesses)))
    return MetaModel(True, f"fitted on {n_rows} candidates of {n_batches} batches", n_rows,
                     n_batches, ordered, categorical, cv_r2, float(np.mean(tops)),
                     _estimator(categorical, seed).fit(X, y), tuple(folds))


def _label(column: str, rows: pd.DataFrame) -> str:
    if not column.startswith("param:"):
        return column
    families = sorted(rows.loc[rows[column].notna(), "family"].unique())
    return f"{'/'.join(families)} {column.removeprefix('param:')}"


def _level_reading(column: str, rows: pd.DataFrame) -> Reading:
    used = rows[rows[column].notna()]
    means = used.groupby(column)["quality"].mean().sort_values(ascending=False)
    winners = used.loc[used.groupby("batch_id")["quality"].idxmax(), column]
    best, worst = means.index[0], means.index[-1]
    text = (f"{best} is best on {(winners == best).mean():.0%} of batches "
            f"(mean quality {means.iloc[0]:.2f} vs {worst} {means.iloc[-1]:.2f})")
    return _label(column, rows), text, tuple(means.index), tuple(means)


def _numeric_reading(column: str, rows: pd.DataFrame) -> Reading:
    used = rows[rows[column].notna()]
    values = used[column]
    if values.nunique() > MAX_LEVELS:  # bins labelled by their median
        values = values.groupby(pd.qcut(values, 5, duplicates="drop"),
                                observed=True).transform("median")
    means = used["quality"].groupby(values).mean()
    x, y = means.index.to_numpy(float), means.to_numpy()
    if len(x) < 2:
        return _label(column, rows), f"one value tried ({x[0]:.3g})", tuple(x), tuple(y)
    best, worst = x[int(np.argmax(y))], x[int(np.argmin(y))]
    where = ("little effect" if y.max() - y.min() < 0.05
             else "quality improves with larger values" if best == x[-1]
             else "quality improves with smaller values" if best == x[0]
             else "quality peaks in the middle")
    text = (f"{where} (best around {best:.3g}); "
            f"mean quality {y.max():.2f} at {best:.3g} vs {y.min():.2f} at {worst:.3g}")
    return _label(column, rows), text, tuple(x), tuple(y)


def _data_reading(column: str, rows: pd.DataFrame) -> Reading:
    per_batch = rows.groupby("batch_id")[column].first().dropna()
    high = rows["batch_id"].map(per_batch > per_batch.median()).rename("high")
    if rows["family"].nunique() < 2 or high.nunique() < 2:
        return column, "acts only together with hyperparameters", (), ()
    by_half = rows.groupby([high, "family"])["quality"].mean()
    gain = (by_half[True] - by_half[False]).dropna()
    up, down = gain.idxmax(), gain.idxmin()
    text = (f"on batches with higher {column.removeprefix('data:')}, {up} ranks higher "
            f"({gain[up]:+.2f}) and {down} lower ({gain[down]:+.2f})")
    curve = rows[rows["family"] == up].groupby(column)["quality"].mean()
    return column, text, tuple(curve.index.to_numpy(float)), tuple(curve)


def _shuffled_drop(model: Pipeline, X: pd.DataFrame, y: np.ndarray, columns: list[str],
                   rows: np.ndarray, rng: np.random.Generator, n_repeats: int) -> float:
    """Return the mean drop in R² when ``columns`` are shuffled together among ``rows``."""
    base, drops = r2_score(y, model.predict(X)), []
    for _ in range(n_repeats):
        shuffled, order = X.copy(), rng.permutation(rows)
        for name in columns:
            values = X[name].to_numpy().copy()
            values[rows] = values[order]
            shuffled[name] = values
        drops.append(base - r2_score(y, model.predict(shuffled)))
    return float(np.mean(drops))


def _importances(meta: MetaModel, rows: pd.DataFrame, seed: int, n_repeats: int) -> np.ndarray:
    """Return permutation importances on the held-out blocks, weighted by their rows.

    A hyperparameter exists only for its family, so it is shuffled among the rows
    that have it, and ``family`` is shuffled together with every hyperparameter
    (else the pattern of missing hyperparameters would still give the family away).
    """
    rng, y = np.random.default_rng(seed), rows["quality"].to_numpy(float)
    X = _prepare(rows, meta.inputs, meta.categorical)
    params = [c for c in meta.inputs if c.startswith("param:")]
    total, weight = np.zeros(len(meta.inputs)), 0
    for model, block in meta.folds:
        test = rows["batch_id"].isin(block).to_numpy()
        Xt, yt = X[test].reset_index(drop=True), y[test]
        for i, name in enumerate(meta.inputs):
            has = Xt[name] != NOT_APPLICABLE if name in meta.categorical else Xt[name].notna()
            chosen = np.flatnonzero(has) if name.startswith("param:") else np.arange(len(Xt))
            group = [name, *params] if name == "family" else [name]
            if len(chosen) > 1:
                total[i] += len(Xt) * _shuffled_drop(model, Xt, yt, group, chosen, rng,
                                                     n_repeats)
        weight += len(Xt)
    return total / max(weight, 1)


def findings(meta: MetaModel, table: pd.DataFrame, seed: int = 0,
             n_repeats: int = 5) -> list[Finding]:
    """Return one finding per input, most important first (none when not fitted)."""
    if not meta.fitted:
        return []
    rows, out = _scored(table), []
    for name, importance in zip(meta.inputs, _importances(meta, rows, seed, n_repeats),
                                strict=True):
        read = (_level_reading if name in meta.categorical
                else _data_reading if name.startswith("data:") else _numeric_reading)
        label, text, x, y = read(name, rows)
        if importance < WEAK:
            text = f"no clear effect on later batches; so far {text}"
        out.append(Finding(name, float(importance), f"{label}: {text}", x,
                           tuple(float(v) for v in y)))
    return sorted(out, key=lambda f: -f.importance)


def rank_candidates(meta: MetaModel, candidates: list[dict[str, Any]],
                    batch_features: dict[str, Any]) -> list[int]:
    """Return candidate indexes, most promising first; the given order when not informative.

    >>> rank_candidates(MetaModel(False, "no data"), [{"family": "knn"}, {"family": "tree"}], {})
    [0, 1]
    """
    order = list(range(len(candidates)))
    if not meta.informative or not candidates or meta.model is None:
        return order
    data = {k if k.startswith("data:") else f"data:{k}": v for k, v in batch_features.items()}
    records = []
    for candidate in candidates:
        params = _params(candidate.get("params"))
        record = {**data, "family": candidate.get("family"),
                  "variant": candidate.get("variant") or "default"}
        for name in (n for n in meta.inputs if n.startswith("param:")):
            value = params.get(name.removeprefix("param:"), _ABSENT)
            record[name] = _category(value) if name in meta.categorical else (
                float(value) if _is_number(value) else np.nan)
        records.append(record)
    predicted = meta.model.predict(_prepare(pd.DataFrame(records), meta.inputs,
                                            meta.categorical))
    return sorted(order, key=lambda i: -predicted[i])


def explore_order(ranked: list[int], explore: float, seed: int) -> list[int]:
    """Return ``ranked`` with every ``1/explore``-th slot given to a random later candidate.

    The meta-learner only learns about what gets evaluated; a search that always runs its
    favourites first under a budget would never test the others again. The draw is seeded,
    so a fixed seed gives the same order.

    >>> explore_order([0, 1, 2, 3, 4, 5, 6, 7], 0.0, seed=1)
    [0, 1, 2, 3, 4, 5, 6, 7]
    >>> order = explore_order([0, 1, 2, 3, 4, 5, 6, 7], 0.25, seed=1)
    >>> order[:3], sorted(order) == list(range(8))
    ([0, 1, 2], True)
    """
    if explore <= 0 or len(ranked) < 2:
        return list(ranked)
    every = max(1, round(1 / explore))
    rng = np.random.default_rng(seed)
    rest, out = list(ranked), list[Any]()
    while rest:
        slot = len(out) + 1
        pick = int(rng.integers(1, len(rest))) if slot % every == 0 and len(rest) > 1 else 0
        out.append(rest.pop(pick))
    return out


def _plain(value: Any) -> Any:
    if value is None or _is_number(value):
        return float(value) if value is not None and np.isfinite(value) else None
    return str(value)


def to_json(meta: MetaModel, found: list[Finding]) -> dict[str, Any]:
    """Return the meta-model's honesty and findings as a JSON-safe dict.

    >>> to_json(MetaModel(False, "too few batches", 12, 2), [])["reason"]
    'too few batches'
    """
    return {"fitted": meta.fitted, "reason": meta.reason, "informative": meta.informative,
            "quality": "rank percentile of the candidate within its batch (1 = best)",
            "cv_r2": _plain(meta.cv_r2), "cv_top_quality": _plain(meta.cv_top_quality),
            "n_rows": meta.n_rows, "n_batches": meta.n_batches,
            "findings": [{"input": f.input, "importance": _plain(f.importance),
                          "reading": f.reading, "x": [_plain(v) for v in f.x],
                          "y": [_plain(v) for v in f.y]} for f in found]}
