"""The dosing session screen: open risk flags and the prescriber's decision on them, pre-dose
checks (and any start refused earlier), the order shown step by step, dosing controls, live
monitoring (vital signs chart and alerts, polled by HTMX), scales, adverse events, discharge
checklist, sign-off and amendments. No clinical answer of a form is pre-selected."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from ketacare.app import point_of_care as poc
from ketacare.app import session_record as rec
from ketacare.app import sessions as uc
from ketacare.app.clinic_settings import EffectiveSettings, effective_settings
from ketacare.app.errors import Conflict, Forbidden, InvalidInput
from ketacare.clinical.dosing import DosingSettings
from ketacare.clinical.eligibility import age_on
from ketacare.clinical.prechecks import pregnancy_applies
from ketacare.knowledge.instrument_defs import get_instrument
from ketacare.knowledge.protocol_defs import load_protocols
from ketacare.knowledge.session_defs import load_session_checks
from ketacare.reports.charts import spec_json, vitals_chart
from ketacare.store.types import utcnow
from ketacare.web.auth import CurrentPrincipal, DbSession, Principal
from ketacare.web.ui.render import form_text, render

router = APIRouter(prefix="/sessions/{session_id}")
# The day's worklist lives beside the session screens.
list_router = APIRouter()

DISCHARGE_FIELDS = tuple(rec.DischargeForm.model_fields)


def _tristate(form: FormData, name: str) -> bool | None:
    return {"yes": True, "no": False}.get(form_text(form, name) or "")


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "form"
        parts.append(f"{field}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _chart_spec(detail: uc.SessionDetail, monitoring: Any, tz: str) -> str:
    if not detail.vitals:
        return ""
    samples = [v.model_dump() for v in detail.vitals]
    alerts = [a.model_dump() for a in detail.alerts]
    window = (
        (detail.dose_started_at, detail.dose_ended_at or utcnow())
        if detail.dose_started_at
        else None
    )
    spec = vitals_chart(
        samples,
        baseline=detail.baseline,
        alerts=alerts,
        settings=monitoring,
        tz=tz,
        dose_window=window,
    )
    return spec_json(spec)


def _alert_groups(alerts: list[uc.AlertOut], acknowledged: set[int]) -> list[dict[str, Any]]:
    """The open alerts, one group per reading (they are acknowledged together): groups with a
    critical alert first, then the newest; critical first inside a group."""
    groups: dict[int, list[uc.AlertOut]] = {}
    for alert in alerts:
        if alert.id not in acknowledged:
            groups.setdefault(alert.vital_sample_id, []).append(alert)
    out = []
    for sample_id, members in groups.items():
        members.sort(key=lambda a: (a.severity != "critical", a.id))
        out.append(
            {
                "vital_sample_id": sample_id,
                "alerts": members,
                "size": len(members),
                "severity": members[0].severity,
                "raised_at": max(a.raised_at for a in members),
            }
        )
    out.sort(key=lambda g: g["vital_sample_id"], reverse=True)
    out.sort(key=lambda g: g["raised_at"], reverse=True)
    out.sort(key=lambda g: g["severity"] != "critical")
    return out


def _live_context(
    db: Session,
    principal: Principal,
    session_id: int,
    settings: EffectiveSettings,
    *,
    chart: bool = True,
) -> dict[str, Any]:
    """The monitoring card's values. ``settings``: the clinic's, which the page also needs; the
    record takes the events just read instead of reading them again. ``chart``: build the
    vitals chart too (a poll builds it only when the card changed)."""
    detail = uc.get_session(db, principal.actor, session_id)
    record = rec.session_record(db, principal.actor, session_id, events=detail.events)
    acknowledged = set(record.acknowledged_alert_ids)
    context = {
        "s": detail,
        "record": record,
        "acknowledged": acknowledged,
        "alert_groups": _alert_groups(detail.alerts, acknowledged),
        "recording": detail.status in uc.RECORDING and detail.signed_at is None,
        "monitoring": settings.monitoring,
    }
    if chart:
        context["chart_json"] = _chart_spec(detail, settings.monitoring, settings.timezone)
    return context


def _page(
    request: Request,
    db: Session,
    principal: Principal,
    session_id: int,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    discharge: dict[str, Any] | None = None,
) -> Response:
    settings = effective_settings(db, principal.actor.clinic_id)
    context = _live_context(db, principal, session_id, settings)
    detail: uc.SessionDetail = context["s"]
    protocol = load_protocols()[detail.protocol_id]
    checks = load_session_checks()
    patient = detail.patient
    assert patient is not None
    age = age_on(patient.date_of_birth, utcnow().astimezone(principal.tz).date())
    dosing = settings.dosing(protocol.id) if protocol.weight_based else None
    orders = context["record"].orders
    if discharge is None and detail.signed_at is not None:
        discharge = detail.discharge
    timing = protocol.timing
    minimum = timing.min_minutes.value if timing is not None else 1
    short = (
        detail.dose_started_at is not None
        and detail.dose_ended_at is None
        and (utcnow() - detail.dose_started_at).total_seconds() < minimum * 60
    )
    return render(
        request,
        "sessions/page.html",
        principal,
        status_code=status_code,
        protocol=protocol,
        checks=checks,
        fasting_text=checks.precheck("fasting").instructions.get(protocol.administration, ""),
        pregnancy_asked=pregnancy_applies(patient.sex, age, checks.precheck("pregnancy")),
        age=age,
        dosing=dosing or (DosingSettings.defaults() if protocol.weight_based else None),
        order=orders[-1] if orders else None,
        moaas=get_instrument("moaas"),
        cadss=get_instrument("cadss"),
        discharge=discharge,
        errors=errors or {},
        values=values or {},
        poc=poc.point_of_care(db, principal.actor, session_id, tz=settings.timezone),
        refusals=[e for e in detail.events if e.kind in uc.REFUSAL_KINDS],
        min_dosing_minutes=minimum,
        short_dosing=short,
        **context,
    )


@list_router.get("/sessions")
def worklist(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    day: date | None = None,
    cursor: str | None = None,
) -> Response:
    """Today's dosing sessions (or another day's), and every session still open, a page at
    a time."""
    today = utcnow().astimezone(principal.tz).date()
    chosen = day or today
    page = uc.worklist(db, principal.actor, chosen, cursor=cursor)
    return render(
        request,
        "sessions/worklist.html",
        principal,
        items=page.items,
        page=page,
        cursor=cursor,
        day=chosen,
        today=today,
        previous=chosen - timedelta(days=1),
        following=chosen + timedelta(days=1),
    )


@router.get("")
def session_page(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    return _page(request, db, principal, session_id)


@router.get("/live")
def live(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    session_id: int,
    vitals: int = -1,
    alerts: int = -1,
    acked: int = -1,
    status: str = "",
) -> Response:
    """The monitoring card's readings, for HTMX polling. When nothing changed since the
    counts the page holds, 204 leaves the card as it is. The open alerts and their
    acknowledgement forms come along (out of band) only when the alerts changed: a refresh
    never replaces a form someone may be typing in for nothing, and the boxes themselves are
    kept when it does (see sessions/_live.html)."""
    settings = effective_settings(db, principal.actor.clinic_id)
    context = _live_context(db, principal, session_id, settings, chart=False)
    detail: uc.SessionDetail = context["s"]
    now = (len(detail.vitals), len(detail.alerts), len(context["acknowledged"]), detail.status)
    if now == (vitals, alerts, acked, status):
        return Response(status_code=204)
    context["chart_json"] = _chart_spec(detail, settings.monitoring, settings.timezone)
    context["alerts_changed"] = now[1:] != (alerts, acked, status)
    return render(request, "sessions/_poll.html", principal, **context)


def _act(
    request: Request,
    db: Session,
    principal: Principal,
    session_id: int,
    section: str,
    form: FormData,
    action: Callable[[], Any],
    anchor: str | None = None,
) -> Response:
    """Run a use-case; on success back to the page (at the section), else the page with the
    error shown in the section and the values kept."""
    try:
        action()
    except ValidationError as exc:
        errors, code = {section: _errors(exc)}, 422
    except InvalidInput as exc:
        errors, code = {section: exc.message, f"{section}.field": exc.field}, 422
    except Conflict as exc:
        errors, code = {section: exc.message}, 409
    except Forbidden as exc:
        errors, code = {section: exc.message}, 403
    else:
        return RedirectResponse(f"/sessions/{session_id}#{anchor or section}", status_code=303)
    return _page(
        request,
        db,
        principal,
        session_id,
        status_code=code,
        errors=errors,
        values={k: v for k, v in form.items() if isinstance(v, str)},
    )


def _model(model: type[BaseModel], data: dict[str, Any]) -> Any:
    return model.model_validate({k: v for k, v in data.items() if v is not None})


@router.post("/start")
async def start(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    form = await request.form()
    readings = {k: form_text(form, k) for k in uc.READINGS}
    data = {
        **readings,
        "fasting": form_text(form, "fasting"),
        "escort": form_text(form, "escort"),
        "pregnancy": form_text(form, "pregnancy"),
        "acknowledge_caution": form.get("acknowledge_caution") == "yes",
        "override_reason": form_text(form, "override_reason"),
        "monitoring_plan": form_text(form, "monitoring_plan"),
        "acknowledge_refusal": form.get("acknowledge_refusal") == "yes",
    }
    return _act(
        request,
        db,
        principal,
        session_id,
        "prechecks",
        form,
        lambda: uc.start_session(db, principal.actor, session_id, _model(uc.PreCheck, data)),
    )


@router.post("/order")
async def order(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    form = await request.form()
    basis = form_text(form, "basis")
    amount = form_text(form, "basis_value")
    data = {
        "mg_per_kg": form_text(form, "mg_per_kg"),
        "minutes": form_text(form, "minutes"),
        "dose_mg": form_text(form, "dose_mg"),
        "concentration_mg_per_ml": amount if basis == "concentration" else None,
        "bag_volume_ml": amount if basis == "bag" else None,
        "interval_override_reason": form_text(form, "interval_override_reason"),
    }
    return _act(
        request,
        db,
        principal,
        session_id,
        "order",
        form,
        lambda: rec.order_dose(db, principal.actor, session_id, _model(rec.OrderRequest, data)),
    )


@router.post("/orders/{order_id}/verify")
async def verify(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int, order_id: int
) -> Response:
    form = await request.form()
    return _act(
        request,
        db,
        principal,
        session_id,
        "order",
        form,
        lambda: rec.verify_order(db, principal.actor, session_id, order_id),
    )


@router.post("/dose/start")
async def dose_start(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    form = await request.form()
    return _act(
        request,
        db,
        principal,
        session_id,
        "dosing",
        form,
        lambda: rec.start_dose(db, principal.actor, session_id),
    )


@router.post("/dose/end")
async def dose_end(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    form = await request.form()
    return _act(
        request,
        db,
        principal,
        session_id,
        "dosing",
        form,
        lambda: rec.end_dose(
            db, principal.actor, session_id, rec.DoseEndIn(short_reason=form_text(form, "reason"))
        ),
    )


@router.post("/risk-decision")
async def risk_decision(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    """The prescriber's decision on the open risk flags shown (their keys come with the form)."""
    form = await request.form()

    def run() -> None:
        decision = form_text(form, "decision")
        if decision is None:
            raise InvalidInput("decision", "Choose: proceed with the dose, or defer it.")
        data = poc.RiskDecisionIn.model_validate(
            {
                "decision": decision,
                "reason": form_text(form, "reason") or "",
                "flags": [v for v in form.getlist("flag") if isinstance(v, str) and v],
            }
        )
        poc.record_risk_decision(db, principal.actor, session_id, data)

    return _act(request, db, principal, session_id, "risk", form, run)


