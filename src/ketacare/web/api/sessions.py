"""Monitored dosing sessions and their vital signs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from ketacare.app import point_of_care as poc
from ketacare.app import session_record as rec
from ketacare.app import sessions as uc
from ketacare.web.api.json_body import body_bytes, json_body_openapi, parse_json_body
from ketacare.web.api.responses import CHANGED, ERRORS, encoded
from ketacare.web.auth import (
    CurrentPrincipal,
    DbSession,
    LoginRequired,
    caller,
    check_api_csrf,
    web_state,
)
from ketacare.web.ids import check_ids

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
    responses=CHANGED,
    summary="Pre-dose readings through the blood-pressure gate, then start",
)
def start_session(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: uc.PreCheck
) -> uc.SessionOut:
    return uc.start_session(db, principal.actor, session_id, body)


# A device sends every few seconds for each running infusion. Its route is served in one trip
# through the thread pool: the caller, the body and the batch together, where the dependencies
# the other routes declare take two trips (the caller, then the endpoint) and FastAPI's
# dependency solving (about 2 ms a batch of 50 in process, measured). It makes the same checks,
# in the same order: who is calling (401), the CSRF header of a signed-in browser, ids in
# range, then the body (422). The body is read first, so its size is capped: a batch of 500
# samples (the most one may hold) is under 150 kB.
device_router = APIRouter(prefix="/api/v1", tags=["sessions"], responses=ERRORS)
MAX_BATCH_BYTES = 1_000_000


@device_router.post(
    "/sessions/{session_id}/vitals",
    response_model=uc.IngestResult,
    summary="Vital signs, by hand or a device batch",
    description=(
        "Plausible samples are stored; each impossible value is reported by batch index and "
        "field; samples whose sample_key was already stored are skipped; alerts are raised "
        "against the session's baseline."
    ),
    openapi_extra=json_body_openapi(uc.VitalsBatch),
    max_body_size=MAX_BATCH_BYTES,
)
async def ingest_vitals(request: Request, session_id: int) -> Response:
    body = await body_bytes(request)
    state = web_state(request)

    def ingest() -> Response:
        principal = caller(request, state)
        if principal is None:
            raise LoginRequired
        check_api_csrf(request, principal)
        check_ids(request)
        batch = parse_json_body(uc.VitalsBatch, request, body)
        with state.sessions() as db:
            return encoded(uc.ingest_vitals(db, principal.actor, session_id, batch))

    return await run_in_threadpool(ingest)


@router.get("/patients/{patient_id}/sessions", response_model=list[uc.SessionOut])
def list_sessions(
    db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> list[uc.SessionOut]:
    return uc.list_patient_sessions(db, principal.actor, patient_id)


@router.post(
    "/sessions/{session_id}/pause",
    response_model=uc.SessionOut,
    responses=CHANGED,
    summary="Pause dosing",
)
def pause_session(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: uc.ReasonIn
) -> uc.SessionOut:
    return uc.pause_session(db, principal.actor, session_id, body)


@router.post("/sessions/{session_id}/resume", response_model=uc.SessionOut, responses=CHANGED)
def resume_session(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: uc.ReasonIn
) -> uc.SessionOut:
    return uc.resume_session(db, principal.actor, session_id, body)


@router.post(
    "/sessions/{session_id}/stop",
    response_model=uc.SessionOut,
    responses=CHANGED,
    summary="Stop dosing early",
)
def stop_session(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: uc.ReasonIn
) -> uc.SessionOut:
    return uc.stop_session(db, principal.actor, session_id, body)


@router.post(
    "/sessions/{session_id}/orders",
    response_model=rec.OrderOut,
    status_code=status.HTTP_201_CREATED,
    summary="Calculate and record the dose order",
    description=(
        "The order is recorded either way: status 'ordered' with dose, volume and pump rate, or "
        "'refused' with every hard stop (a refused order cannot be given)."
    ),
)
def order_dose(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: rec.OrderRequest
) -> rec.OrderOut:
    return rec.order_dose(db, principal.actor, session_id, body)


@router.post(
    "/sessions/{session_id}/orders/{order_id}/verification",
    response_model=rec.OrderOut,
    status_code=status.HTTP_201_CREATED,
    summary="Second-person check of the order",
)
def verify_order(
    db: DbSession, principal: CurrentPrincipal, session_id: int, order_id: int
) -> rec.OrderOut:
    return rec.verify_order(db, principal.actor, session_id, order_id)


@router.post("/sessions/{session_id}/dose/start", responses=CHANGED, summary="Dosing starts")
def start_dose(db: DbSession, principal: CurrentPrincipal, session_id: int) -> dict[str, Any]:
    return rec.start_dose(db, principal.actor, session_id)


@router.post(
    "/sessions/{session_id}/dose/end",
    responses=CHANGED,
    summary="Dosing ends; observation begins",
    description=(
        "Ending before the protocol's minimum dosing time needs short_reason (422 naming it "
        "otherwise); the reason is recorded on the timeline."
    ),
)
def end_dose(
    db: DbSession,
    principal: CurrentPrincipal,
    session_id: int,
    body: rec.DoseEndIn | None = None,
) -> dict[str, Any]:
    return rec.end_dose(db, principal.actor, session_id, body)


@router.get(
    "/sessions/{session_id}/point-of-care",
    response_model=poc.PointOfCare,
    summary="Open risk flags, risk decisions and the interval since the previous dose",
)
def point_of_care(db: DbSession, principal: CurrentPrincipal, session_id: int) -> poc.PointOfCare:
    return poc.point_of_care(db, principal.actor, session_id)


@router.post(
    "/sessions/{session_id}/risk-decisions",
    response_model=poc.RiskDecisionOut,
    status_code=status.HTTP_201_CREATED,
    summary="A prescriber's decision on the open risk flags before the dose",
)
def record_risk_decision(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: poc.RiskDecisionIn
) -> poc.RiskDecisionOut:
    return poc.record_risk_decision(db, principal.actor, session_id, body)


@router.post(
    "/sessions/{session_id}/scores",
    response_model=rec.ScoreOut,
    status_code=status.HTTP_201_CREATED,
    summary="CADSS or MOAA/S rating",
)
def record_score(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: rec.SessionScoreIn
) -> rec.ScoreOut:
    return rec.record_score(db, principal.actor, session_id, body)


@router.post(
    "/sessions/{session_id}/adverse-events",
    response_model=rec.AdverseEventOut,
    status_code=status.HTTP_201_CREATED,
)
def record_adverse_event(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: rec.AdverseEventIn
) -> rec.AdverseEventOut:
    return rec.record_adverse_event(db, principal.actor, session_id, body)


@router.post("/sessions/{session_id}/alerts/{alert_id}/acknowledgement")
def acknowledge_alert(
    db: DbSession,
    principal: CurrentPrincipal,
    session_id: int,
    alert_id: int,
    body: rec.AlertAckIn,
) -> dict[str, Any]:
    return rec.acknowledge_alert(db, principal.actor, session_id, alert_id, body)


@router.post(
    "/sessions/{session_id}/alerts/acknowledgement",
    summary="Acknowledge several alerts together (those raised by one reading)",
    description=(
        "One action text for every alert named, in one transaction: an alert not in the "
        "session (404) or already acknowledged (422) refuses them all."
    ),
)
def acknowledge_alerts(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: rec.AlertsAckIn
) -> dict[str, Any]:
    return rec.acknowledge_alerts(db, principal.actor, session_id, body)


@router.post(
    "/sessions/{session_id}/discharge-check",
    summary="The discharge checklist now (nothing is stored)",
)
def discharge_check(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: rec.DischargeForm
) -> dict[str, Any]:
    return rec.discharge_preview(db, principal.actor, session_id, body)


@router.post(
    "/sessions/{session_id}/sign",
    responses=CHANGED,
    summary="Discharge and sign off: the session becomes immutable",
)
def sign_session(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: rec.SignRequest
) -> dict[str, Any]:
    return rec.sign_session(db, principal.actor, session_id, body)


@router.post(
    "/sessions/{session_id}/amendments",
    response_model=rec.AmendmentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Amend a signed session",
)
def amend_session(
    db: DbSession, principal: CurrentPrincipal, session_id: int, body: rec.AmendmentIn
) -> rec.AmendmentOut:
    return rec.amend_session(db, principal.actor, session_id, body)


@router.get("/sessions/{session_id}/record", response_model=rec.SessionRecord)
def session_record(
    db: DbSession, principal: CurrentPrincipal, session_id: int
) -> rec.SessionRecord:
    return rec.session_record(db, principal.actor, session_id)
