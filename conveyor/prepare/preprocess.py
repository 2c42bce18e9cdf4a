"""The preprocessing step of every model pipeline, built from the column roles.

A *variant* (``prepare.variants`` in the config) says how numbers are imputed
and scaled and how categories are encoded:

- ``onehot``: median imputation, standard scaling, one-hot encoding that groups
  rare levels (so high-cardinality columns such as a tail number stay small)
  and ignores unseen ones; for models that need complete, scaled input.
- ``robust``: median imputation plus missing-value indicators, median/IQR
  scaling, cross-fitted target encoding (a high-cardinality column becomes
  one informative number instead of many sparse ones).
- ``native``: numbers as they are (NaN kept), categories as ordinal codes
  declared categorical; for tree ensembles that handle both themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    OneHotEncoder,
    OrdinalEncoder,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
    TargetEncoder,
)

from conveyor.config import PrepareConfig, VariantConfig
from conveyor.errors import ConfigError
from conveyor.prepare.roles import Roles


class _ColumnwiseText(TransformerMixin, BaseEstimator):
    """A categorical step that maps each column to a column of the same name."""

    def _remember_columns(self, X: Any, n_columns: int) -> None:
        self.n_features_in_ = n_columns
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        return np.asarray(getattr(self, "feature_names_in_", []), dtype=object)


class AsCategories(_ColumnwiseText):
    """Turn categorical columns into object strings with ``np.nan`` for missing.

    Pandas 3 string columns, numbers used as codes and ``None`` all become the
    same representation, so imputers and encoders see one type.

    >>> AsCategories().fit_transform(pd.DataFrame({"c": ["a", None, 3]}))
    array([['a'],
           [nan],
           ['3']], dtype=object)
    """

    def fit(self, X: pd.DataFrame, y: object = None) -> AsCategories:
        self._remember_columns(X, X.shape[1])
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = np.empty(frame.shape, dtype=object)
        for j in range(frame.shape[1]):
            column = frame.iloc[:, j]
            missing = column.isna().to_numpy()
            values = column.astype(object).to_numpy()
            out[:, j] = [np.nan if m else str(v) for v, m in zip(values, missing, strict=True)]
        return out


class RareLevels(_ColumnwiseText):
    """Group the levels of each categorical column seen fewer than ``min_frequency``
    times, or beyond the ``max_categories - 1`` most frequent, into one level
    :attr:`OTHER`; levels never seen in training join it too. Missing values stay
    missing.

    scikit-learn's encoders can do this themselves (``min_frequency``,
    ``max_categories``) but count text values one at a time in Python, which was most
    of a linear model's fit on the demo window; pandas counts them in C. The encoder
    after it then only maps levels to columns or codes.

    >>> frame = pd.DataFrame({"c": ["a", "a", "b", "a", "b", "z", None]})
    >>> RareLevels(min_frequency=2).fit(frame).transform(frame).ravel().tolist()
    ['a', 'a', 'b', 'a', 'b', '(other)', nan]
    >>> RareLevels(max_categories=2).fit(frame).transform(
    ...     pd.DataFrame({"c": ["b", "q"]})).ravel().tolist()
    ['(other)', '(other)']
    """

    OTHER = "(other)"

    def __init__(self, min_frequency: int = 1, max_categories: int | None = None) -> None:
        self.min_frequency = min_frequency
        self.max_categories = max_categories

    def fit(self, X: Any, y: object = None) -> RareLevels:
        frame = pd.DataFrame(X)
        self._remember_columns(X, frame.shape[1])
        self.levels_ = []
        for j in range(frame.shape[1]):
            counts = frame.iloc[:, j].value_counts(dropna=True)
            # least frequent first, ties by level (scikit-learn's order): when there are
            # too many levels, the last max_categories - 1 are kept and OTHER is the rest
            ranked = sorted((int(n), str(level)) for level, n in counts.items()
                            if n >= self.min_frequency)
            if self.max_categories is not None and self.max_categories <= len(ranked):
                ranked = ranked[len(ranked) - self.max_categories + 1:]
            self.levels_.append(sorted(level for _, level in ranked))
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = np.empty(frame.shape, dtype=object)
        for j, levels in enumerate(self.levels_):
            column = frame.iloc[:, j]
            out[:, j] = column.where(column.isin(levels) | column.isna(), self.OTHER)
        return out


NATIVE_MAX_LEVELS = 250  # histogram gradient boosting takes at most 255 bins per feature


def _numeric(variant: VariantConfig) -> Pipeline | str:
    steps: list[tuple[str, Any]] = []
    if variant.numeric_impute != "none":
        steps.append(("impute", SimpleImputer(strategy=variant.numeric_impute,
                                              add_indicator=variant.missing_indicators,
                                              keep_empty_features=True)))
    scaler = {"standard": StandardScaler(), "robust": RobustScaler(),
              "quantile": QuantileTransformer(output_distribution="normal", n_quantiles=200,
                                              subsample=100_000, random_state=0),
              "none": None}[variant.scale]
    if scaler is not None:
        steps.append(("scale", scaler))
    return Pipeline(steps) if steps else "passthrough"


def _categorical(variant: VariantConfig, config: PrepareConfig, task: str) -> Pipeline:
    steps: list[tuple[str, Any]] = [("as_categories", AsCategories())]
    if variant.categorical == "native":
        steps += [("rare", RareLevels(config.min_frequency, NATIVE_MAX_LEVELS)),
                  ("ordinal", OrdinalEncoder(handle_unknown="use_encoded_value",
                                             unknown_value=np.nan,
                                             encoded_missing_value=np.nan))]
        return Pipeline(steps)
    steps.append(("impute", SimpleImputer(strategy="constant", fill_value="(missing)")))
    if variant.categorical == "onehot":
        steps += [("rare", RareLevels(config.min_frequency, config.max_categories)),
                  ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]
    elif variant.categorical == "ordinal":
        steps += [("rare", RareLevels(config.min_frequency)),
                  ("ordinal", OrdinalEncoder(handle_unknown="use_encoded_value",
                                             unknown_value=-1))]
    else:
        # integer-valued regression targets would look like classes to "auto"
        target_type = "continuous" if task == "regression" else "auto"
        steps.append(("target", TargetEncoder(target_type=target_type,
                                              cv=KFold(5))))  # unshuffled: time order
        if variant.scale != "none":  # encoded values are in target units: scale them too
            steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def build_preprocessor(roles: Roles, config: PrepareConfig, variant: str = "onehot",
                       task: str = "regression") -> ColumnTransformer:
    """Return an unfitted ColumnTransformer for these roles and variant.

    Categorical columns come first in the output, so a model can be told
    which leading columns are categories (see :func:`categorical_indices`).

    >>> ct = build_preprocessor(Roles(("a",), ("b",)), PrepareConfig(), "native")
    >>> [name for name, _, _ in ct.transformers]
    ['categorical', 'numeric']
    """
    try:
        spec = config.variants[variant]
    except KeyError:
        raise ConfigError(f"unknown preprocessing variant '{variant}'; defined in "
                          f"prepare.variants: {sorted(config.variants)}") from None
    steps = []
    if roles.categorical:
        steps.append(("categorical", _categorical(spec, config, task), list(roles.categorical)))
    if roles.numeric:
        steps.append(("numeric", _numeric(spec), list(roles.numeric)))
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)


def categorical_indices(roles: Roles, config: PrepareConfig, variant: str) -> list[int] | None:
    """Output columns a native-categorical model must treat as categories, else None."""
    if config.variants[variant].categorical != "native" or not roles.categorical:
        return None
    return list(range(len(roles.categorical)))
