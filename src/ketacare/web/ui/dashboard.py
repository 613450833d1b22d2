"""The clinic dashboard page."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from ketacare.app import dashboard as uc
from ketacare.app.errors import InvalidInput
from ketacare.web.auth import CurrentPrincipal, DbSession
from ketacare.web.ui.render import render

router = APIRouter()


@router.get("/dashboard")
def dashboard(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Response:
    try:
        flt = uc.DashboardFilter(date_from=date_from, date_to=date_to)
        data = uc.clinic_dashboard(db, principal.actor, flt)
    except (ValidationError, InvalidInput) as exc:
        message = exc.message if isinstance(exc, InvalidInput) else str(exc.errors()[0]["msg"])
        data = uc.clinic_dashboard(db, principal.actor, uc.DashboardFilter())
        return render(
            request,
            "dashboard/page.html",
            principal,
            status_code=422,
            d=data,
            error=message.removeprefix("Value error, "),
        )
    return render(request, "dashboard/page.html", principal, d=data, error=None)
