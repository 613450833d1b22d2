"""De-identified views for researchers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ketacare.app import patients as uc
from ketacare.web.auth import CurrentPrincipal, DbSession, State

router = APIRouter(prefix="/research", tags=["research"])


@router.get("/patients", response_model=uc.DeidentifiedPage, summary="De-identified patients")
def research_patients(
    db: DbSession,
    state: State,
    principal: CurrentPrincipal,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> uc.DeidentifiedPage:
    return uc.list_deidentified(
        db,
        principal.actor,
        secret=state.secret,
        after_id=uc.decode_research_cursor(cursor),
        limit=limit,
    )
