"""De-identified views for researchers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ketacare.app import patients as uc
from ketacare.app import research_export as export_uc
from ketacare.app.research_export import ExportTable
from ketacare.web.auth import CurrentPrincipal, DbSession, Principal, State
from ketacare.web.state import WebState

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


def csv_download(state: WebState, principal: Principal, table: ExportTable) -> StreamingResponse:
    """Stream one research table. The download reads through a session of its own, open for
    as long as the response is, and the permission is checked before the answer starts."""
    db = state.sessions()
    chunks = export_uc.csv_chunks(
        export_uc.export_rows(db, principal.actor, table, secret=state.secret)
    )
    try:
        header = next(chunks)
    except BaseException:
        db.close()
        raise

    def body() -> Iterator[str]:
        try:
            yield header
            yield from chunks
        finally:
            chunks.close()
            db.close()

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{table.value}.csv"'},
    )


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}


@router.get(
    "/export/assessments.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
    summary="De-identified assessments (CSV, one row per rating; docs/research-export.md)",
)
def export_assessments(state: State, principal: CurrentPrincipal) -> StreamingResponse:
    return csv_download(state, principal, ExportTable.ASSESSMENTS)


@router.get(
    "/export/sessions.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
    summary="De-identified dosing sessions (CSV, one row per session; docs/research-export.md)",
)
def export_sessions(state: State, principal: CurrentPrincipal) -> StreamingResponse:
    return csv_download(state, principal, ExportTable.SESSIONS)
