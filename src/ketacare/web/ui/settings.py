"""Clinic settings: opening calendar, closed dates, second-person dose check, overrides of
the cited monitoring defaults and default eligibility exclusions relaxed with a reason. Staff
may read them; administrators change them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from ketacare.app import clinic_settings as uc
from ketacare.app.errors import Conflict, InvalidInput
from ketacare.clinical.eligibility import RELAXATION_REASON_MIN
from ketacare.knowledge.eligibility_defs import Condition, load_contraindications
from ketacare.knowledge.protocol_defs import load_monitoring
from ketacare.web.auth import CurrentPrincipal, DbSession, Principal
from ketacare.web.ui.interactions import references
from ketacare.web.ui.render import render

router = APIRouter(prefix="/admin")

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _relaxable() -> list[Condition]:
    """The default exclusions a clinic may relax (never a label contraindication)."""
    return [c for c in load_contraindications().conditions if c.relaxable]


def _label_contraindications() -> list[Condition]:
    return [c for c in load_contraindications().conditions if c.basis == "label_contraindication"]


def _values(current: uc.ClinicSettingsOut) -> dict[str, Any]:
    cal = current.calendar
    return {
        "days": [str(d) for d in cal.days],
        "opens": cal.opens.strftime("%H:%M"),
        "closes": cal.closes.strftime("%H:%M"),
        "closed_dates": "\n".join(d.isoformat() for d in cal.closed_dates),
        "require_second_check": current.require_second_check,
        "monitoring": {k: str(v) for k, v in current.monitoring.items()},
        "relaxations": dict(current.eligibility_relaxations),
        "change_note": "",
        "version": current.version,
    }


def _from_form(form: FormData) -> dict[str, Any]:
    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    monitoring = {
        name: text(f"monitoring.{name}")
        for name in load_monitoring().settings
        if text(f"monitoring.{name}")
    }
    return {
        "days": [d for d in form.getlist("days") if isinstance(d, str)],
        "opens": text("opens"),
        "closes": text("closes"),
        "closed_dates": text("closed_dates"),
        "require_second_check": form.get("require_second_check") == "on",
        "monitoring": monitoring,
        "relaxations": {
            c.code: text(f"relax.{c.code}") for c in _relaxable() if text(f"relax.{c.code}")
        },
        "change_note": text("change_note"),
        "version": text("version"),
    }


def _errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        msg = err["msg"].removeprefix("Value error, ")
        if loc[:2] == ["calendar", "closed_dates"] and len(loc) > 2:
            msg = f"line {int(loc[2]) + 1}: {msg} (write dates as YYYY-MM-DD)"
        field = ".".join(loc[:2]) or "form"
        errors.setdefault(field, msg)
    return errors


def _render(
    request: Request,
    principal: Principal,
    current: uc.ClinicSettingsOut,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    status_code: int = 200,
    saved: bool = False,
) -> Response:
    return render(
        request,
        "admin/settings.html",
        principal,
        status_code=status_code,
        current=current,
        values=values,
        errors=errors,
        saved=saved,
        weekdays=WEEKDAYS,
        defaults=load_monitoring().settings,
        relaxable=_relaxable(),
        label_contraindications=_label_contraindications(),
        reason_min=RELAXATION_REASON_MIN,
        refs=references(),
    )


@router.get("/settings")
def settings_page(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    saved: Annotated[bool, Query()] = False,
) -> Response:
    current = uc.get_clinic_settings(db, principal.actor)
    return _render(request, principal, current, _values(current), {}, saved=saved)


@router.post("/settings")
async def save_settings_form(
    request: Request, db: DbSession, principal: CurrentPrincipal
) -> Response:
    form = await request.form()
    values = _from_form(form)
    current = uc.get_clinic_settings(db, principal.actor)
    errors: dict[str, str] = {}
    status_code = 422
    version = values["version"]
    raw = {
        "calendar": {
            "days": values["days"],
            "opens": values["opens"],
            "closes": values["closes"],
            "closed_dates": [line for line in values["closed_dates"].split() if line],
        },
        "monitoring": values["monitoring"],
        # Dosing overrides have no form here; they are kept as they are.
        "dosing": current.dosing,
        "require_second_check": values["require_second_check"],
        "eligibility_relaxations": values["relaxations"],
        "change_note": values["change_note"] or None,
    }
    try:
        data = uc.ClinicSettingsIn.model_validate(raw)
    except ValidationError as exc:
        errors = _errors(exc)
    else:
        if not version.isdigit():
            errors = {"form": "The form has no settings version: reload the page."}
        else:
            try:
                uc.update_clinic_settings(db, principal.actor, data, int(version))
                return RedirectResponse("/admin/settings?saved=true", status_code=303)
            except InvalidInput as exc:
                errors = {exc.field: exc.message}
            except Conflict as exc:
                errors, status_code = {"form": exc.message}, 409
    return _render(request, principal, current, values, errors, status_code=status_code)
