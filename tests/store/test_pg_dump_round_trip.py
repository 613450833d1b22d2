"""The PostgreSQL backup documented in docs/operations.md: pg_dump, pg_restore into an empty
database, and the same rows and the same protections come back."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from tests.conftest import PG_URL, pg_url

from ketacare.app.demo import load_demo
from ketacare.store import migrate
from ketacare.store.db import make_engine, make_session_factory
from ketacare.store.models import Base

pytestmark = pytest.mark.skipif(
    not PG_URL or not shutil.which("pg_dump"), reason="needs PostgreSQL and its client tools"
)


def _create(name: str) -> str:
    admin = make_engine(pg_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(pg_url()).set(database=name).render_as_string(hide_password=False)


def _drop(name: str) -> None:
    admin = make_engine(pg_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.scalar(text(f"SELECT count(*) FROM {t.name}"))
            for t in Base.metadata.sorted_tables
        }


def test_a_dump_restores_every_row_and_the_append_only_audit(tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    source_name, target_name = f"kc_dump_src_{suffix}", f"kc_dump_dst_{suffix}"
    try:
        source_url = _create(source_name)
        source = make_engine(source_url)
        migrate.upgrade(source)
        with make_session_factory(source)() as db:
            load_demo(db, now=datetime.now(UTC))
        dump = tmp_path / "ketacare.dump"
        subprocess.run(
            ["pg_dump", "--format=custom", f"--file={dump}", _libpq(source_url)], check=True
        )
        target_url = _create(target_name)
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={_libpq(target_url)}", str(dump)], check=True
        )
        target = make_engine(target_url)
        before = _counts(source)
        assert before["patients"] > 0 and before["audit_events"] > 0
        assert _counts(target) == before
        with target.begin() as conn, pytest.raises(DBAPIError):
            conn.execute(text("UPDATE audit_events SET action = 'forged'"))
        source.dispose()
        target.dispose()
    finally:
        _drop(source_name)
        _drop(target_name)
