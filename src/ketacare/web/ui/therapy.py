"""Therapy: the clinic's worklist, one session's page with the structured note (save, sign,
amend, cancel) and the chart's therapy section (an HTMX fragment)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from ketacare.app import therapy as uc
from ketacare.app.errors import Conflict, InvalidInput
from ketacare.knowledge.therapy_defs import load_therapy
from ketacare.web.auth import CurrentPrincipal, DbSession, Principal
from ketacare.web.ui.render import form_text, render

router = APIRouter()

NOTE_TEXT = ("attendance", "minutes", "focus", "worked_on", "homework", "patient_words")


def _errors(exc: ValidationError) -> dict[str, str]:
    """Errors keyed by the API's field names (``risk_check.result``), first one per field."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "form"
        errors.setdefault(field, err["msg"].removeprefix("Value error, "))
    return errors


def _note_from_form(form: FormData) -> dict[str, Any]:
    asked = form_text(form, "risk_asked")
    return {
        **{name: form_text(form, name) for name in NOTE_TEXT},
        "plan_next": form_text(form, "plan_next"),
        "techniques": [v for v in form.getlist("techniques") if isinstance(v, str)],
        "risk_check": {
            "asked": {"yes": True, "no": False}.get(asked or "", asked),
            "result": form_text(form, "risk_result"),
            "action": form_text(form, "risk_action"),
            "not_asked_reason": form_text(form, "risk_not_asked_reason"),
        },
    }


def _values(note: uc.NoteOut | None) -> dict[str, Any]:
    """A stored note as the form's values."""
    if note is None:
        return {"techniques": []}
    rc = note.risk_check
    return {
        **{name: getattr(note, name) for name in NOTE_TEXT},
        "plan_next": note.plan_next,
        "techniques": list(note.techniques),
        "risk_asked": "" if rc.asked is None else ("yes" if rc.asked else "no"),
        "risk_result": rc.result,
        "risk_action": rc.action,
        "risk_not_asked_reason": rc.not_asked_reason,
    }


