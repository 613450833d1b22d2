"""``ketacare score``: score a rating scale from its answers."""

from __future__ import annotations

import json
import re
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from ketacare.clinical.instruments import INSTRUMENT_IDS, AnswerError, Score, instrument, score

EXIT_BAD_INPUT = 2
SEVERITY_STYLE = {"urgent": "bold red", "caution": "yellow", "info": "cyan"}


def register(app: typer.Typer) -> None:
    app.command("score")(score_command)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def parse_answers(text: str) -> list[int]:
    """ "0,1,2" -> [0, 1, 2]; a non-integer raises AnswerError naming its item number."""
    parts = [p.strip() for p in text.split(",")]
    if parts == [""]:
        raise AnswerError("answers", "no answers given")
    answers = []
    for number, part in enumerate(parts, start=1):
        try:
            answers.append(int(part))
        except ValueError:
            raise AnswerError(f"item {number}", f"{part!r} is not a whole number") from None
    return answers


def _render(result: Score) -> None:
    definition = instrument(result.instrument)
    console = Console()
    console.print(f"[bold]{definition.name}[/bold]")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("Total", f"{result.total} / {result.max}")
    table.add_row("Severity band", result.band or "none (no official bands)")
    if result.positive_screen is not None and definition.screen is not None:
        verdict = "[bold]positive[/bold]" if result.positive_screen else "negative"
        table.add_row(definition.screen.label, verdict)
    for sub in definition.subscales:
        table.add_row(sub.label, str(result.subscales[sub.id]))
    console.print(table)
    for flag in result.flags:
        where = f" (item {flag.item})" if flag.item else ""
        style = SEVERITY_STYLE.get(flag.severity, "")
        console.print(f"[{style}]{flag.severity.upper()}{where}:[/{style}] {flag.text}")
    console.print(f"[dim]knowledge {result.knowledge_version}[/dim]")


def score_command(
    instrument_id: Annotated[
        str, typer.Argument(metavar="INSTRUMENT", help=f"One of: {', '.join(INSTRUMENT_IDS)}")
    ],
    answers: Annotated[
        str, typer.Option("--answers", help="Item answers in form order, comma-separated")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the score as JSON")] = False,
) -> None:
    """Score a rating scale (ASRS v1.1, PHQ-9, GAD-7, CADSS, MOAA/S, C-SSRS screener)."""
    # Accept the printed names too: "PHQ-9", "MOAA/S", "C-SSRS".
    key = re.sub(r"[^a-z0-9]", "", instrument_id.lower())
    if key not in INSTRUMENT_IDS:
        _fail(f"unknown instrument {instrument_id!r}; choose one of {', '.join(INSTRUMENT_IDS)}")
    try:
        result = score(key, parse_answers(answers))
    except AnswerError as exc:
        _fail(f"{exc.field}: {exc.message}")
    if as_json:
        typer.echo(json.dumps(result.to_json_dict(), indent=2))
    else:
        _render(result)
