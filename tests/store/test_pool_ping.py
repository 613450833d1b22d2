"""Pooled PostgreSQL connections: one that sat idle is pinged before use, so a server that
closed it costs a reconnect, not an error; one back from a request moments ago is not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from tests.conftest import PG_URL, pg_url

from ketacare.store import db as store_db
from ketacare.store.db import make_engine

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL")


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = make_engine(pg_url(), pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_backend_pid()")))


def _terminate(pid: int) -> None:
    admin = make_engine(pg_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_an_idle_connection_closed_by_the_server_is_replaced_without_an_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(engine)
    _terminate(first)
    monkeypatch.setattr(store_db, "IDLE_PING_SECONDS", 0.0)  # every checkout counts as idle
    second = _backend_pid(engine)
    assert second != first


def test_a_connection_back_moments_ago_is_used_without_a_ping(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(engine)
    _terminate(first)
    monkeypatch.setattr(store_db, "IDLE_PING_SECONDS", 3600.0)
    # No ping: the dead connection reaches the statement, which fails ...
    with pytest.raises(OperationalError):
        _backend_pid(engine)
    # ... and the pool, told of the disconnect, hands out a fresh one next.
    assert _backend_pid(engine) not in (first, 0)
