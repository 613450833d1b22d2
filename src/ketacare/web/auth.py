"""Who is calling: a signed session cookie (browsers) or a bearer API token (scripts, devices).

Typed dependencies make scoping impossible to forget: every route that touches patient data
takes ``CurrentPrincipal`` and hands ``principal.actor`` to a use-case. The one exception is the
route devices post vitals to every few seconds: it calls :func:`caller` and
:func:`check_api_csrf` itself, in the same trip through the thread pool as its use-case
(``web/api/sessions.py``), and a test holds every API route to answering a stranger 401.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from itsdangerous import BadSignature
from sqlalchemy import Connection
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ketacare.app import users
from ketacare.app.permissions import Actor
from ketacare.store.types import utcnow
from ketacare.web.state import WebState

SESSION_COOKIE = "kc_session"
LOGIN_CSRF_COOKIE = "kc_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LoginRequired(Exception):
    """No valid session or token: the API answers 401, the UI sends the user to sign in."""


class CsrfFailed(Exception):
    """An unsafe request without the session's CSRF token."""


def web_state(request: Request) -> WebState:
    return request.app.state.web


async def get_db(request: Request) -> AsyncIterator[Session]:
    # async: creating a session does no I/O (it connects on its first statement), so opening
    # and closing it costs no trip through the thread pool. A session still holding a
    # connection (a read without commit, a failure) gives it back from a worker thread.
    db = web_state(request).sessions()
    try:
        yield db
    finally:
        if db.in_transaction():
            await run_in_threadpool(db.close)
        else:
            db.close()


async def _state(request: Request) -> WebState:
    # async: a dependency that does no I/O should not cost a trip through the thread pool.
    return web_state(request)


DbSession = Annotated[Session, Depends(get_db)]
State = Annotated[WebState, Depends(_state)]


@dataclass(frozen=True)
class Principal:
    actor: Actor
    display_name: str
    via: Literal["session", "token"]
    clinic_name: str
    tz: ZoneInfo
    session_id: int | None = None
    csrf_token: str | None = None


def _resolve(request: Request, db: Connection, state: WebState) -> Principal | None:
    now = utcnow()
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        caller = users.resolve_api_token(db, auth[7:].strip(), now=now)
        if caller is None:
            return None
        name, tz = state.clinic(db, caller.clinic_id)
        return Principal(caller.actor, caller.display_name, "token", name, tz)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        token = state.signer.unsign(cookie).decode()
    except BadSignature:
        return None
    idle = timedelta(minutes=state.settings.session_idle_minutes)
    resolved = users.resolve_session(db, token, now=now, idle=idle)
    if resolved is None:
        return None
    name, tz = state.clinic(db, resolved.user.clinic_id)
    return Principal(
        resolved.user.actor,
        resolved.user.display_name,
        "session",
        name,
        tz,
        resolved.session_id,
        resolved.csrf_token,
    )


def caller(request: Request, state: WebState) -> Principal | None:
    """Who is calling, or None; looked up once a request. Blocking: call from a worker
    thread."""
    if not hasattr(request.state, "principal"):
        # Looked up on a connection of its own, in autocommit, given back before this trip
        # through the thread pool ends. A connection held from this trip to the endpoint's
        # would wait for a free thread while every thread waits for a free connection.
        # A Core connection, not an ORM session: the lookup is a few plain statements.
        with state.autocommit.connect() as conn:
            request.state.principal = _resolve(request, conn, state)
    return request.state.principal


def optional_principal(request: Request, state: State) -> Principal | None:
    return caller(request, state)


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise LoginRequired
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a or "", b or "")


def check_api_csrf(request: Request, principal: Principal | None) -> None:
    """Cookie-authenticated API writes need the CSRF header; token-authenticated ones do not
    (a browser never attaches a bearer token on its own)."""
    if (
        request.method in UNSAFE_METHODS
        and principal is not None
        and principal.via == "session"
        and not _same(request.headers.get(CSRF_HEADER), principal.csrf_token)
    ):
        raise CsrfFailed


async def api_csrf(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> None:
    check_api_csrf(request, principal)


async def ui_csrf(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> None:
    """Every UI form carries the CSRF token (hidden field, or the header HTMX sends)."""
    if request.method not in UNSAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    expected = principal.csrf_token if principal else request.cookies.get(LOGIN_CSRF_COOKIE)
    if not _same(sent, expected):
        raise CsrfFailed


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
