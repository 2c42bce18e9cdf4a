"""Names the doctests of conveyor's modules use without importing them (modules import
numpy and pandas inside their functions, so the commands that need neither start fast)."""

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict[str, object]) -> None:
    doctest_namespace.update(np=np, pd=pd)
