"""Intake, eligibility and its signed review, consent, rating scales and self-report links."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from ketacare.app import assessments as sc
from ketacare.app import intake as uc
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(prefix="/patients/{patient_id}", tags=["intake and eligibility"])
text_router = APIRouter(tags=["intake and eligibility"])


@router.get("/intake", response_model=uc.IntakeOut | None, summary="The current intake")
def get_intake(db: DbSession, principal: CurrentPrincipal, patient_id: int) -> uc.IntakeOut | None:
    return uc.get_intake(db, principal.actor, patient_id)


@router.put(
    "/intake",
    response_model=uc.IntakeOut,
    status_code=status.HTTP_201_CREATED,
    summary="Save a new revision of the intake",
)
def save_intake(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: uc.IntakeForm
) -> uc.IntakeOut:
    return uc.save_intake(db, principal.actor, patient_id, body)


@router.get(
    "/eligibility",
    response_model=uc.EligibilityView,
    summary="The eligibility decision computed from the chart now",
)
def get_eligibility(
    db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> uc.EligibilityView:
    return uc.eligibility(db, principal.actor, patient_id)


@router.post(
    "/eligibility-reviews",
    response_model=uc.ReviewOut,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The decision changed since it was reviewed"}},
    summary="Sign the eligibility review (prescribers)",
)
def sign_review(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: uc.SignRequest
) -> uc.ReviewOut:
    return uc.sign_review(db, principal.actor, patient_id, body)


@router.get("/eligibility-reviews", response_model=list[uc.ReviewOut])
def list_reviews(db: DbSession, principal: CurrentPrincipal, patient_id: int) -> list[uc.ReviewOut]:
    return uc.list_reviews(db, principal.actor, patient_id)


@router.post("/consents", response_model=uc.ConsentOut, status_code=status.HTTP_201_CREATED)
def record_consent(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: uc.ConsentCreate
) -> uc.ConsentOut:
    return uc.record_consent(db, principal.actor, patient_id, body)


@router.get("/consents", response_model=list[uc.ConsentOut])
def list_consents(
    db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> list[uc.ConsentOut]:
    return uc.list_consents(db, principal.actor, patient_id)


@router.post("/assessments", response_model=sc.AssessmentOut, status_code=status.HTTP_201_CREATED)
def record_assessment(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: sc.AssessmentCreate
) -> sc.AssessmentOut:
    return sc.record_assessment(db, principal.actor, patient_id, body)


@router.get("/assessments", response_model=list[sc.AssessmentOut])
def list_assessments(
    db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> list[sc.AssessmentOut]:
    return sc.list_assessments(db, principal.actor, patient_id)


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=3, max_length=2000, description="What was done")


@router.post(
    "/assessments/{assessment_id}/acknowledgement",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Acknowledge an urgent flag (e.g. PHQ-9 item 9) with what was done",
)
def acknowledge(
    db: DbSession,
    principal: CurrentPrincipal,
    patient_id: int,
    assessment_id: int,
    body: Acknowledgement,
) -> None:
    sc.acknowledge_flag(db, principal.actor, patient_id, assessment_id, body.note)


@router.post(
    "/self-report-links",
    response_model=sc.SelfReportCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a one-time, expiring questionnaire link for the patient",
)
def create_link(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: sc.SelfReportInvite
) -> sc.SelfReportCreated:
    return sc.create_self_report_link(db, principal.actor, patient_id, body)


@text_router.get("/consent-text", summary="The current informed-consent text and its version")
def consent_text(principal: CurrentPrincipal) -> dict[str, Any]:
    return uc.consent_text()
