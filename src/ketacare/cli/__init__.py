"""The ``ketacare`` command line."""

from __future__ import annotations

import typer

from ketacare.cli import backup, core, dose, eligibility, export, fhir, interactions, report, scores

app = typer.Typer(
    name="ketacare",
    help="KetaCare: ketamine-assisted treatment programmes for adult ADHD.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
core.register(app)
scores.register(app)
eligibility.register(app)
interactions.register(app)
dose.register(app)
export.register(app)
report.register(app)
fhir.register(app)
backup.register(app)


def main() -> None:
    app()
