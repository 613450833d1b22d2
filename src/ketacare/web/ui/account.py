"""The signed-in user's account: API tokens and two-factor sign-in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ketacare.app import users as uc
from ketacare.app.errors import InvalidInput
from ketacare.store.types import utcnow
from ketacare.web.auth import CurrentPrincipal, DbSession, State
from ketacare.web.auth import Principal as PrincipalType
from ketacare.web.state import WebState
from ketacare.web.ui.render import render

router = APIRouter(prefix="/account")
# A new key travels signed in the confirmation form until a code from it is shown.
SETUP_SECONDS = 600


def _pending(state: WebState) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(state.secret, salt="ketacare.totp-setup")


def _page(
    request: Request,
    db: DbSession,
    principal: PrincipalType,
    status_code: int = 200,
    **context: Any,
) -> Response:
    values: dict[str, Any] = {"created": None, "error": None, "setup": None, "totp_error": None}
    values.update(context)
    return render(
        request,
        "account.html",
        principal,
        status_code=status_code,
        tokens=uc.list_api_tokens(db, principal.actor),
        totp_on=uc.totp_enabled(db, principal.actor),
        **values,
    )


@router.get("")
def account(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    return _page(request, db, principal)


@router.post("/totp/setup")
def totp_setup(
    request: Request, db: DbSession, state: State, principal: CurrentPrincipal
) -> Response:
    setup = uc.totp_setup(uc.current_user(db, principal.actor))
    return _page(request, db, principal, setup=setup, pending=_pending(state).dumps(setup.secret))


@router.post("/totp/enable")
def totp_enable(
    request: Request,
    db: DbSession,
    state: State,
    principal: CurrentPrincipal,
    pending: Annotated[str, Form(max_length=500)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        secret = _pending(state).loads(pending, max_age=SETUP_SECONDS)
    except BadSignature:
        return _page(
            request, db, principal, 422, totp_error="The setup has expired; start it again."
        )
    try:
        uc.enable_totp(db, principal.actor, str(secret), code, now=utcnow())
    except InvalidInput as exc:
        setup = uc.TotpSetup(
            str(secret),
            uc.totp.grouped(str(secret)),
            uc.totp.provisioning_uri(str(secret), principal.actor.label),
        )
        return _page(
            request, db, principal, 422, setup=setup, pending=pending, totp_error=exc.message
        )
    return RedirectResponse("/account", status_code=303)


@router.post("/totp/disable")
def totp_disable(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        uc.disable_totp(db, principal.actor, principal.actor.user_id or 0, code, now=utcnow())
    except InvalidInput as exc:
        return _page(request, db, principal, 422, totp_error=exc.message)
    return RedirectResponse("/account", status_code=303)


@router.post("/tokens")
async def create_token(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    form = await request.form()
    name = form.get("name")
    created, error = None, None
    try:
        created = uc.create_api_token(db, principal.actor, name if isinstance(name, str) else "")
    except InvalidInput as exc:
        error = exc.message
    return _page(request, db, principal, 201 if created else 422, created=created, error=error)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(db: DbSession, principal: CurrentPrincipal, token_id: int) -> Response:
    uc.revoke_api_token(db, principal.actor, token_id, now=utcnow())
    return RedirectResponse("/account", status_code=303)
