"""What every command shares: settings, database, the local operator as actor, error exits."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from sqlalchemy.orm import Session

from ketacare.app.errors import DomainError, InvalidInput
from ketacare.app.permissions import Actor, Role
from ketacare.config import get_settings
from ketacare.store.db import make_engine, make_session_factory

EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def database() -> Iterator[Session]:
    engine = make_engine(get_settings().effective_database_url)
    db = make_session_factory(engine)()
    try:
        yield db
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.message}")
    except DomainError as exc:
        fail(exc.message, 1)
    finally:
        db.close()
        engine.dispose()


def operator(clinic_id: int) -> Actor:
    """The person at the terminal, recorded in the audit trail by their login name."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return Actor(clinic_id=clinic_id, role=Role.SYSTEM, label=f"cli:{name}"[:100])


def is_tty() -> bool:
    return sys.stdout.isatty()
