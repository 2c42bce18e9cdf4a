"""The preprocessing step of every model pipeline, built from the column roles.

Numeric columns: median imputation and standard scaling. Categorical columns:
a constant level for missing values and one-hot encoding that groups rare
levels (so high-cardinality columns stay small) and ignores unseen ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from conveyor.config import PrepareConfig
from conveyor.prepare.roles import Roles


class AsCategories(TransformerMixin, BaseEstimator):
    """Turn categorical columns into object strings with ``np.nan`` for missing.

    Pandas 3 string columns, numbers used as codes and ``None`` all become the
    same representation, so imputers and encoders see one type.

    >>> AsCategories().fit_transform(pd.DataFrame({"c": ["a", None, 3]}))
    array([['a'],
           [nan],
           ['3']], dtype=object)
    """

    def fit(self, X: pd.DataFrame, y: object = None) -> AsCategories:
        self.n_features_in_ = X.shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
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

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        return np.asarray(getattr(self, "feature_names_in_", []), dtype=object)


def build_preprocessor(roles: Roles, config: PrepareConfig) -> ColumnTransformer:
    """Return an unfitted ColumnTransformer for these roles."""
    steps = []
    if roles.numeric:
        steps.append(("numeric", Pipeline([
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]), list(roles.numeric)))
    if roles.categorical:
        steps.append(("categorical", Pipeline([
            ("as_categories", AsCategories()),
            ("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
            ("one_hot", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                      min_frequency=config.min_frequency,
                                      max_categories=config.max_categories,
                                      sparse_output=False)),
        ]), list(roles.categorical)))
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)
