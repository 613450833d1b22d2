"""Sign in and sign out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from ketacare.app import users
from ketacare.app.errors import AuthenticationFailed, Throttled
from ketacare.store.types import utcnow
from ketacare.web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentPrincipal,
    DbSession,
    State,
    new_login_csrf,
    optional_principal,
)
from ketacare.web.ui.render import render

router = APIRouter()


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect would help phishing.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/patients"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/patients", status_code=303)


@router.get("/login")
def login_page(request: Request, db: DbSession, state: State, next: str | None = None) -> Response:
    if optional_principal(request, db, state) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = render(request, "login.html", None, csrf=token, next=_safe_next(next), error=None)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=state.settings.cookie_secure,
        max_age=3600,
    )
    return response


@router.post("/login")
def login(
    request: Request,
    db: DbSession,
    state: State,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "/patients",
) -> Response:
    settings = state.settings
    address = request.client.host if request.client else "unknown"
    try:
        result = users.sign_in(
            db,
            username,
            password,
            address=address,
            now=utcnow(),
            max_failures=settings.login_max_failures,
            window=timedelta(minutes=settings.login_window_minutes),
        )
    except (AuthenticationFailed, Throttled) as exc:
        status = 429 if isinstance(exc, Throttled) else 401
        return render(
            request,
            "login.html",
            None,
            status_code=status,
            csrf=request.cookies.get(LOGIN_CSRF_COOKIE, ""),
            next=_safe_next(next),
            error=exc.message,
            username=username,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        state.signer.sign(result.session_token).decode(),
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(db: DbSession, principal: CurrentPrincipal) -> Response:
    if principal.session_id is not None:
        users.sign_out(db, principal.actor, principal.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
