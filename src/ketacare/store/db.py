"""Engine and session factory: SQLite (WAL, foreign keys on) by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Row, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL makes NORMAL durable across application crashes; a power loss may lose the last
    # transactions but never corrupts the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: use-cases return ORM-loaded values after their commit.
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def insert_new(
    db: Session, table: Table, rows: list[dict[str, Any]], *, returning: tuple[str, ...]
) -> list[Row[Any]]:
    """Insert ``rows``, silently skipping those that collide with a unique constraint, and
    return the given columns of the rows actually inserted. One statement, atomic against a
    concurrent insert of the same keys (ON CONFLICT DO NOTHING on SQLite and PostgreSQL)."""
    if not rows:
        return []
    dialect = db.get_bind().dialect.name
    build = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    stmt = build(table).on_conflict_do_nothing()
    stmt = stmt.returning(*(table.c[name] for name in returning))
    return list(db.execute(stmt, rows))
