"""The signed-in user's account: API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ketacare.app import users as uc
from ketacare.app.errors import InvalidInput
from ketacare.store.types import utcnow
from ketacare.web.auth import CurrentPrincipal, DbSession
from ketacare.web.ui.render import render

router = APIRouter(prefix="/account")


@router.get("")
def account(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    tokens = uc.list_api_tokens(db, principal.actor)
    return render(request, "account.html", principal, tokens=tokens, created=None, error=None)


@router.post("/tokens")
async def create_token(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    form = await request.form()
    name = form.get("name")
    created, error = None, None
    try:
        created = uc.create_api_token(db, principal.actor, name if isinstance(name, str) else "")
    except InvalidInput as exc:
        error = exc.message
    tokens = uc.list_api_tokens(db, principal.actor)
    return render(
        request,
        "account.html",
        principal,
        status_code=201 if created else 422,
        tokens=tokens,
        created=created,
        error=error,
    )


@router.post("/tokens/{token_id}/revoke")
def revoke_token(db: DbSession, principal: CurrentPrincipal, token_id: int) -> Response:
    uc.revoke_api_token(db, principal.actor, token_id, now=utcnow())
    return RedirectResponse("/account", status_code=303)
