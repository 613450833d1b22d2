"""``ketacare dose``: calculate a weight-based ketamine order (dose, volume, pump rate).

Exit codes: 0 an order, 3 refused by a hard stop (the JSON is still printed), 2 malformed input.
The command has no measured date for the weight: the weight given is taken as measured today.
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ketacare.clinical.dosing import (
    DEFAULT_PROTOCOL,
    DosingInputError,
    Order,
    calculate_order,
)
from ketacare.knowledge.protocol_defs import load_protocols

EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3


def register(app: typer.Typer) -> None:
    app.command("dose")(dose_command)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _finite(option: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        _fail(f"{option}: {value} is not a number")


def _render(order: Order) -> None:
    console = Console(soft_wrap=False)
    protocol = load_protocols()[order.protocol]
    console.print(f"[bold]{escape(protocol.name)}[/bold]")
    if order.refused:
        console.print("[bold red]REFUSED[/bold red]: this order must not be given.")
    else:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_row("Dose", f"{order.dose_mg} mg ({order.mg_per_kg} mg/kg)")
        if order.volume_ml is not None:
            table.add_row("Volume", f"{order.volume_ml} mL")
        if order.rate_ml_per_h is not None:
            table.add_row("Pump rate", f"[bold]{order.rate_ml_per_h} mL/h[/bold]")
            table.add_row("Over", f"{order.minutes} min")
        table.add_row("Dosing weight", f"{order.dosing_weight_kg} kg ({order.dosing_weight_basis})")
        console.print(table)
    if order.steps:
        console.print("\n[bold]Calculation[/bold]")
        for number, step in enumerate(order.steps, start=1):
            console.print(f"  {number}. {escape(step)}")
    for refusal in order.refusals:
        console.print(
            f"[bold red]REFUSED ({escape(refusal.field)}):[/bold red] {escape(refusal.text)} "
            f"[dim]{escape(', '.join(refusal.sources))}[/dim]"
        )
    for warning in order.warnings:
        console.print(
            f"[yellow]WARNING ({escape(warning.field)}):[/yellow] {escape(warning.text)} "
            f"[dim]{escape(', '.join(warning.sources))}[/dim]"
        )
    settings = ", ".join(f"{k}={v}" for k, v in order.settings.items() if k != "protocol")
    console.print(f"[dim]settings: {escape(settings)}[/dim]")
    console.print(f"[dim]knowledge {order.knowledge_version}[/dim]")


def dose_command(
    weight_kg: Annotated[
        float, typer.Option("--weight-kg", help="Body weight in kg, measured today.")
    ],
    mg_per_kg: Annotated[float, typer.Option("--mg-per-kg", help="Dose in mg per kg.")],
    minutes: Annotated[
        float | None,
        typer.Option("--minutes", help="Infusion time in minutes (not for an IM injection)."),
    ] = None,
    concentration_mg_per_ml: Annotated[
        float | None,
        typer.Option(
            "--concentration-mg-per-ml",
            help="Draw the dose from a solution of this strength (volume = dose / strength).",
        ),
    ] = None,
    bag_volume_ml: Annotated[
        float | None,
        typer.Option("--bag-volume-ml", help="Dilute the dose in a bag of this volume."),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option("--protocol", help="Protocol id (default: IV ketamine infusion)."),
    ] = DEFAULT_PROTOCOL,
    previous_mg_per_kg: Annotated[
        float | None,
        typer.Option("--previous-mg-per-kg", help="Previous session's dose, to check escalation."),
    ] = None,
    height_cm: Annotated[
        float | None, typer.Option("--height-cm", help="Height in cm (BMI).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the order as JSON.")] = False,
) -> None:
    """Calculate a ketamine dose, volume and pump rate, or refuse it with the reasons."""
    protocols = load_protocols()
    if protocol not in protocols:
        _fail(f"--protocol: unknown protocol {protocol!r}; choose one of {', '.join(protocols)}")
    for option, value in (
        ("--weight-kg", weight_kg),
        ("--mg-per-kg", mg_per_kg),
        ("--minutes", minutes),
        ("--concentration-mg-per-ml", concentration_mg_per_ml),
        ("--bag-volume-ml", bag_volume_ml),
        ("--previous-mg-per-kg", previous_mg_per_kg),
        ("--height-cm", height_cm),
    ):
        _finite(option, value)
    definition = protocols[protocol]
    if definition.plannable and definition.is_infusion:
        if minutes is None:
            _fail("--minutes: the infusion time is required")
        if (concentration_mg_per_ml is None) == (bag_volume_ml is None):
            _fail("give exactly one of --concentration-mg-per-ml or --bag-volume-ml")
    today = date.today()
    try:
        order = calculate_order(
            protocol,
            weight_kg,
            mg_per_kg,
            minutes,
            concentration_mg_per_ml=concentration_mg_per_ml,
            bag_volume_ml=bag_volume_ml,
            weight_measured_on=today,
            today=today,
            previous_mg_per_kg=previous_mg_per_kg,
            height_cm=height_cm,
        )
    except DosingInputError as exc:
        _fail(f"{exc.field}: {exc.message}")
    if as_json:
        typer.echo(json.dumps(order.to_json_dict(), indent=2, ensure_ascii=False))
    else:
        _render(order)
    if order.refused:
        raise typer.Exit(EXIT_REFUSED)
