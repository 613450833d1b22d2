"""Monitored dosing sessions and their vital signs."""

from __future__ import annotations

from fastapi import APIRouter, status

from ketacare.app import sessions as uc
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(tags=["sessions"])


@router.post(
    "/patients/{patient_id}/sessions",
    response_model=uc.SessionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Schedule a dosing session",
)
def create_session(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: uc.SessionCreate
) -> uc.SessionOut:
    return uc.create_session(db, principal.actor, patient_id, body)


@router.get("/sessions/{session_id}", response_model=uc.SessionDetail)
def get_session(db: DbSession, principal: CurrentPrincipal, session_id: int) -> uc.SessionDetail:
    return uc.get_session(db, principal.actor, session_id)


@router.post(
    "/sessions/{session_id}/start",
    response_model=uc.SessionOut,
    summary="Pre-dose readings through the blood-pressure gate, then start",
)
def start_session(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: uc.PreCheck
) -> uc.SessionOut:
    return uc.start_session(db, principal.actor, session_id, body)


@router.post(
    "/sessions/{session_id}/vitals",
    response_model=uc.IngestResult,
    summary="Vital signs, by hand or a device batch",
    description=(
        "Plausible samples are stored; each impossible value is reported by batch index and "
        "field; samples whose sample_key was already stored are skipped; alerts are raised "
        "against the session's baseline."
    ),
)
def ingest_vitals(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: uc.VitalsBatch
) -> uc.IngestResult:
    return uc.ingest_vitals(db, principal.actor, session_id, body)
