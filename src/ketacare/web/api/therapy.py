"""Psychotherapy (CBT) sessions and the therapist's structured note."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from ketacare.app import therapy as uc
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(tags=["therapy"])

STALE = {409: {"description": "Stale version: reload and apply the change again"}}


@router.post(
    "/patients/{patient_id}/therapy-sessions",
    response_model=uc.TherapyOut,
    status_code=status.HTTP_201_CREATED,
    summary="Schedule an ad-hoc therapy session",
    description=(
        "Optionally following one of the patient's dosing sessions; the window status says "
        "whether it falls inside the clinic's CBT window after that infusion."
    ),
)
def schedule_therapy(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: uc.TherapyCreate
) -> uc.TherapyOut:
    return uc.schedule_therapy(db, principal.actor, patient_id, body)


@router.get(
    "/patients/{patient_id}/therapy-sessions",
    response_model=list[uc.TherapyEntry],
    summary="The patient's therapy sessions (note in force, with earlier versions)",
)
def list_patient_therapy(
    db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> list[uc.TherapyEntry]:
    return uc.list_patient_therapy(db, principal.actor, patient_id)


@router.get(
    "/therapy-sessions",
    response_model=uc.WorklistPage,
    summary="Worklist: unsigned sessions today and the next 7 days, plus overdue ones",
)
def worklist(
    db: DbSession,
    principal: CurrentPrincipal,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> uc.WorklistPage:
    return uc.worklist(db, principal.actor, cursor=cursor, limit=limit)


@router.get("/therapy-sessions/{therapy_id}", response_model=uc.TherapyDetail)
def get_therapy(db: DbSession, principal: CurrentPrincipal, therapy_id: int) -> uc.TherapyDetail:
    return uc.get_therapy(db, principal.actor, therapy_id)


@router.put(
    "/therapy-sessions/{therapy_id}/note",
    response_model=uc.TherapyOut,
    summary="Save the draft note",
    responses=STALE,
)
def save_note(
    db: DbSession, principal: CurrentPrincipal, therapy_id: int, body: uc.NoteUpdate
) -> uc.TherapyOut:
    return uc.save_note(db, principal.actor, therapy_id, body)


@router.post(
    "/therapy-sessions/{therapy_id}/sign",
    response_model=uc.TherapyOut,
    summary="Sign the saved note (it can no longer change)",
    responses=STALE,
)
def sign_note(
    db: DbSession, principal: CurrentPrincipal, therapy_id: int, body: uc.SignIn
) -> uc.TherapyOut:
    return uc.sign_note(db, principal.actor, therapy_id, body)


@router.post(
    "/therapy-sessions/{therapy_id}/amendments",
    response_model=uc.TherapyOut,
    status_code=status.HTTP_201_CREATED,
    summary="Amend a signed note (a new signed row; the amended one stays)",
    responses={409: {"description": "Already amended: amend the latest version"}},
)
def amend_note(
    db: DbSession, principal: CurrentPrincipal, therapy_id: int, body: uc.AmendmentIn
) -> uc.TherapyOut:
    return uc.amend_note(db, principal.actor, therapy_id, body)


@router.post(
    "/therapy-sessions/{therapy_id}/cancel",
    response_model=uc.TherapyOut,
    summary="Mark an unsigned session missed or cancelled, with the reason",
    responses=STALE,
)
def cancel_session(
    db: DbSession, principal: CurrentPrincipal, therapy_id: int, body: uc.CancelIn
) -> uc.TherapyOut:
    return uc.cancel_session(db, principal.actor, therapy_id, body)
