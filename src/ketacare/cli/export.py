"""``ketacare export csv --deidentify``: the research tables as CSV files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ketacare.app import research_export as uc
from ketacare.app import users as users_uc
from ketacare.app.errors import InvalidInput
from ketacare.cli.common import database, fail, operator
from ketacare.config import get_settings

export_app = typer.Typer(help="Export data.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")


def _output_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        fail(f"--output: {path} is a file; give a directory for the CSV files.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--output: cannot create the directory {path} ({exc.strerror}).")
    if not os.access(path, os.W_OK):
        fail(f"--output: the directory {path} is not writable.")
    return path


@export_app.command("csv")
def export_csv(
    deidentify: Annotated[
        bool,
        typer.Option(
            "--deidentify",
            help="Required: pseudonyms instead of ids, shifted dates, no free text "
            "(docs/research-export.md).",
        ),
    ] = False,
    clinic: Annotated[str | None, typer.Option(help="Clinic short name (slug)")] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for the CSV files")
    ] = Path(),
    tables: Annotated[
        list[uc.ExportTable] | None,
        typer.Option("--table", help="Only this table (repeat for several); default: all"),
    ] = None,
) -> None:
    """Write the de-identified research tables (assessments.csv, sessions.csv)."""
    if not deidentify:
        fail("--deidentify: only de-identified exports exist; add --deidentify.")
    out = _output_dir(output)
    secret = get_settings().effective_secret_key()
    with database() as db:
        try:
            actor = operator(users_uc.find_clinic(db, clinic).id)
        except InvalidInput as exc:
            fail(f"--clinic: {exc.message}")
        for table in dict.fromkeys(tables or uc.ExportTable):
            target = out / f"{table.value}.csv"
            partial = out / f".{table.value}.csv.partial"
            try:
                with partial.open("w", newline="", encoding="utf-8") as stream:
                    count = uc.write_csv(uc.export_rows(db, actor, table, secret=secret), stream)
                # Readers never see a half-written file.
                partial.replace(target)
            finally:
                partial.unlink(missing_ok=True)
            typer.echo(f"{target}: {count} rows")
