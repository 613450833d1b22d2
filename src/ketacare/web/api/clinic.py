"""The clinic's settings: opening calendar, monitoring overrides, second-person dose check."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field, ValidationError
from sqlalchemy.orm import Session

from ketacare.app import clinic_settings as uc
from ketacare.app.audit import record
from ketacare.app.errors import InvalidInput
from ketacare.app.permissions import Actor, Permission
from ketacare.clinical.monitoring import MonitoringSettings
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(prefix="/clinic", tags=["clinic"])

CHANGE_NOTE_MISSING = (
    "A clinical value changes: say why in the change note, with the source (e.g. the "
    "clinic's protocol or a guideline)."
)


class ClinicSettingsUpdate(uc.ClinicSettingsIn):
    version: int = Field(ge=1, description="The settings version you read; a stale one is 409")


def _clinical_change(db: Session, actor: Actor, data: uc.ClinicSettingsIn) -> bool:
    """Whether the values decisions are made with would change (calendar excluded)."""
    current = uc.effective_settings(db, actor.clinic_id)
    try:
        monitoring = MonitoringSettings.model_validate(
            {**MonitoringSettings.defaults().template_values(), **data.monitoring}
        )
    except ValidationError:
        return False  # the use-case names the invalid value
    return (
        monitoring != current.monitoring
        or data.dosing != current.dosing_overrides
        or data.require_second_check != current.require_second_check
    )


def save_settings(
    db: Session, actor: Actor, data: uc.ClinicSettingsIn, version: int
) -> uc.ClinicSettingsOut:
    """Save the settings; a change to a clinical value needs a change note (kept in the
    audit trail with the values before and after)."""
    if (
        actor.can(Permission.SETTINGS_MANAGE)
        and not (data.change_note or "").strip()
        and _clinical_change(db, actor, data)
    ):
        record(db, actor, "settings.update", "invalid", error=CHANGE_NOTE_MISSING)
        raise InvalidInput("change_note", CHANGE_NOTE_MISSING)
    return uc.update_clinic_settings(db, actor, data, version)


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
    return save_settings(db, principal.actor, data, body.version)
