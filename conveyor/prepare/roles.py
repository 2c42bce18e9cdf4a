"""Column roles: which columns are numeric or categorical features.

Roles come from the config when given, otherwise from the data's types; the
target, the time column and excluded columns are never features.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from conveyor.config import ColumnsConfig
from conveyor.errors import ConfigError


@dataclass(frozen=True)
class Roles:
    """Feature columns by kind, in a fixed order."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def without(self, dropped: set[str]) -> Roles:
        return Roles(tuple(c for c in self.numeric if c not in dropped),
                     tuple(c for c in self.categorical if c not in dropped))


def resolve_roles(frame: pd.DataFrame, columns: ColumnsConfig, target: str,
                  time_column: str) -> Roles:
    """Return the feature roles for a table shaped like ``frame``.

    >>> frame = pd.DataFrame({"t": [1], "y": [0.5], "a": [1.0], "b": ["x"], "id": [7]})
    >>> resolve_roles(frame, ColumnsConfig(exclude=["id"]), "y", "t")
    Roles(numeric=('a',), categorical=('b',))
    """
    never = {target, time_column, *columns.exclude}
    if columns.features is not None:
        missing = [c for c in columns.features if c not in frame.columns]
        if missing:
            raise ConfigError(f"columns.features names column(s) not in the data: {missing}")
        features = [c for c in columns.features if c not in never]
    else:
        features = [str(c) for c in frame.columns if c not in never]
    declared = set(columns.categorical or [])
    unknown = sorted(declared - set(features))
    if unknown:
        raise ConfigError(f"columns.categorical names non-feature column(s): {unknown}")
    categorical = [c for c in features if c in declared or (
        not _is_number(frame[c]) and not pd.api.types.is_datetime64_any_dtype(frame[c]))]
    numeric = [c for c in features if c not in categorical and _is_number(frame[c])]
    if not numeric and not categorical:
        raise ConfigError("no feature columns left; check columns.features and columns.exclude")
    return Roles(tuple(numeric), tuple(categorical))


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
