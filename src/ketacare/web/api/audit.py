"""The audit trail (administrators)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from ketacare.app import audit as uc
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=uc.AuditPage, summary="Audit events, newest first")
def list_audit(
    db: DbSession,
    principal: CurrentPrincipal,
    user_id: int | None = None,
    patient_id: int | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> uc.AuditPage:
    flt = uc.AuditFilter(
        user_id=user_id,
        patient_id=patient_id,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    return uc.list_events(db, principal.actor, flt)