def _submitted(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    values["techniques"] = [v for v in form.getlist("techniques") if isinstance(v, str)]
    return values


def _page(
    request: Request,
    db: DbSession,
    principal: Principal,
    therapy_id: int,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    detail = uc.get_therapy(db, principal.actor, therapy_id)
    current = next(v for v in detail.versions if v.id == detail.current_id)
    defaults: dict[str, Any] = {
        "values": _values(detail.note),
        "errors": {},
        "amend_values": _values(current.note),
        "amend_errors": {},
        "cancel_errors": {},
        "message": None,
    }
    defaults.update(context)
    return render(
        request,
        "therapy/session.html",
        principal,
        status_code=status_code,
        t=detail,
        vocab=load_therapy(),
        **defaults,
    )


@router.get("/therapy")
def worklist_page(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    page = uc.worklist(db, principal.actor, cursor=cursor, limit=25)
    return render(request, "therapy/worklist.html", principal, page=page, cursor=cursor)


@router.get("/therapy/{therapy_id}")
def session_page(
    request: Request, db: DbSession, principal: CurrentPrincipal, therapy_id: int
) -> Response:
    return _page(request, db, principal, therapy_id)


@router.post("/therapy/{therapy_id}/note")
async def save_note(
    request: Request, db: DbSession, principal: CurrentPrincipal, therapy_id: int
) -> Response:
    """Save the draft; with ``action=sign``, sign it right after saving."""
    form = await request.form()
    sign = form.get("action") == "sign"
    raw = {**_note_from_form(form), "version": form_text(form, "version")}
    errors: dict[str, str] = {}
    status_code = 422
    try:
        data = uc.NoteUpdate.model_validate(raw)
    except ValidationError as exc:
        errors = _errors(exc)
    else:
        try:
            saved = uc.save_note(db, principal.actor, therapy_id, data)
            if sign:
                uc.sign_note(db, principal.actor, therapy_id, uc.SignIn(version=saved.version))
            return RedirectResponse(f"/therapy/{therapy_id}", status_code=303)
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
            if sign and exc.field != "status":
                errors["form"] = "The draft is saved but not signed: " + exc.message
        except Conflict as exc:
            errors, status_code = {"form": exc.message}, 409
    return _page(
        request,
        db,
        principal,
        therapy_id,
        status_code=status_code,
        values=_submitted(form),
        errors=errors,
    )


@router.post("/therapy/{therapy_id}/amend")
async def amend(
    request: Request, db: DbSession, principal: CurrentPrincipal, therapy_id: int
) -> Response:
    form = await request.form()
    raw = {**_note_from_form(form), "reason": form_text(form, "reason")}
    errors: dict[str, str] = {}
    status_code = 422
    try:
        data = uc.AmendmentIn.model_validate(raw)
    except ValidationError as exc:
        errors = _errors(exc)
    else:
        try:
            row = uc.amend_note(db, principal.actor, therapy_id, data)
            return RedirectResponse(f"/therapy/{row.id}", status_code=303)
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
        except Conflict as exc:
            errors, status_code = {"form": exc.message}, 409
    return _page(
        request,
        db,
        principal,
        therapy_id,
        status_code=status_code,
        amend_values=_submitted(form),
        amend_errors=errors,
    )


@router.post("/therapy/{therapy_id}/cancel")
async def cancel(
    request: Request, db: DbSession, principal: CurrentPrincipal, therapy_id: int
) -> Response:
    form = await request.form()
    raw = {k: form_text(form, k) for k in ("status", "reason", "version")}
    errors: dict[str, str] = {}
    status_code = 422
    try:
        data = uc.CancelIn.model_validate(raw)
    except ValidationError as exc:
        errors = _errors(exc)
    else:
        try:
            uc.cancel_session(db, principal.actor, therapy_id, data)
            return RedirectResponse(f"/therapy/{therapy_id}", status_code=303)
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
        except Conflict as exc:
            errors, status_code = {"form": exc.message}, 409
    return _page(request, db, principal, therapy_id, status_code=status_code, cancel_errors=errors)


def _panel(
    request: Request,
    db: DbSession,
    principal: Principal,
    patient_id: int,
    *,
    status_code: int = 200,
    template: str = "therapy/_chart.html",
    **context: Any,
) -> Response:
    panel = uc.therapy_panel(db, principal.actor, patient_id)
    defaults: dict[str, Any] = {"schedule_values": {}, "schedule_errors": {}}
    defaults.update(context)
    return render(
        request,
        template,
        principal,
        status_code=status_code,
        panel=panel,
        patient_id=patient_id,
        **defaults,
    )


@router.get("/patients/{patient_id}/therapy")
def chart_fragment(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    return _panel(request, db, principal, patient_id)


def _local_input(value: str | None, tz: ZoneInfo) -> str | None:
    """A ``datetime-local`` field is in the clinic's zone; the API takes an aware time."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value  # the model reports it, naming the field
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).isoformat()


@router.post("/patients/{patient_id}/therapy")
async def schedule(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    raw = {
        "scheduled_at": _local_input(form_text(form, "scheduled_at"), principal.tz),
        "follows_session_id": form_text(form, "follows_session_id"),
        "minutes": form_text(form, "minutes"),
    }
    errors: dict[str, str] = {}
    htmx = bool(request.headers.get("hx-request"))
    try:
        data = uc.TherapyCreate.model_validate(raw)
    except ValidationError as exc:
        errors = _errors(exc)
    else:
        try:
            row = uc.schedule_therapy(db, principal.actor, patient_id, data)
            if htmx:
                # The form sits in a chart fragment: send the whole page on to the new session.
                return Response(status_code=200, headers={"HX-Redirect": f"/therapy/{row.id}"})
            return RedirectResponse(f"/therapy/{row.id}", status_code=303)
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
    return _panel(
        request,
        db,
        principal,
        patient_id,
        status_code=422,
        template="therapy/_chart.html" if htmx else "therapy/schedule.html",
        schedule_values=_submitted(form),
        schedule_errors=errors,
    )
