"""Foundation commands: serve, demo, db upgrade, user add/token, version, patients list."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from ketacare import __version__
from ketacare.app import demo as demo_uc
from ketacare.app import outcome_summaries, synthetic
from ketacare.app import patients as patients_uc
from ketacare.app import users as users_uc
from ketacare.app.permissions import Role
from ketacare.cli.common import database, fail, operator
from ketacare.config import get_settings
from ketacare.store import migrate
from ketacare.store.db import make_engine
from ketacare.store.models import Clinic, User
from ketacare.store.types import utcnow

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
patients_app = typer.Typer(help="Patients.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(version)
    app.command()(serve)
    app.command()(demo)
    app.add_typer(db_app, name="db")
    app.add_typer(user_app, name="user")
    app.add_typer(patients_app, name="patients")


def version() -> None:
    """Print the KetaCare version."""
    typer.echo(__version__)


def _upgrade() -> str | None:
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    try:
        migrate.upgrade(engine)
        return migrate.current_revision(engine)
    finally:
        engine.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version."""
    revision = _upgrade()
    typer.echo(f"database at revision {revision}")


@db_app.command("rebuild-summaries")
def db_rebuild_summaries() -> None:
    """Recompute the dashboard's per-patient outcome summaries from the records (after a bulk
    load written straight into the tables; every use-case keeps them in step itself)."""
    with database() as db:
        outcome_summaries.rebuild(db)
        db.commit()
    typer.echo("outcome summaries rebuilt")


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes")] = 1,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
) -> None:
    """Run the web application (UI and API)."""
    import uvicorn

    settings = get_settings()
    if migrate_first:
        _upgrade()
    settings.effective_secret_key()  # fail before binding when production has no secret
    uvicorn.run(
        "ketacare.web.asgi:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )


def demo(
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve afterwards")
    ] = False,
    patients: Annotated[
        int,
        typer.Option(
            min=0,
            max=10_000_000,
            help="Also add this many synthetic patients (for load and scale tests)",
        ),
    ] = 0,
    clinics: Annotated[
        int, typer.Option(min=1, max=1000, help="Spread the synthetic patients over K clinics")
    ] = 1,
) -> None:
    """Migrate the database and load the demo clinic (safe to run again); with --patients, add
    synthetic clinics with courses, sessions, vitals and ratings, bulk inserted."""
    _upgrade()
    with database() as db:
        result = demo_uc.load_demo(db, now=utcnow())
    if patients:
        _synthetic(patients, clinics)
    console = Console()
    state = "created" if result.created else "already present, nothing added"
    console.print(f"[bold]Demo clinic[/bold] {state}: {result.patients} patients.")
    table = Table(title="Demo sign-ins (demo data only)")
    table.add_column("role")
    table.add_column("username")
    table.add_column("password")
    for role, (username, _name, password) in demo_uc.DEMO_USERS.items():
        table.add_row(role.value, username, password)
    console.print(table)
    if serve_after:
        settings = get_settings()
        console.print(f"Open http://{settings.host}:{settings.port}")
        serve(host=None, port=None, workers=1, migrate_first=False)


def _synthetic(patients: int, clinics: int) -> None:
    engine = make_engine(get_settings().effective_database_url)
    try:
        with engine.connect() as conn:
            taken = set(conn.scalars(select(Clinic.slug)))
        for k in range(clinics):
            slug = f"synthetic-{k + 1}"
            if slug in taken:
                typer.echo(f"{slug}: already present, nothing added")
                continue
            share = patients // clinics + (1 if k < patients % clinics else 0)
            began = time.perf_counter()
            filled = synthetic.fill(
                engine, patients=share, vitals_per_session=7, slug=slug, seed=7 + k
            )
            typer.echo(
                f"{slug}: {filled.patients} patients, {filled.sessions} sessions, "
                f"{filled.vitals} vital-sign samples, {filled.assessments} ratings, "
                f"{filled.alerts} alerts ({time.perf_counter() - began:.0f} s)"
            )
    finally:
        engine.dispose()


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name (lower case)")],
    role: Annotated[Role, typer.Option(help="admin, prescriber, nurse, therapist or researcher")],
    display_name: Annotated[str, typer.Option("--name", help="Full name shown in the UI")],
    clinic: Annotated[str | None, typer.Option(help="Clinic short name (slug)")] = None,
    create_clinic: Annotated[
        str | None, typer.Option(help="Create the clinic with this display name if missing")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="KETACARE_NEW_PASSWORD", help="Prompted for when not given"),
    ] = None,
) -> None:
    """Add a staff account."""
    settings = get_settings()
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with database() as db:
        if (
            create_clinic
            and clinic
            and db.scalar(select(Clinic).where(Clinic.slug == clinic)) is None
        ):
            db.add(Clinic(slug=clinic, name=create_clinic))
            db.commit()
        target = users_uc.find_clinic(db, clinic)
        try:
            data = users_uc.UserCreate(
                username=username, display_name=display_name, role=role, password=password
            )
        except ValueError as exc:
            fail(str(exc))
        created = users_uc.create_user(
            db, operator(target.id), data, min_password_length=settings.password_min_length
        )
    typer.echo(f"user {created.username} ({created.role}) added to clinic {target.slug}")


@user_app.command("token")
def user_token(
    username: Annotated[str, typer.Argument(help="The user the token acts as")],
    name: Annotated[str, typer.Option(help="What the token is for")] = "cli",
) -> None:
    """Create an API token for a user; printed once."""
    with database() as db:
        user = db.scalar(select(User).where(User.username == username.lower()))
        if user is None:
            fail(f"username: no user {username!r}")
        created = users_uc.create_api_token(db, users_uc.actor_for(user), name)
    typer.echo(created.token)


@user_app.command("totp-reset")
def user_totp_reset(
    username: Annotated[str, typer.Argument(help="The user who lost their authenticator")],
) -> None:
    """Turn two-factor sign-in off for a user (recorded in the audit trail); they sign in with
    the password alone and can set it up again on their Account page."""
    with database() as db:
        user = db.scalar(select(User).where(User.username == username.lower()))
        if user is None:
            fail(f"username: no user {username!r}")
        if not user.totp_secret:
            fail(f"username: {user.username} does not use two-factor sign-in")
        users_uc.disable_totp(db, operator(user.clinic_id), user.id, None, now=utcnow())
    typer.echo(f"two-factor sign-in turned off for {user.username}")


@patients_app.command("list")
def patients_list(
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON array of {id, mrn, name} for scripts")
    ] = False,
    clinic: Annotated[str | None, typer.Option(help="Clinic short name (slug)")] = None,
    q: Annotated[str, typer.Option(help="Name words or MRN prefix")] = "",
) -> None:
    """List patients: id, MRN, name (all pages)."""
    rows: list[patients_uc.PatientSummary] = []
    with database() as db:
        actor = operator(users_uc.find_clinic(db, clinic).id)
        cursor: str | None = None
        while True:
            page = patients_uc.list_patients(db, actor, q=q, cursor=cursor, limit=100)
            rows.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"id": p.id, "mrn": p.mrn, "name": f"{p.family_name}, {p.given_name}"}
                    for p in rows
                ],
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"{len(rows)} patients")
    for col in ("id", "MRN", "name", "stage"):
        table.add_column(col)
    for p in rows:
        table.add_row(str(p.id), p.mrn, f"{p.family_name}, {p.given_name}", p.stage.value)
    Console().print(table)
