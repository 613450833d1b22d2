"""``ketacare eligibility``: assess an intake file against the programme's rules."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from ketacare.clinical.eligibility import (
    Decision,
    DecisionKind,
    Intake,
    IntakeError,
    assess,
    describe_validation_error,
    intake_json_schema,
)

EXIT_BAD_INPUT = 2
DECISION_STYLE = {
    DecisionKind.ELIGIBLE: "bold green",
    DecisionKind.NEEDS_REVIEW: "bold yellow",
    DecisionKind.INELIGIBLE: "bold red",
}
SEVERITY_STYLE = {"exclusion": "red", "caution": "yellow", "supporting": "green", "info": "cyan"}


def register(app: typer.Typer) -> None:
    app.command("eligibility")(eligibility_command)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _read(file: Path) -> Any:
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{file} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")


def _screen(medications: list[str]) -> list[Any]:
    """Interaction findings for the intake's medications, when the interaction engine exists."""
    if not medications:
        return []
    try:
        module = importlib.import_module("ketacare.clinical.interactions")
    except ImportError:
        return []
    screen = getattr(module, "screen", None)
    if screen is None:
        return []
    params = inspect.signature(screen).parameters
    kwargs: dict[str, Any] = {}
    if "agent" in params:
        kwargs["agent"] = "ketamine"
    if "route" in params:
        kwargs["route"] = "iv"
    try:
        result = screen(medications, **kwargs)
    except (TypeError, ValueError, LookupError) as exc:
        typer.echo(f"warning: interaction screen skipped: {exc}", err=True)
        return []
    # The engine may return findings directly or a result object that holds them.
    findings = getattr(result, "findings", result)
    return list(findings or [])


def _render(decision: Decision) -> None:
    console = Console()
    style = DECISION_STYLE[decision.decision]
    label = decision.decision.value.replace("_", " ").upper()
    console.print(f"Decision: [{style}]{label}[/{style}]")
    table = Table(show_lines=False)
    table.add_column("Severity")
    table.add_column("Reason")
    table.add_column("Sources", overflow="fold")
    for reason in decision.reasons:
        colour = SEVERITY_STYLE.get(reason.severity, "")
        table.add_row(
            f"[{colour}]{reason.severity}[/{colour}]",
            f"{reason.text}\n[dim]{reason.code}[/dim]",
            ", ".join(reason.sources),
        )
    console.print(table)
    settings = ", ".join(f"{k}={v}" for k, v in decision.settings.items())
    console.print(f"[dim]settings: {settings}[/dim]")
    console.print(f"[dim]knowledge {decision.knowledge_version}[/dim]")


def eligibility_command(
    file: Annotated[
        Path | None,
        typer.Argument(metavar="FILE.json", help="Intake file (JSON); - reads standard input"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON")] = False,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", metavar="YYYY-MM-DD", help="Assessment date (default: today)"),
    ] = None,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the JSON Schema of the intake file")
    ] = False,
    interactions: Annotated[
        bool,
        typer.Option(
            "--interactions/--no-interactions",
            help="Screen the intake's medications for interactions when the engine is available",
        ),
    ] = True,
) -> None:
    """Assess eligibility for the programme from an intake file."""
    if schema:
        typer.echo(json.dumps(intake_json_schema(), indent=2))
        return
    if file is None:
        _fail("give an intake file (FILE.json), or --schema")
    try:
        day = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date()
    except ValueError:
        _fail(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)")
    data = _read(file)
    try:
        intake = Intake.model_validate(data)
    except ValidationError as exc:
        _fail("invalid intake file:\n  " + "\n  ".join(describe_validation_error(exc)))
    findings = _screen(intake.medications) if interactions else []
    try:
        decision = assess(intake, as_of=day, interaction_findings=findings)
    except IntakeError as exc:
        _fail(f"{exc.field}: {exc.message}")
    if as_json:
        typer.echo(json.dumps(decision.to_json_dict(), indent=2))
    else:
        _render(decision)
