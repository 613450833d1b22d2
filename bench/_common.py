"""What the benchmarks share: a free port for a server, and an emptied PostgreSQL database."""

from __future__ import annotations

import os
import socket

from sqlalchemy import Engine

from ketacare.store import migrate
from ketacare.store.db import make_engine

POSTGRES_ENV = "KETACARE_BENCH_POSTGRES_URL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_url(what: str) -> str:
    """The database named by KETACARE_BENCH_POSTGRES_URL; ``what`` says who needs it."""
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        raise SystemExit(f"set {POSTGRES_ENV}: {what} runs on PostgreSQL")
    return url


def empty_postgres(url: str, *, migrated: bool = True) -> Engine:
    """An engine on the database at ``url``, emptied (every table dropped) and, unless told
    otherwise, migrated to the current schema."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    if migrated:
        migrate.upgrade(engine)
    return engine
