"""Researcher view: de-identified patients only, and the research tables to download."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ketacare.app import patients as uc
from ketacare.web.auth import CurrentPrincipal, DbSession, State
from ketacare.web.ui.render import render

router = APIRouter(prefix="/research")


@dataclass(frozen=True)
class Export:
    label: str
    url: str
    description: str


# The API streams them; a signed-in browser may fetch them with its session.
EXPORTS = (
    Export(
        "assessments.csv",
        "/api/v1/research/export/assessments.csv",
        "one row per rating scale, in-session ratings included",
    ),
    Export(
        "sessions.csv",
        "/api/v1/research/export/sessions.csv",
        "one row per dosing session: dose, alerts, adverse events, discharge",
    ),
)


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
    return render(request, "research/patients.html", principal, page=page, exports=EXPORTS)
