"""Researcher view: de-identified patients only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ketacare.app import patients as uc
from ketacare.web.auth import CurrentPrincipal, DbSession, State
from ketacare.web.ui.render import render

router = APIRouter(prefix="/research")


@router.get("")
def research_home(
    request: Request,
    db: DbSession,
    state: State,
    principal: CurrentPrincipal,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    page = uc.list_deidentified(
        db,
        principal.actor,
        secret=state.secret,
        after_id=uc.decode_research_cursor(cursor),
        limit=50,
    )
    return render(request, "research/patients.html", principal, page=page)
