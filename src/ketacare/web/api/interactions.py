"""Drug-interaction screening against ketamine / esketamine."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from ketacare.app import interactions as uc
from ketacare.web.api.responses import encoded
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(tags=["interactions"])


@router.post(
    "/interactions/screen",
    response_model=uc.ScreenOut,
    summary="Screen a list of medicines (nothing stored)",
)
def screen_list(principal: CurrentPrincipal, body: uc.ScreenRequest) -> Response:
    return encoded(uc.screen_list(principal.actor, body))


@router.post(
    "/patients/{patient_id}/interaction-screens",
    response_model=uc.ScreenOut,
    status_code=status.HTTP_201_CREATED,
    summary="Screen the patient's current medicines (default: the agent and route of the planned "
    "protocol); stored with the knowledge version",
)
def screen_patient(
    db: DbSession,
    principal: CurrentPrincipal,
    patient_id: int,
    agent: uc.Agent | None = None,
    route: uc.Route | None = None,
) -> uc.ScreenOut:
    return uc.screen_patient(db, principal.actor, patient_id, agent=agent, route=route)


@router.get(
    "/patients/{patient_id}/interaction-screens",
    response_model=list[uc.StoredScreen],
    summary="Stored screens of the patient's list, newest first",
)
def list_screens(
    db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> list[uc.StoredScreen]:
    return uc.list_patient_screens(db, principal.actor, patient_id)
