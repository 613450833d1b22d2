"""Migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from tests.conftest import BACKENDS, pg_url

from ketacare.store import migrate
from ketacare.store.db import make_engine
from ketacare.store.models import AuditEvent, Base, Clinic
from ketacare.store.types import utcnow


@pytest.fixture(params=BACKENDS)
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    # A database of its own so the shared test database stays migrated.
    admin = make_engine(pg_url(), isolation_level="AUTOCOMMIT")
    name = f"{admin.url.database}_mig"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = make_engine(admin.url.set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def test_upgrade_from_empty_reaches_head_and_matches_the_models(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    tables = set(inspect(empty_engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    with empty_engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_upgrade_twice_is_harmless(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()


def test_the_database_refuses_to_change_or_delete_audit_events(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            AuditEvent.__table__.insert().values(
                at=utcnow(), actor="x", action="patient.view", outcome="success"
            )
        )
    for statement in ("UPDATE audit_events SET outcome = 'denied'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT outcome FROM audit_events")).scalar_one() == "success"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO users (clinic_id, username, display_name, role, password_hash, active, "
            "created_at) VALUES (999, 'ghost', 'G', 'nurse', 'x', true, CURRENT_TIMESTAMP)"
        )


def test_times_come_back_timezone_aware_utc(engine: Engine) -> None:
    from ketacare.store.db import make_session_factory

    with make_session_factory(engine)() as db:
        db.add(Clinic(slug="tz", name="TZ"))
        db.commit()
    with make_session_factory(engine)() as db:
        clinic = db.query(Clinic).one()
        assert clinic.created_at.utcoffset() is not None
        assert clinic.created_at.utcoffset().total_seconds() == 0
