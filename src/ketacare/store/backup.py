"""Copies of a SQLite database taken while it is in use, checked before they are trusted.

SQLite's online backup API copies the database page by page under its own locking, so a copy
taken while the server writes is a consistent snapshot (never a half-written file, unlike
copying the file and its WAL by hand). PostgreSQL is backed up with its own tools (pg_dump,
or base backups with WAL archiving): see docs/operations.md.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(ValueError):
    """A backup or restore that cannot be done, with the argument at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    bytes: int
    revision: str
    patients: int
    audit_events: int


def sqlite_path(url: str) -> Path:
    """The database file of a SQLite URL; other databases have their own backup tools."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(
            "database",
            f"{parsed.get_backend_name()} is backed up with its own tools (pg_dump or base "
            "backups); see docs/operations.md, 'Backups'.",
        )
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("database", "an in-memory database has nothing to back up.")
    return Path(parsed.database)


def inspect(path: Path) -> BackupInfo:
    """Open a copy read-only and check it: the file's integrity, a KetaCare schema revision,
    and what it holds."""
    if not path.is_file():
        raise BackupError("file", f"{path} does not exist.")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError("file", f"{path} cannot be opened as a database ({exc}).") from None
    try:
        try:
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            raise BackupError("file", f"{path} is not a SQLite database ({exc}).") from None
        if check != "ok":
            raise BackupError("file", f"{path} failed the integrity check: {check}.")
        if not {"alembic_version", "patients", "audit_events"} <= tables:
            raise BackupError("file", f"{path} is not a KetaCare database (tables missing).")
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        patients = conn.execute("SELECT count(*) FROM patients").fetchone()[0]
        audit = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    finally:
        conn.close()
    return BackupInfo(path, path.stat().st_size, revision[0] if revision else "", patients, audit)


def _copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def backup(database: Path, target: Path) -> BackupInfo:
    """Copy a live database to ``target`` (a new file) and check the copy."""
    if not database.is_file():
        raise BackupError("database", f"{database} does not exist: nothing to back up.")
    if target.exists():
        raise BackupError("file", f"{target} exists; choose a new file name.")
    if not target.parent.is_dir():
        raise BackupError("file", f"the directory {target.parent} does not exist.")
    partial = target.with_name(f".{target.name}.partial")
    try:
        _copy(database, partial)
        info = inspect(partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(target, info.bytes, info.revision, info.patients, info.audit_events)


def restore(source: Path, database: Path) -> BackupInfo:
    """Replace the database's content with a checked backup. Stop the server first: a
    running server would go on with connections to the replaced content."""
    info = inspect(source)
    database.parent.mkdir(parents=True, exist_ok=True)
    _copy(source, database)
    return BackupInfo(
        database, database.stat().st_size, info.revision, info.patients, info.audit_events
    )
