"""The clinic dashboard as JSON."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter

from ketacare.app import dashboard as uc
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", response_model=uc.Dashboard, summary="The clinic dashboard")
def dashboard(
    db: DbSession,
    principal: CurrentPrincipal,
    date_from: date | None = None,
    date_to: date | None = None,
) -> uc.Dashboard:
    return uc.clinic_dashboard(
        db, principal.actor, uc.DashboardFilter(date_from=date_from, date_to=date_to)
    )
