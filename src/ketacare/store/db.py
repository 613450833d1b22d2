"""Engine and session factory: SQLite (WAL, foreign keys on) by default, PostgreSQL by URL."""

from __future__ import annotations

import time
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Engine, Table, TextClause, create_engine, event, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator, TypeEngine


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
    # Errors and logs show statements without their values: those can be patient data, password
    # hashes or token hashes.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


# A pooled connection back within this many seconds is used without a ping: under load every
# checkout would otherwise cost one more round trip (SQLAlchemy's pool_pre_ping pings always).
IDLE_PING_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection that sat idle, so a restarted or failed-over server costs a
    reconnect, not an error: the pool discards the connection and checks out another."""

    def connected(_dbapi: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_in(_dbapi: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < IDLE_PING_SECONDS:
            return
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi, None):
                raise DisconnectionError("the pooled connection was closed") from exc
            raise

    event.listen(engine, "connect", connected)
    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: use-cases return ORM-loaded values after their commit.
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


# PostgreSQL type for a column's Python type, for reading a batch out of JSON.
_PG_TYPE = {int: "int8", float: "float8", str: "text", bool: "bool", datetime: "timestamptz"}


def _python_type(column_type: TypeEngine[Any]) -> type:
    impl = column_type.impl if isinstance(column_type, TypeDecorator) else column_type
    return impl.python_type


@cache
def _pg_insert_new(
    table: Table, names: tuple[str, ...], same: tuple[str, ...], returning: tuple[str, ...]
) -> TextClause:
    # Built once per shape: a device sends the same shape every few seconds.
    def pg_type(name: str) -> str:
        return _PG_TYPE[_python_type(table.c[name].type)]

    columns = ", ".join(f"{n} {pg_type(n)}" for n in names)
    values = [f"CAST(:same_{n} AS {pg_type(n)})" for n in same] + [f"r.{n}" for n in names]
    return text(
        f"WITH inserted AS (INSERT INTO {table.name} ({', '.join(same + names)}) "  # noqa: S608 (names from the table, values bound)  # nosec B608
        f"SELECT {', '.join(values)} FROM json_to_recordset(CAST(:rows AS json)) "
        f"AS r({columns}) ON CONFLICT DO NOTHING RETURNING {', '.join(returning)}) "
        f"SELECT {', '.join(f'array_agg({n})' for n in returning)} FROM inserted"
    )


def insert_new(
    db: Session,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    returning: tuple[str, ...],
    same: dict[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (all with the same keys), each completed by the values in ``same``
    (those every row shares), silently skipping those that collide with a unique constraint,
    and return the given columns of the rows actually inserted. One statement, atomic against
    a concurrent insert of the same keys (ON CONFLICT DO NOTHING).

    On PostgreSQL the rows travel as one JSON document read by ``json_to_recordset``
    (encoded by pydantic-core, far cheaper than one parameter per value; the shared values
    travel once, as parameters), and what was inserted comes back as one row of arrays (one
    array per column): fetching a row per sample costs the driver more than the insert costs
    the server."""
    if not rows:
        return []
    same = same or {}
    if db.get_bind().dialect.name == "postgresql":
        statement = _pg_insert_new(table, tuple(rows[0]), tuple(same), returning)
        params = {f"same_{name}": value for name, value in same.items()}
        params["rows"] = to_json(rows).decode()
        arrays = db.connection().execute(statement, params).one()
        return list(zip(*arrays, strict=True)) if arrays[0] is not None else []
    stmt = sqlite.insert(table).on_conflict_do_nothing()
    stmt = stmt.returning(*(table.c[name] for name in returning))
    return [tuple(row) for row in db.connection().execute(stmt, [{**same, **r} for r in rows])]
