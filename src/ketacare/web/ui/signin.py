"""Sign in and sign out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

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
from ketacare.web.state import WebState
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
    if optional_principal(request, state) is not None:
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


# The password step hands the code step a signed, short-lived note of who passed it.
CHALLENGE_SECONDS = 300


def _challenges(state: WebState) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(state.secret, salt="ketacare.second-factor")


def _signed_in(state: WebState, result: users.SignIn, next: str) -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        state.signer.sign(result.session_token).decode(),
        httponly=True,
        # Strict: no cross-site request, not even a link from elsewhere, carries the session.
        samesite="strict",
        secure=state.settings.cookie_secure,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


def _refused(request: Request, exc: Exception, template: str, **context: object) -> Response:
    return render(
        request,
        template,
        None,
        status_code=429 if isinstance(exc, Throttled) else 401,
        csrf=request.cookies.get(LOGIN_CSRF_COOKIE, ""),
        error=getattr(exc, "message", str(exc)),
        **context,
    )


@router.post("/login")
# The empty defaults are form fields left blank, not passwords.
def login(  # nosec B107
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
    except users.SecondFactorRequired as needed:
        return render(
            request,
            "login_code.html",
            None,
            csrf=request.cookies.get(LOGIN_CSRF_COOKIE, ""),
            next=_safe_next(next),
            challenge=_challenges(state).dumps(needed.user_id),
            error=None,
        )
    except (AuthenticationFailed, Throttled) as exc:
        return _refused(request, exc, "login.html", next=_safe_next(next), username=username)
    return _signed_in(state, result, next)


@router.post("/login/code")
def login_code(
    request: Request,
    db: DbSession,
    state: State,
    challenge: Annotated[str, Form(max_length=500)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
    next: Annotated[str, Form(max_length=500)] = "/patients",
) -> Response:
    settings = state.settings
    address = request.client.host if request.client else "unknown"
    try:
        user_id = _challenges(state).loads(challenge, max_age=CHALLENGE_SECONDS)
    except BadSignature:
        return _refused(
            request,
            AuthenticationFailed("The sign-in has expired; start again with your password."),
            "login.html",
            next=_safe_next(next),
            username="",
        )
    try:
        result = users.sign_in_second_factor(
            db,
            int(user_id),
            code,
            address=address,
            now=utcnow(),
            max_failures=settings.login_max_failures,
            window=timedelta(minutes=settings.login_window_minutes),
        )
    except (AuthenticationFailed, Throttled) as exc:
        return _refused(request, exc, "login_code.html", next=_safe_next(next), challenge=challenge)
    return _signed_in(state, result, next)


@router.post("/logout")
def logout(db: DbSession, principal: CurrentPrincipal) -> Response:
    if principal.session_id is not None:
        users.sign_out(db, principal.actor, principal.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
