"""Schema migrations: a workspace written by schema version 1 opens, upgrades and keeps its rows."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from conveyor.store import Store
from conveyor.store.schema import SCHEMA_VERSION
from tests.store import schema_v1


def _v1_database(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        schema_v1.metadata.create_all(conn)
        conn.execute(sa.insert(schema_v1.meta).values(key="schema_version", value="1"))
        conn.execute(sa.insert(schema_v1.batches).values(
            id=1, window_index=0, window_start="2013-01-01", window_end="2013-01-08", rows=10,
            rows_with_target=9, sha256="a" * 64, path="raw/batch-000000.parquet",
            status="accepted", ingested_at="2026-01-01T00:00:00+00:00"))
        conn.execute(sa.insert(schema_v1.models).values(
            version=1, family="linear", params={"alpha": 1.0}, stage="production",
            path="models/v000001", sha256="b" * 64, size_bytes=100, batch_ids=[1],
            window_start="2013-01-01", window_end="2013-01-08", train_rows=9,
            metrics={"holdout": {"mae": 1.0}}, config_hash="c" * 16, libraries={},
            train_seconds=0.1, created_at="2026-01-01T00:00:00+00:00"))
        conn.execute(sa.insert(schema_v1.evaluations).values(
            batch_id=1, family="linear", params={"alpha": 1.0}, scheme="holdout", metric="mae",
            score=1.0, metrics={"mae": 1.0}, fit_seconds=0.1, predict_seconds=0.01, chosen=1))
        conn.execute(sa.insert(schema_v1.events).values(
            at="2026-01-01T00:00:00+00:00", kind="promotion", batch_id=1, version=1,
            message="first model"))
        for batch_id in (1, 3, 2):  # the newest reset is the one with the largest batch id
            conn.execute(sa.insert(schema_v1.events).values(
                at="2026-01-01T00:00:00+00:00", kind="window_reset", batch_id=batch_id,
                message="train on the newest batch only"))
    engine.dispose()


def _check_upgraded(url: str) -> None:
    store = Store.open(url)
    try:
        version = store.frame("meta").set_index("key").loc["schema_version", "value"]
        assert int(version) == SCHEMA_VERSION == 4
        assert store.window_anchor() == 3  # carried over from the window_reset events
        assert store.production_history() == [("promotion", 1)]  # history from promotions
        assert store.first_production()["version"] == 1
        model = store.model(1)
        assert model["family"] == "linear" and model["params"] == {"alpha": 1.0}
        assert model["stage"] == "production" and model["batch_ids"] == [1]
        assert model["variant"] is None and model["strategy"] is None  # new, empty columns
        evaluations = store.frame("evaluations")
        assert evaluations["score"].tolist() == [1.0] and "variant" in evaluations
        assert evaluations["rung"].isna().all() and "train_rows" in evaluations
        assert store.batch(1)["sha256"] == "a" * 64
        with store.transaction() as conn:  # the new columns take values
            store.insert_rows(conn, "evaluations", [{
                "batch_id": 1, "family": "hgb", "variant": "native", "params": {},
                "scheme": "holdout", "metric": "mae", "score": 0.5, "metrics": {},
                "fit_seconds": 0.0, "predict_seconds": 0.0, "chosen": 0, "train_rows": 900,
                "rung": 1}])
        variants = store.frame("evaluations")["variant"]
        assert variants.isna().tolist() == [True, False] and variants.iloc[1] == "native"
        assert store.frame("evaluations")["rung"].tolist()[1] == 1
    finally:
        store.close()
    Store.open(url).close()  # opening an up-to-date database again changes nothing


def test_sqlite_workspace_from_schema_v1_upgrades(tmp_path):
    url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    _v1_database(url)
    _check_upgraded(url)


def test_newer_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    Store.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    engine.dispose()
    with pytest.raises(Exception, match="schema version 99, newer than this conveyor"):
        Store.open(url)


@pytest.mark.skipif(not os.environ.get("CONVEYOR_TEST_POSTGRES_URL"),
                    reason="needs CONVEYOR_TEST_POSTGRES_URL (set by .ci/run)")
def test_postgresql_store_from_schema_v1_upgrades():
    admin = sa.create_engine(os.environ["CONVEYOR_TEST_POSTGRES_URL"],
                             isolation_level="AUTOCOMMIT")
    name = f"conveyor_mig_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        _v1_database(url)
        _check_upgraded(url)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()