def _transition(
    handler: Callable[[Session, Any, int, uc.ReasonIn], Any],
) -> Callable[..., Any]:
    async def route(
        request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
    ) -> Response:
        form = await request.form()
        reason = uc.ReasonIn(reason=form_text(form, "reason"))
        return _act(
            request,
            db,
            principal,
            session_id,
            "dosing",
            form,
            lambda: handler(db, principal.actor, session_id, reason),
        )

    return route


for _name, _handler in (
    ("pause", uc.pause_session),
    ("resume", uc.resume_session),
    ("stop", uc.stop_session),
):
    router.add_api_route(f"/{_name}", _transition(_handler), methods=["POST"])


@router.post("/record/vitals")
async def vitals(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    form = await request.form()
    sample = {k: form_text(form, k) for k in uc.READINGS}

    def run() -> None:
        batch = uc.VitalsBatch.model_validate(
            {
                "source": "manual",
                "samples": [
                    {"measured_at": utcnow(), **{k: v for k, v in sample.items() if v is not None}}
                ],
            }
        )
        out = uc.ingest_vitals(db, principal.actor, session_id, batch)
        if out.rejected:
            raise InvalidInput(out.rejected[0].field, "; ".join(r.text for r in out.rejected))

    return _act(request, db, principal, session_id, "vitals", form, run, anchor="monitoring")


@router.post("/record/score")
async def score(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    form = await request.form()
    instrument = form_text(form, "instrument") or ""

    def run() -> None:
        count = get_instrument(instrument).item_count if instrument in rec.SESSION_SCALES else 0
        raw = [form_text(form, f"item{i}") for i in range(1, count + 1)]
        if any(v is None for v in raw):
            missing = next(i for i, v in enumerate(raw, 1) if v is None)
            raise InvalidInput(f"item{missing}", f"Answer item {missing} of the {instrument}.")
        data = rec.SessionScoreIn.model_validate(
            {"instrument": instrument, "answers": [int(v) for v in raw if v is not None]}
        )
        rec.record_score(db, principal.actor, session_id, data)

    return _act(request, db, principal, session_id, "scores", form, run)


@router.post("/record/adverse-event")
async def adverse_event(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    form = await request.form()
    data = {
        "code": form_text(form, "code"),
        "severity": form_text(form, "severity"),
        "serious": {"yes": True, "no": False}.get(form_text(form, "serious") or ""),
        "action": form_text(form, "action"),
        "outcome": form_text(form, "outcome"),
        "note": form_text(form, "note"),
    }

    def run() -> None:
        # Nothing is pre-selected on the form, so nothing is assumed: every answer is chosen.
        for name, what in (
            ("code", "the event"),
            ("severity", "the severity"),
            ("serious", "whether it is serious"),
            ("outcome", "the outcome"),
        ):
            if data[name] is None:
                raise InvalidInput(name, f"Choose {what}.")
        rec.record_adverse_event(db, principal.actor, session_id, _model(rec.AdverseEventIn, data))

    return _act(request, db, principal, session_id, "adverse", form, run)


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int, alert_id: int
) -> Response:
    form = await request.form()
    return _act(
        request,
        db,
        principal,
        session_id,
        "alerts",
        form,
        lambda: rec.acknowledge_alert(
            db, principal.actor, session_id, alert_id, rec.AlertAckIn(action=form.get("action"))
        ),
        anchor="monitoring",
    )


@router.post("/alerts/ack")
async def acknowledge_together(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    """The alerts of one reading, acknowledged with one action text."""
    form = await request.form()

    def run() -> None:
        ids = [v for v in form.getlist("alert_id") if isinstance(v, str)]
        data = rec.AlertsAckIn.model_validate({"alert_ids": ids, "action": form.get("action")})
        rec.acknowledge_alerts(db, principal.actor, session_id, data)

    return _act(request, db, principal, session_id, "alerts", form, run, anchor="monitoring")


def _discharge_form(form: FormData) -> dict[str, bool | None]:
    return {name: _tristate(form, name) for name in DISCHARGE_FIELDS}


@router.post("/discharge")
async def discharge(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    """Evaluate the checklist and show it, criterion by criterion."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        result = rec.discharge_preview(
            db, principal.actor, session_id, rec.DischargeForm(**_discharge_form(form))
        )
    except InvalidInput as exc:
        return _page(
            request,
            db,
            principal,
            session_id,
            status_code=422,
            errors={"discharge": exc.message},
            values=values,
        )
    return _page(request, db, principal, session_id, discharge=result, values=values)


@router.post("/sign")
async def sign(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    form = await request.form()
    data = {
        **_discharge_form(form),
        "version": form_text(form, "version"),
        "override_reason": form_text(form, "override_reason"),
    }
    return _act(
        request,
        db,
        principal,
        session_id,
        "discharge",
        form,
        lambda: rec.sign_session(db, principal.actor, session_id, _model(rec.SignRequest, data)),
    )


@router.post("/amend")
async def amend(
    request: Request, db: DbSession, principal: CurrentPrincipal, session_id: int
) -> Response:
    form = await request.form()
    return _act(
        request,
        db,
        principal,
        session_id,
        "amend",
        form,
        lambda: rec.amend_session(
            db, principal.actor, session_id, rec.AmendmentIn(text=form_text(form, "text") or "")
        ),
    )
