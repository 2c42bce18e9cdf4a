"""The whole pipeline with its metadata in a real PostgreSQL server (store.url)."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.store import Store
from tests.e2e_helpers import inference_sample, write_config, write_flights_slice

pytestmark = pytest.mark.skipif(not os.environ.get("CONVEYOR_TEST_POSTGRES_URL"),
                                reason="needs CONVEYOR_TEST_POSTGRES_URL (set by .ci/run)")


@pytest.fixture()
def database():
    admin = sa.create_engine(os.environ["CONVEYOR_TEST_POSTGRES_URL"],
                             isolation_level="AUTOCOMMIT")
    name = f"conveyor_e2e_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def test_update_inference_summary_on_postgresql(tmp_path, database):
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path, store={"url": database}))
    results = [pipeline.update(config) for _ in range(3)]
    assert all(r.ok for r in results), [r.message for r in results]
    assert not (config.workspace / "conveyor.db").exists()  # nothing went to SQLite
    store = Store.open(database)
    try:
        assert store.engine.dialect.name == "postgresql"
        batches = store.frame("batches")
        assert batches["window_index"].tolist() == [0, 1, 2]
        assert (store.frame("models")["stage"] == "production").sum() == 1
        assert set(store.frame("drift")["role"]) >= {"feature", "target"}
        evaluations = store.frame("evaluations")
        assert evaluations.groupby("batch_id")["chosen"].sum().tolist() == [1, 1, 1]
    finally:
        store.close()
    output = pipeline.inference(config, inference_sample(tmp_path))
    assert np.isfinite(pd.read_csv(output)["predict"]).all()
    assert pipeline.summary(config).is_file()
