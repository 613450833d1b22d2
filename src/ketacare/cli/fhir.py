"""``ketacare fhir export|import``: a patient's record as a FHIR R4B Bundle, and back."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from ketacare.app import fhir as fhir_uc
from ketacare.app import fhir_import as fhir_import_uc
from ketacare.app import users as users_uc
from ketacare.app.errors import InvalidInput, NotFound
from ketacare.cli.common import database, fail, operator
from ketacare.store.types import utcnow

fhir_app = typer.Typer(help="Exchange records as FHIR Bundles.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(fhir_app, name="fhir")


# --- export --------------------------------------------------------------------------------


def _check_output(target: Path | None) -> None:
    """Refuse an unwritable destination before any patient data is read."""
    if target is None or str(target) == "-":
        return
    if target.is_dir():
        fail(f"--output: {target} is a folder; give a file name such as {target / 'record.json'}")
    if not target.parent.is_dir():
        fail(f"--output: the folder {target.parent} does not exist")


def _all_patients(bundles: Iterator[dict[str, Any]], stream: IO[str]) -> int:
    """Every patient's resources as one collection Bundle, written entry by entry (shared
    resources such as Questionnaires and Practitioners once). Returns the entry count."""
    now = utcnow().isoformat().replace("+00:00", "Z")
    head = {"resourceType": "Bundle", "type": "collection", "timestamp": now}
    stream.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "entry": [\n')
    seen: set[str] = set()
    for bundle in bundles:
        for entry in bundle["entry"]:
            if entry["fullUrl"] in seen:
                continue
            stream.write((",\n" if seen else "") + json.dumps(entry, ensure_ascii=False))
            seen.add(entry["fullUrl"])
    stream.write("\n]}\n")
    return len(seen)


def _write(target: Path | None, produce: Any) -> int:
    """Write to stdout, or to ``target`` through a temporary file so that a reader never sees
    half a Bundle. ``produce(stream)`` writes and returns the number of resources."""
    if target is None or str(target) == "-":
        count = produce(sys.stdout)
        sys.stdout.flush()
        return int(count)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as stream:
            count = produce(stream)
        partial.replace(target)
    except OSError as exc:
        fail(f"--output: cannot write {target}: {exc.strerror or exc}")
    finally:
        partial.unlink(missing_ok=True)
    return int(count)


@fhir_app.command("export")
def export_command(
    patient_id: Annotated[
        int | None,
        typer.Argument(metavar="PATIENT_ID", help="The patient's id (see: patients list)"),
    ] = None,
    all_patients: Annotated[
        bool, typer.Option("--all", help="Every patient of the clinic, in one Bundle")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here instead of stdout"),
    ] = None,
    clinic: Annotated[str | None, typer.Option(help="Clinic short name (slug)")] = None,
) -> None:
    """Export a patient's record (or, with --all, every patient's) as a FHIR R4B Bundle."""
    if (patient_id is None) == (not all_patients):
        fail("PATIENT_ID: give a patient id or --all (one of the two).")
    if patient_id is not None and patient_id < 1:
        fail(f"PATIENT_ID: {patient_id} is not a patient id (ids start at 1)")
    _check_output(output)
    with database() as db:
        try:
            actor = operator(users_uc.find_clinic(db, clinic).id)
        except InvalidInput as exc:
            fail(f"--{exc.field}: {exc.message}")
        if patient_id is not None:
            try:
                bundle = fhir_uc.export_patient(db, actor, patient_id)
            except NotFound as exc:
                fail(f"PATIENT_ID: {exc.message}")

            def one(stream: IO[str]) -> int:
                json.dump(bundle, stream, ensure_ascii=False, indent=2)
                stream.write("\n")
                return len(bundle["entry"])

            count = _write(output, one)
        else:
            bundles = fhir_uc.export_all(db, actor)
            count = _write(output, lambda stream: _all_patients(bundles, stream))
    if output is not None and str(output) != "-":
        typer.echo(f"wrote {count} resources to {output}", err=True)


# --- import --------------------------------------------------------------------------------

_OUTCOMES = ("created", "updated", "unchanged", "kept", "refused", "merged")


def _print_report(report: fhir_import_uc.ImportReport) -> None:
    typer.echo(f"Imported a {report.bundle_type} Bundle from {report.source}")
    width = max([len("resource"), *(len(k) for k in report.counts)])
    typer.echo(f"{'resource':<{width}}  " + "  ".join(f"{o:>9}" for o in _OUTCOMES))
    for kind, tally in report.counts.items():
        typer.echo(f"{kind:<{width}}  " + "  ".join(f"{getattr(tally, o):>9}" for o in _OUTCOMES))
    if report.findings:
        typer.echo(f"{len(report.findings)} findings:")
    for f in report.findings:
        typer.echo(f"  {f.severity:<7} {f.path}: {f.message} [{f.code}]")
    if not report.changed:
        typer.echo("Nothing changed.")


@fhir_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A Bundle as JSON ('-': stdin)")],
    clinic: Annotated[str | None, typer.Option(help="Clinic short name (slug)")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The report as JSON (counts, entries, findings)")
    ] = False,
) -> None:
    """Import a FHIR Bundle (transaction, batch or collection) from another system.

    Unknown codes, units and resource types are kept and listed.

    Importing the same file again changes nothing. Exit 2 when the file cannot be read.
    """
    if str(file) == "-":
        text = sys.stdin.buffer.read()
    else:
        try:
            text = file.read_bytes()
        except OSError as exc:
            fail(f"FILE: cannot read {file}: {exc.strerror or exc}")
    with database() as db:
        try:
            actor = operator(users_uc.find_clinic(db, clinic).id)
        except InvalidInput as exc:
            fail(f"--{exc.field}: {exc.message}")
        try:
            report = fhir_import_uc.import_json(db, actor, text)
        except fhir_import_uc.InvalidBundle as exc:
            lines = [f"  {i.path}: {i.message}" for i in exc.issues]
            fail(f"{file} is not a Bundle KetaCare can import:\n" + "\n".join(lines))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_report(report)
