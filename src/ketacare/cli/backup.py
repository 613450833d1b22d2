"""``ketacare backup FILE`` and ``ketacare restore FILE`` for the SQLite database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ketacare.cli.common import fail
from ketacare.config import get_settings
from ketacare.store import backup as store


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)


def _report(verb: str, info: store.BackupInfo) -> None:
    typer.echo(
        f"{verb} {info.path}: {info.bytes} bytes, schema revision {info.revision}, "
        f"{info.patients} patients, {info.audit_events} audit events; integrity check ok"
    )


def backup(
    file: Annotated[Path, typer.Argument(help="New file for the copy")],
) -> None:
    """Copy the SQLite database while the server runs (online backup), then check the copy."""
    try:
        database = store.sqlite_path(get_settings().effective_database_url)
        _report("backed up to", store.backup(database, file))
    except store.BackupError as exc:
        fail(f"{exc.field}: {exc.message}")


def restore(
    file: Annotated[Path, typer.Argument(help="A backup made by `ketacare backup`")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the current content is replaced")
    ] = False,
) -> None:
    """Replace the SQLite database with a checked backup. Stop the server first."""
    try:
        database = store.sqlite_path(get_settings().effective_database_url)
        info = store.inspect(file)
        if not yes:
            fail(
                f"--yes: restoring replaces everything in {database} with {file} "
                f"({info.patients} patients); stop the server and add --yes."
            )
        _report("restored", store.restore(file, database))
    except store.BackupError as exc:
        fail(f"{exc.field}: {exc.message}")
