"""``ketacare eligibility``: assess an intake file against the programme's rules.

The intake's medicines (and recently stopped ones) are screened for interactions with the agent
and route of the planned protocol: ``--protocol``, else the file's ``planned_protocol``, else the
clinic's IV ketamine protocol; the output says which. A screen that did not run (turned off, or
failed) is the caution ``interactions_not_screened``, never "no interactions".
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from ketacare.clinical import interactions as engine
from ketacare.clinical.eligibility import (
    Decision,
    DecisionKind,
    Intake,
    IntakeError,
    assess,
    describe_validation_error,
    intake_json_schema,
)
from ketacare.knowledge.protocol_defs import ProtocolDef, load_protocols

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


@dataclass(frozen=True)
class Screened:
    """What the interaction screen gave the decision, and against what it ran."""

    protocol: ProtocolDef
    chosen_by: str  # --protocol | planned_protocol | default
    findings: list[dict[str, Any]] | None  # None: not screened
    error: str | None
    unscreened: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol.id,
            "agent": self.protocol.agent,
            "route": self.protocol.route,
            "chosen_by": self.chosen_by,
            "screened": self.findings is not None and self.error is None,
            "error": self.error,
            "unscreened": list(self.unscreened),
        }


def _protocol(option: str | None, intake: Intake) -> tuple[ProtocolDef, str]:
    protocols = load_protocols()
    if option is not None:
        if option not in protocols or not protocols[option].plannable:
            plannable = ", ".join(p.id for p in protocols.values() if p.plannable)
            _fail(f"--protocol: {option!r} is not a plannable protocol ({plannable})")
        return protocols[option], "--protocol"
    if intake.planned_protocol is not None:
        return protocols[intake.planned_protocol], "planned_protocol"
    return protocols[engine.DEFAULT_PROTOCOL], "default"


def _screen(intake: Intake, protocol: ProtocolDef, chosen_by: str, day: date) -> Screened:
    """Screen the intake's medicines for the protocol's agent and route. Any failure is kept as
    the reason the screen did not run; it is never turned into an empty list of findings."""
    stopped = [engine.StoppedMedication(m.name, m.stop_date) for m in intake.stopped_medications]
    try:
        result = engine.screen(
            intake.medications,
            agent=protocol.agent,
            route=protocol.route,
            stopped=stopped,
            as_of=day,
        )
    except Exception as exc:  # fail closed: shown as not screened, with why
        error = f"the interaction screen failed ({type(exc).__name__}: {exc})"
        typer.echo(f"warning: {error}", err=True)
        return Screened(protocol, chosen_by, None, error, ())
    findings = [f.to_json_dict() for f in result.findings]
    return Screened(protocol, chosen_by, findings, None, result.unscreened())


def _screen_line(screened: Screened) -> str:
    p = screened.protocol
    why = {"--protocol": "--protocol", "planned_protocol": "the intake's planned_protocol"}.get(
        screened.chosen_by, "default: the clinic's IV protocol"
    )
    state = "screened" if screened.findings is not None and not screened.error else "NOT screened"
    return f"Interactions {state} for {p.agent} ({p.route}), protocol {p.id} ({why})"


def _render(decision: Decision, screened: Screened) -> None:
    console = Console()
    style = DECISION_STYLE[decision.decision]
    label = decision.decision.value.replace("_", " ").upper()
    console.print(f"Decision: [{style}]{label}[/{style}]")
    console.print(_screen_line(screened), highlight=False, markup=False)
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
            help="Screen the intake's medicines for interactions; --no-interactions leaves them "
            "not screened (a caution in the decision, never 'no interactions')",
        ),
    ] = True,
    protocol: Annotated[
        str | None,
        typer.Option(
            "--protocol",
            metavar="PROTOCOL",
            help="Planned protocol whose agent and route are screened (default: the intake's "
            f"planned_protocol, else {engine.DEFAULT_PROTOCOL})",
        ),
    ] = None,
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
    planned, chosen_by = _protocol(protocol, intake)
    if interactions:
        screened = _screen(intake, planned, chosen_by, day)
    else:
        off = "screening was turned off (--no-interactions)."
        screened = Screened(planned, chosen_by, None, off, ())
    try:
        decision = assess(
            intake,
            as_of=day,
            interaction_findings=screened.findings,
            interaction_screen_error=screened.error,
            interaction_unscreened=screened.unscreened,
        )
    except IntakeError as exc:
        _fail(f"{exc.field}: {exc.message}")
    if as_json:
        out = decision.to_json_dict() | {"interaction_screen": screened.to_json_dict()}
        typer.echo(json.dumps(out, indent=2))
    else:
        _render(decision, screened)
