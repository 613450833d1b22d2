"""``ketacare report``: a patient's progress report, or information sheet, as a PDF file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ketacare.app import reports as reports_uc
from ketacare.app import users as users_uc
from ketacare.app.errors import InvalidInput, NotFound
from ketacare.cli.common import database, fail, operator


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)


def _check_target(target: Path) -> None:
    """Refuse an unwritable destination before any patient data is read."""
    if str(target) == "-":
        return
    if target.is_dir():
        fail(f"--pdf: {target} is a folder; give a file name such as {target / 'report.pdf'}")
    if not target.parent.is_dir():
        fail(f"--pdf: the folder {target.parent} does not exist")


def report_command(
    patient_id: Annotated[
        int, typer.Argument(metavar="PATIENT_ID", help="The patient's id (see: patients list)")
    ],
    pdf: Annotated[
        Path,
        typer.Option("--pdf", metavar="FILE", help="Where to write the PDF; - writes to stdout"),
    ],
    sheet: Annotated[
        bool,
        typer.Option(
            "--sheet", help="The patient information sheet instead of the progress report"
        ),
    ] = False,
    clinic: Annotated[str | None, typer.Option(help="Clinic short name (slug)")] = None,
) -> None:
    """Write a patient's progress report (or, with --sheet, the information sheet) as PDF."""
    if patient_id < 1:
        fail(f"PATIENT_ID: {patient_id} is not a patient id (ids start at 1)")
    _check_target(pdf)
    with database() as db:
        try:
            actor = operator(users_uc.find_clinic(db, clinic).id)
        except InvalidInput as exc:
            fail(f"--{exc.field}: {exc.message}")
        try:
            data = (
                reports_uc.patient_sheet(db, actor, patient_id)
                if sheet
                else reports_uc.progress_report(db, actor, patient_id)
            )
        except NotFound as exc:
            fail(f"PATIENT_ID: {exc.message}")
    what = "information sheet" if sheet else "progress report"
    if str(pdf) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        pdf.write_bytes(data)
    except OSError as exc:
        fail(f"--pdf: cannot write {pdf}: {exc.strerror or exc}")
    typer.echo(f"wrote the {what} of patient {patient_id} to {pdf} ({len(data) // 1024} KiB)")
