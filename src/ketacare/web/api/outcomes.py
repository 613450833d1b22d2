"""A patient's outcomes: scale trajectories and flags, stimulant doses, session safety."""

from __future__ import annotations

from fastapi import APIRouter

from ketacare.app import outcomes as uc
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(tags=["outcomes"])


@router.get(
    "/patients/{patient_id}/outcomes",
    response_model=uc.PatientOutcomesOut,
    summary="Outcomes: PHQ-9, GAD-7 and ASRS change with their flags, stimulant doses per week",
    description=(
        "Baseline, latest and change per scale, with the response, remission, non-response, "
        "worsening and new PHQ-9 item 9 flags (met, not_met, unknown or not_applicable), each "
        "with its definition, evidence and sources, and the thresholds in force. ASRS change "
        "is exploratory: no trial of ketamine for ADHD exists. Stimulant doses are in mg per "
        "day per ingredient and ISO week, never converted between medicines; a dose that "
        "cannot be read is unknown. In-session ratings are left out."
    ),
)
def get_outcomes(
    db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> uc.PatientOutcomesOut:
    return uc.patient_outcomes(db, principal.actor, patient_id)
