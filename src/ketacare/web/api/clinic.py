"""The clinic's settings: opening calendar, monitoring overrides, second-person dose check."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from ketacare.app import clinic_settings as uc
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(prefix="/clinic", tags=["clinic"])


class ClinicSettingsUpdate(uc.ClinicSettingsIn):
    version: int = Field(ge=1, description="The settings version you read; a stale one is 409")


@router.get("/settings", response_model=uc.ClinicSettingsOut)
def get_settings(db: DbSession, principal: CurrentPrincipal) -> uc.ClinicSettingsOut:
    return uc.get_clinic_settings(db, principal.actor)


@router.put(
    "/settings",
    response_model=uc.ClinicSettingsOut,
    summary="Replace the clinic's settings",
    responses={409: {"description": "Stale version"}},
)
def put_settings(
    db: DbSession, principal: CurrentPrincipal, body: ClinicSettingsUpdate
) -> uc.ClinicSettingsOut:
    data = uc.ClinicSettingsIn.model_validate(body.model_dump(exclude={"version"}))
    return uc.update_clinic_settings(db, principal.actor, data, body.version)
