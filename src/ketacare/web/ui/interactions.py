"""The stand-alone interaction checker and the chart's live findings panel."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ketacare.app import interactions as uc
from ketacare.app.errors import InvalidInput
from ketacare.knowledge import load_yaml
from ketacare.web.auth import CurrentPrincipal, DbSession
from ketacare.web.ui.render import render

router = APIRouter()

AGENTS = ["ketamine", "esketamine"]
ROUTES = ["iv", "im", "intranasal", "oral", "sublingual"]


@cache
def references() -> dict[str, dict[str, Any]]:
    """Source id -> citation, to show every finding's sources by name."""
    data = load_yaml("references.yaml") or {}
    return {r["id"]: r for r in data.get("references") or []}


@router.get("/interactions")
def checker(
    request: Request,
    principal: CurrentPrincipal,
    meds: Annotated[str, Query(max_length=5000)] = "",
    agent: Annotated[str, Query(max_length=20)] = "ketamine",
    route: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    names = [line for line in (x.strip() for x in meds.splitlines()) if line]
    result, error = None, None
    if names:
        try:
            req = uc.ScreenRequest.model_validate(
                {"medications": names, "agent": agent, "route": route or None}
            )
            result = uc.screen_list(principal.actor, req)
        except InvalidInput as exc:
            error = exc.message
        except ValueError as exc:
            error = str(exc).splitlines()[0]
    template = (
        "interactions/_findings.html"
        if request.headers.get("hx-request")
        else "interactions/checker.html"
    )
    return render(
        request,
        template,
        principal,
        result=result,
        error=error,
        meds=meds,
        agent=agent,
        route=route,
        agents=AGENTS,
        routes=ROUTES,
        refs=references(),
    )


@router.get("/patients/{patient_id}/interactions")
def patient_findings(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    result = uc.screen_patient(db, principal.actor, patient_id)
    return render(
        request,
        "interactions/_findings.html",
        principal,
        result=result,
        error=None,
        refs=references(),
        stored=True,
    )
