"""The chart's treatment-course section: plan, the sessions in order, re-plan, stop, .ics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from ketacare.app import courses as uc
from ketacare.app import patients as pt
from ketacare.app.errors import Conflict, InvalidInput
from ketacare.knowledge.protocol_defs import load_protocols
from ketacare.web.api.courses import ics_response
from ketacare.web.auth import CurrentPrincipal, DbSession, Principal
from ketacare.web.ui.render import form_text, render

router = APIRouter(prefix="/patients/{patient_id}")


def plannable_protocols() -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "name": p.name,
            "sessions": p.course.induction_sessions.value if p.course else None,
        }
        for p in load_protocols().values()
        if p.plannable
    ]


def _errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "form"
        errors.setdefault(field, err["msg"].removeprefix("Value error, "))
    return errors


def _parse(model: type[BaseModel], raw: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    try:
        return model.model_validate(raw), {}
    except ValidationError as exc:
        return None, _errors(exc)


def _panel(
    request: Request,
    db: DbSession,
    principal: Principal,
    patient_id: int,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    panel = uc.course_panel(db, principal.actor, patient_id)
    values: dict[str, Any] = {"start_date": panel.today.isoformat(), "cbt": True}
    values.update(context.pop("values", {}))
    full = not request.headers.get("hx-request")
    return render(
        request,
        "courses/page.html" if full else "courses/_panel.html",
        principal,
        status_code=status_code,
        panel=panel,
        active=next((c for c in panel.courses if c.status == "active"), None),
        patient_id=patient_id,
        patient=pt.get_chart(db, principal.actor, patient_id).patient if full else None,
        protocols=plannable_protocols(),
        values=values,
        plan_errors=context.pop("plan_errors", {}),
        replan_errors=context.pop("replan_errors", {}),
        stop_errors=context.pop("stop_errors", {}),
        **context,
    )


def _done(
    request: Request, db: DbSession, principal: Principal, patient_id: int, message: str
) -> Response:
    if request.headers.get("hx-request"):
        return _panel(request, db, principal, patient_id, message=message)
    return RedirectResponse(f"/patients/{patient_id}#course", status_code=303)


@router.get("/course")
def course_section(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    return _panel(request, db, principal, patient_id)


@router.post("/course")
async def plan_course(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    raw = {
        "protocol_id": form_text(form, "protocol_id") or "iv-ketamine",
        "start_date": form_text(form, "start_date"),
        "infusions": form_text(form, "infusions"),
        "cbt": form.get("cbt") == "on",
    }
    data, errors = _parse(uc.CourseCreate, raw)
    if data is not None:
        try:
            uc.plan_course(db, principal.actor, patient_id, data)
            return _done(request, db, principal, patient_id, "Course planned.")
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
    return _panel(
        request, db, principal, patient_id, status_code=422, plan_errors=errors, values=raw
    )


def _course_id(form: FormData) -> int:
    value = form_text(form, "course_id") or ""
    if not value.isdigit():
        raise InvalidInput("course_id", "The form does not name a course: reload the chart.")
    return int(value)


@router.post("/course/replan")
async def replan_course(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    raw = {
        "version": form_text(form, "version"),
        "missed": [m for m in form.getlist("missed") if isinstance(m, str) and m.strip()],
        "reason": form_text(form, "reason"),
        "from_date": form_text(form, "from_date"),
    }
    data, errors = _parse(uc.ReplanRequest, raw)
    status_code = 422
    if data is not None:
        try:
            uc.replan_course(db, principal.actor, _course_id(form), data, patient_id=patient_id)
            return _done(request, db, principal, patient_id, "Course re-planned.")
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
        except Conflict as exc:
            errors, status_code = {"form": exc.message}, 409
    return _panel(
        request,
        db,
        principal,
        patient_id,
        status_code=status_code,
        replan_errors=errors,
        replan_values=raw,
    )


@router.post("/course/stop")
async def stop_course(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    raw = {"version": form_text(form, "version"), "reason": form_text(form, "reason")}
    data, errors = _parse(uc.StopRequest, raw)
    status_code = 422
    if data is not None:
        try:
            uc.stop_course(
                db,
                principal.actor,
                _course_id(form),
                data.reason,
                data.version,
                patient_id=patient_id,
            )
            return _done(request, db, principal, patient_id, "Course stopped.")
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
        except Conflict as exc:
            errors, status_code = {"form": exc.message}, 409
    return _panel(
        request,
        db,
        principal,
        patient_id,
        status_code=status_code,
        stop_errors=errors,
        stop_values=raw,
    )


@router.get("/courses/{course_id}.ics")
def course_calendar(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, course_id: int
) -> Response:
    text = uc.course_calendar(db, principal.actor, course_id, patient_id=patient_id)
    return ics_response(text, course_id)
