"""`ketacare interactions DRUG...` and `ketacare knowledge docs`.

Both are pure (no database): they read the knowledge base and print or write text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ketacare.clinical.interactions import ScreenResult, screen
from ketacare.clinical.safety_rules import rule_inventory
from ketacare.knowledge.catalog import AGENTS, ROUTES, load_catalog
from ketacare.knowledge.hazard_defs import load_hazards
from ketacare.knowledge.protocol_defs import load_monitoring, load_protocols
from ketacare.knowledge.session_defs import load_session_checks
from ketacare.reports.rules_doc import render_rules_markdown
from ketacare.reports.safety_case_doc import render_safety_case_markdown
from ketacare.reports.session_rules_doc import render_session_rules_markdown

EXIT_BAD_INPUT = 2
EXIT_STALE = 1
SESSION_DOCS_NAME = "session-rules.md"
SAFETY_CASE_NAME = "safety-case.md"
DEFAULT_DOCS_PATH = Path("docs/clinical-rules.md")

SEVERITY_STYLE = {
    "contraindicated": "bold white on red",
    "major": "bold red",
    "moderate": "yellow",
    "minor": "cyan",
}

knowledge_app = typer.Typer(help="The clinical knowledge base.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("interactions")(interactions)
    app.add_typer(knowledge_app, name="knowledge")


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def interactions(
    drugs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Medications as written: generic, brand or free text.", show_default=False
        ),
    ] = None,
    agent: Annotated[
        str, typer.Option("--agent", help=f"Planned agent: {' | '.join(AGENTS)}.")
    ] = "ketamine",
    route: Annotated[
        str | None,
        typer.Option(
            "--route",
            help=f"Route: {' | '.join(ROUTES)} (default: iv for ketamine, intranasal for "
            "esketamine).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Screen a medication list for interactions with ketamine or esketamine."""
    if agent not in AGENTS:
        _fail(f"--agent must be one of {', '.join(AGENTS)} (got {agent!r})")
    if route is not None and route not in ROUTES:
        _fail(f"--route must be one of {', '.join(ROUTES)} (got {route!r})")
    entries = [d for d in drugs or [] if d.strip()]
    if not entries:
        _fail("give at least one DRUG to screen, e.g. ketacare interactions Concerta Xanax")
    result = screen(entries, agent=agent, route=route)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(result.to_json_dict(), indent=2, ensure_ascii=False))
        return
    _render(result, Console(soft_wrap=False))


def _render(result: ScreenResult, console: Console) -> None:
    console.print(
        f"Interaction screen for [bold]{result.agent}[/bold] ({result.route}), "
        f"knowledge {result.knowledge_version}"
    )
    if result.findings:
        table = Table(show_lines=True, expand=True)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Entry / ingredient", overflow="fold", ratio=2)
        table.add_column("Interaction", overflow="fold", ratio=2)
        table.add_column("Management", overflow="fold", ratio=4)
        table.add_column("Sources (evidence)", overflow="fold", ratio=1)
        numbers: dict[str, int] = {}
        for finding in result.findings:
            for source in finding.sources:
                numbers.setdefault(source, len(numbers) + 1)
        for finding in result.findings:
            style = SEVERITY_STYLE[finding.severity]
            detail = Text(finding.title, style="bold")
            if finding.conflict:
                detail.append("\n(evidence conflicts; see --json)", style="italic")
            table.add_row(
                Text(finding.severity.upper(), style=style),
                Text(f"{finding.input}\n-> {finding.ingredient}"),
                detail,
                Text(finding.management),
                " ".join(f"[{numbers[s]}]" for s in finding.sources) + f" ({finding.evidence})",
            )
        console.print(table)
        references = load_catalog().references
        console.print("[bold]Sources[/bold]")
        for source, number in numbers.items():
            console.print(f"  [{number}] {source}: {references[source].title}", highlight=False)
    else:
        console.print("No interaction found for the recognised entries.")
    if result.no_known_interaction:
        console.print("\n[bold]No known interaction[/bold] (reviewed):")
        for entry in result.no_known_interaction:
            console.print(f"  {escape(entry.input)} -> {entry.ingredient}")
    if result.not_reviewed:
        console.print(
            "\n[bold yellow]Not reviewed[/bold yellow] (recognised medicine, not in the curated "
            "table; check it yourself):"
        )
        for entry in result.not_reviewed:
            console.print(f"  {escape(entry.input)} -> {escape(entry.ingredient)}")
    if result.unrecognized:
        console.print(
            "\n[bold red]Unrecognised[/bold red] "
            "(these entries, or parts of them, were not screened):"
        )
        for item in result.unrecognized:
            what = " ".join(item.parts)
            part = f": {what!r} not recognised" if item.parts and what != item.input.strip() else ""
            hint = f" (did you mean: {', '.join(item.suggestions)}?)" if item.suggestions else ""
            console.print(f"  {escape(item.input)}{escape(part)}{escape(hint)}")
    console.print(
        "\n[dim]Checks interactions with ketamine/esketamine and the co-medication "
        "contraindications of the knowledge base (ADHD medicines and antidepressants with MAO "
        "inhibitors, several sedatives together) only; not a general drug-drug interaction "
        "checker.[/dim]"
    )


@knowledge_app.command("docs")
def knowledge_docs(
    output: Annotated[
        Path, typer.Option("--output", help="Where to write the rules document.")
    ] = DEFAULT_DOCS_PATH,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 1 if the file on disk is out of date; write nothing."),
    ] = False,
) -> None:
    """Generate the clinical rules documents from the knowledge files: the interaction rules
    (OUTPUT) and, beside it, session-rules.md (protocols, monitoring, alerts, discharge) and
    safety-case.md (the hazard log with its controls, rules and tests)."""
    references = load_catalog().references
    documents = {
        output: render_rules_markdown(load_catalog()),
        output.parent / SESSION_DOCS_NAME: render_session_rules_markdown(
            load_protocols(), load_monitoring(), references, load_session_checks()
        ),
        output.parent / SAFETY_CASE_NAME: render_safety_case_markdown(
            load_hazards(), rule_inventory(), references
        ),
    }
    if check:
        stale = [
            path
            for path, text in documents.items()
            if (path.read_text(encoding="utf-8") if path.is_file() else None) != text
        ]
        for path in stale:
            typer.echo(
                f"{path} is out of date; run: ketacare knowledge docs --output {output}", err=True
            )
        if stale:
            raise typer.Exit(EXIT_STALE)
        typer.echo(f"{', '.join(str(p) for p in documents)} up to date")
        return
    for path, text in documents.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {path}")
