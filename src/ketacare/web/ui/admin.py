"""Administration: the audit trail."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ketacare.app import audit as uc
from ketacare.app.errors import InvalidInput
from ketacare.web.auth import CurrentPrincipal, DbSession
from ketacare.web.ui.render import render

router = APIRouter(prefix="/admin")


def _int_or_none(value: str, field: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput(field, f"{field} must be a number.")
    return int(value)


@router.get("/audit")
def audit_list(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    action: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=20)] = "",
    patient_id: Annotated[str, Query(max_length=12)] = "",
    user_id: Annotated[str, Query(max_length=12)] = "",
    day: Annotated[date | None, Query()] = None,
    before_id: int | None = None,
) -> Response:
    since = until = None
    if day is not None:
        since = datetime.combine(day, time.min, tzinfo=principal.tz)
        until = since + timedelta(days=1)
    flt = uc.AuditFilter(
        action=action or None,
        outcome=outcome or None,
        patient_id=_int_or_none(patient_id, "patient_id"),
        user_id=_int_or_none(user_id, "user_id"),
        since=since,
        until=until,
        before_id=before_id,
    )
    page = uc.list_events(db, principal.actor, flt)
    filters = {
        "action": action,
        "outcome": outcome,
        "patient_id": patient_id,
        "user_id": user_id,
        "day": day.isoformat() if day else "",
    }
    return render(request, "admin/audit.html", principal, page=page, filters=filters)
