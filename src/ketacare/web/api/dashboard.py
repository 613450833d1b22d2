"""The clinic dashboard as JSON."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

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
    try:
        flt = uc.DashboardFilter(date_from=date_from, date_to=date_to)
    except ValidationError as exc:  # the period's own rule: from must not be after to
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise RequestValidationError(
            [{"loc": ("query", "date_from"), "msg": message, "type": "value_error"}]
        ) from None
    return uc.clinic_dashboard(db, principal.actor, flt)
