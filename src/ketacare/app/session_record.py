"""What a dosing session records beside its vital signs: the dose order (calculated, refused or
verified by a second person), dose start and end, CADSS and MOAA/S ratings, adverse events,
acknowledged alerts, the discharge checklist and the sign-off that seals the session.
Amendments after sign-off are records of their own.

The order and the dose start keep the protocol's minimum interval since the patient's previous
dose (a refused order is recorded; a refused dose start is recorded on the timeline), and the
dose start waits for a prescriber's decision on open risk flags."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketacare.app import outcome_summaries
from ketacare.app.assessments import _store
from ketacare.app.audit import audited
from ketacare.app.clinic_settings import effective_settings
from ketacare.app.errors import Conflict, InvalidInput, NotFound
from ketacare.app.permissions import Actor, Permission, require
from ketacare.app.risk_flags import open_flags
from ketacare.app.sessions import (
    RECORDING,
    EventOut,
    StartRefused,
    _aware,
    _scoped_session,
    acknowledged_alerts,
    add_event,
    interval_for,
    open_session,
    protocol_of,
    record_refusal,
    save,
)
from ketacare.clinical.dosing import DosingInputError, calculate_order, esketamine_order
from ketacare.clinical.eligibility import age_on
from ketacare.clinical.monitoring import (
    BpReading,
    DischargeInputs,
    VitalSignError,
    discharge_check,
)
from ketacare.clinical.prechecks import IntervalCheck
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.session_defs import load_session_checks
from ketacare.store.models import (
    AdverseEvent,
    Assessment,
    BodyMeasurement,
    DoseOrder,
    DoseVerification,
    Patient,
    SessionAlert,
    SessionAmendment,
    TreatmentSession,
    User,
    VitalSample,
)
from ketacare.store.types import utcnow

SESSION_SCALES = ("cadss", "moaas")


# --- dose orders -------------------------------------------------------------------------------


class OrderRequest(BaseModel):
    """Weight-based protocols take mg/kg, minutes and a concentration or a bag volume; the
    esketamine protocol takes a flat dose in mg (whole 28 mg devices)."""

    model_config = ConfigDict(extra="forbid")

    mg_per_kg: float | None = Field(None, description="Weight-based protocols")
    minutes: float | None = Field(None, description="Infusion time (infusions only)")
    concentration_mg_per_ml: float | None = None
    bag_volume_ml: float | None = None
    dose_mg: int | None = Field(None, description="Flat-dose protocols (esketamine)")
    interval_override_reason: str | None = Field(
        None,
        max_length=2000,
        description="Prescriber only, where the protocol allows it: why this dose is given "
        "inside the minimum interval since the previous dose",
    )


class OrderOut(BaseModel):
    id: int
    session_id: int
    status: str
    dose_mg: float | None
    mg_per_kg: float | None
    output: dict[str, Any]
    inputs: dict[str, Any]
    ordered_by: int | None
    ordered_by_name: str | None = None
    ordered_at: datetime
    verified_by: int | None = None
    verified_by_name: str | None = None
    verified_at: datetime | None = None


def _names(db: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = db.execute(select(User.id, User.display_name).where(User.id.in_(wanted))).all()
    return {r.id: r.display_name for r in rows}


def _orders_out(db: Session, orders: list[DoseOrder]) -> list[OrderOut]:
    checks = (
        {
            v.order_id: v
            for v in db.scalars(
                select(DoseVerification).where(
                    DoseVerification.order_id.in_([o.id for o in orders])
                )
            )
        }
        if orders
        else {}
    )
    names = _names(db, {o.ordered_by for o in orders} | {v.verified_by for v in checks.values()})
    out = []
    for o in orders:
        check = checks.get(o.id)
        out.append(
            OrderOut(
                id=o.id,
                session_id=o.session_id,
                status=o.status,
                dose_mg=o.dose_mg,
                mg_per_kg=o.mg_per_kg,
                output=o.output,
                inputs=o.inputs,
                ordered_by=o.ordered_by,
                ordered_by_name=names.get(o.ordered_by or 0),
                ordered_at=o.ordered_at,
                verified_by=check.verified_by if check else None,
                verified_by_name=names.get(check.verified_by or 0) if check else None,
                verified_at=check.verified_at if check else None,
            )
        )
    return out


def _latest_order(db: Session, session_id: int) -> DoseOrder | None:
    return db.scalar(
        select(DoseOrder)
        .where(DoseOrder.session_id == session_id)
        .order_by(DoseOrder.ordered_at.desc(), DoseOrder.id.desc())
        .limit(1)
    )


def _previous_mg_per_kg(db: Session, row: TreatmentSession) -> float | None:
    """The mg/kg given at the patient's last dosed session of the same protocol (the
    escalation step is measured from it)."""
    return db.scalar(
        select(DoseOrder.mg_per_kg)
        .join(TreatmentSession, TreatmentSession.id == DoseOrder.session_id)
        .where(
            TreatmentSession.patient_id == row.patient_id,
            TreatmentSession.protocol_id == row.protocol_id,
            TreatmentSession.id != row.id,
            TreatmentSession.dose_started_at.is_not(None),
            DoseOrder.status == "ordered",
        )
        .order_by(TreatmentSession.dose_started_at.desc(), DoseOrder.ordered_at.desc())
        .limit(1)
    )


def _dosed_sessions_before(db: Session, row: TreatmentSession) -> int:
    return (
        db.scalar(
            select(func.count(TreatmentSession.id)).where(
                TreatmentSession.patient_id == row.patient_id,
                TreatmentSession.protocol_id == row.protocol_id,
                TreatmentSession.id != row.id,
                TreatmentSession.dose_started_at.is_not(None),
            )
        )
        or 0
    )


def _latest(db: Session, patient_id: int, column: Any) -> BodyMeasurement | None:
    return db.scalar(
        select(BodyMeasurement)
        .where(BodyMeasurement.patient_id == patient_id, column.is_not(None))
        .order_by(BodyMeasurement.measured_at.desc(), BodyMeasurement.id.desc())
        .limit(1)
    )


def order_dose(db: Session, actor: Actor, session_id: int, data: OrderRequest) -> OrderOut:
    """Calculate the dose from the latest weight and the clinic's settings and record the order,
    or the refusal with every reason (a refused order can never be dosed)."""
    with audited(db, actor, "session.order") as note:
        require(actor, Permission.DOSE_ORDER)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.status not in ("scheduled", "in_progress", "paused") or row.dose_started_at:
            raise InvalidInput("status", "The dose has started or the session is over: no order.")
        patient = db.get(Patient, row.patient_id)
        assert patient is not None
        protocol = protocol_of(row)
        settings = effective_settings(db, row.clinic_id)
        today = utcnow().astimezone(ZoneInfo(settings.timezone)).date()
        inputs: dict[str, Any]
        try:
            if protocol.weight_based:
                weight = _latest(db, patient.id, BodyMeasurement.weight_kg)
                height = _latest(db, patient.id, BodyMeasurement.height_cm)
                measured_on: date | None = (
                    weight.measured_at.astimezone(ZoneInfo(settings.timezone)).date()
                    if weight
                    else None
                )
                inputs = {
                    **data.model_dump(exclude={"dose_mg"}),
                    "weight_kg": weight.weight_kg if weight else None,
                    "weight_measured_on": measured_on.isoformat() if measured_on else None,
                    "height_cm": height.height_cm if height else None,
                    "sex": patient.sex if patient.sex in ("female", "male") else None,
                    "previous_mg_per_kg": _previous_mg_per_kg(db, row),
                    "today": today.isoformat(),
                }
                order = calculate_order(
                    protocol.id,
                    inputs["weight_kg"],
                    data.mg_per_kg,
                    data.minutes,
                    concentration_mg_per_ml=data.concentration_mg_per_ml,
                    bag_volume_ml=data.bag_volume_ml,
                    weight_measured_on=measured_on,
                    today=today,
                    previous_mg_per_kg=inputs["previous_mg_per_kg"],
                    height_cm=inputs["height_cm"],
                    sex=inputs["sex"],
                    settings=settings.dosing(protocol.id),
                )
            else:
                inputs = {
                    "dose_mg": data.dose_mg,
                    "session_number": _dosed_sessions_before(db, row) + 1,
                    "age_years": age_on(patient.date_of_birth, today),
                }
                order = esketamine_order(
                    data.dose_mg,
                    inputs["session_number"],
                    age_years=inputs["age_years"],
                    protocol_id=protocol.id,
                )
        except DosingInputError as exc:
            raise InvalidInput(exc.field, str(exc)) from None
        output = order.to_json_dict()
        # The dose is given at the appointment, or now if that has passed.
        now = utcnow()
        at = max(now, row.scheduled_at) if row.status == "scheduled" else now
        interval = interval_for(db, row, at, settings.timezone)
        inputs["previous_dose_at"] = (
            interval.previous_dose_at.isoformat() if interval.previous_dose_at else None
        )
        reason = " ".join((data.interval_override_reason or "").split()) or None
        output = apply_interval(output, interval, _interval_override(row, actor, reason))
        stored = DoseOrder(
            clinic_id=row.clinic_id,
            session_id=row.id,
            status=output["status"],
            dose_mg=output["dose_mg"],
            mg_per_kg=output.get("mg_per_kg"),
            inputs=inputs,
            output=output,
            knowledge_version=order.knowledge_version,
            ordered_by=actor.user_id,
            ordered_at=now,
        )
        db.add(stored)
        db.flush()
        note.detail = {"session_id": row.id, "order_id": stored.id, "status": stored.status}
        return _orders_out(db, [stored])[0]


def _interval_override(row: TreatmentSession, actor: Actor, reason: str | None) -> str | None:
    """The reason a dose inside the interval may go ahead: the prescriber's who started the
    session past it, or this prescriber's now (at least 10 characters), else None."""
    started = (row.prechecks or {}).get("interval_override")
    if started:
        return f"overridden at the start of the session: {started}"
    if reason and len(reason) >= 10 and actor.can(Permission.SESSION_OVERRIDE):
        return reason
    return None


# Order fields that carry a dose: a refused order carries none.
_DOSE_FIELDS = (
    "dose_mg",
    "volume_ml",
    "concentration_mg_per_ml",
    "rate_ml_per_h",
    "rate_mg_per_h",
    "devices",
    "sprays",
    "dosing_minutes",
)


def apply_interval(
    output: dict[str, Any], interval: IntervalCheck, override: str | None
) -> dict[str, Any]:
    """The order as the interval decides it: unchanged when the interval is kept; with the
    override as a warning when the protocol allows one and a prescriber gave it; else refused
    (code ``interval_too_short``), its dose removed, like any refused order."""
    out = {**output, "interval": interval.to_json_dict()}
    if not interval.too_soon:
        return out
    if interval.outcome == "too_soon_override" and override:
        warning = {
            "code": "interval_override",
            "field": "interval_override_reason",
            "text": f"{interval.text} Prescriber's override: {override}",
            "sources": list(interval.sources),
        }
        return {**out, "warnings": [*out.get("warnings", []), warning]}
    text = interval.text
    refusal = {
        "code": "interval_too_short",
        "field": "interval_override_reason"
        if interval.outcome == "too_soon_override"
        else "scheduled_at",
        "text": text,
        "sources": list(interval.sources),
    }
    refused = {name: None for name in _DOSE_FIELDS if name in out}
    return {
        **out,
        **refused,
        "status": "refused",
        "refusals": [*out.get("refusals", []), refusal],
    }


def verify_order(db: Session, actor: Actor, session_id: int, order_id: int) -> OrderOut:
    """A second person confirms the latest order; the person who ordered cannot."""
    with audited(db, actor, "session.order.verify") as note:
        require(actor, Permission.DOSE_VERIFY)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        order = db.scalar(
            select(DoseOrder).where(DoseOrder.id == order_id, DoseOrder.session_id == row.id)
        )
        if order is None:
            raise NotFound(f"No order {order_id} in session {session_id}.")
        latest = _latest_order(db, row.id)
        if latest is None or latest.id != order.id:
            raise InvalidInput("order_id", "A newer order replaced this one: verify that one.")
        if order.status != "ordered":
            raise InvalidInput("order_id", "A refused order cannot be verified or given.")
        if actor.user_id is not None and order.ordered_by == actor.user_id:
            raise InvalidInput(
                "verified_by", "A second person verifies: the prescriber who ordered cannot."
            )
        if db.scalar(select(DoseVerification.id).where(DoseVerification.order_id == order.id)):
            raise InvalidInput("order_id", "This order is already verified.")
        db.add(
            DoseVerification(clinic_id=row.clinic_id, order_id=order.id, verified_by=actor.user_id)
        )
        db.flush()
        note.detail = {"session_id": row.id, "order_id": order.id}
        return _orders_out(db, [order])[0]


def start_dose(db: Session, actor: Actor, session_id: int) -> dict[str, Any]:
    """Dosing begins: needs a running session and a current order that is not refused (and
    verified, where the clinic requires a second check), the protocol's minimum interval since
    the previous dose (or the prescriber's override recorded at the start or on the order), and
    no open risk flag. A refusal on those grounds is recorded on the session's timeline."""
    try:
        return _start_dose(db, actor, session_id)
    except StartRefused as exc:
        record_refusal(db, actor, session_id, "dose_refused", exc.message, exc.record)
        raise


def _start_dose(db: Session, actor: Actor, session_id: int) -> dict[str, Any]:
    with audited(db, actor, "session.dose.start") as note:
        require(actor, Permission.SESSION_WRITE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.status != "in_progress":
            raise InvalidInput(
                "status", f"The session is {row.status}: start it with the pre-dose checks first."
            )
        if row.dose_started_at is not None:
            raise InvalidInput("status", "The dose has already started.")
        order = _latest_order(db, row.id)
        if order is None:
            raise InvalidInput("order", "No dose order: the prescriber orders the dose first.")
        if order.status != "ordered":
            raise InvalidInput("order", "The current order was refused: it cannot be given.")
        verified = db.scalar(
            select(DoseVerification.id).where(DoseVerification.order_id == order.id)
        )
        settings = effective_settings(db, row.clinic_id)
        if settings.require_second_check and not verified:
            raise InvalidInput(
                "order", "This clinic requires a second person to verify the order before dosing."
            )
        now = utcnow()
        interval = interval_for(db, row, now, settings.timezone)
        overridden = (row.prechecks or {}).get("interval_override") or any(
            w.get("code") == "interval_override" for w in order.output.get("warnings", [])
        )
        if interval.too_soon and not (interval.outcome == "too_soon_override" and overridden):
            raise StartRefused(
                "dose_interval",
                f"Do not dose: {interval.text}",
                {"code": "interval_too_short", "interval": interval.to_json_dict()},
            )
        flags = open_flags(db, row.clinic_id, [row.patient_id]).get(row.patient_id, ())
        if flags:
            raise StartRefused(
                "risk_flags",
                "Do not dose: a risk flag was raised since the pre-dose checks: "
                + " ".join(f"{f.origin}: {f.words}." for f in flags)
                + " A prescriber records a decision on it first.",
                {"code": "risk_flags_open", "flags": [f.to_json_dict() for f in flags]},
            )
        row.dose_started_at = now
        save(db)
        # The first dose fixes the patient's baseline for the outcome summaries.
        outcome_summaries.refresh(db, [row.patient_id])
        add_event(db, actor, row, "dose_started", at=now, order_id=order.id)
        note.detail = {"session_id": row.id, "order_id": order.id}
        return {"session_id": row.id, "dose_started_at": now, "order_id": order.id}


class DoseEndIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    short_reason: str | None = Field(
        None,
        max_length=2000,
        description="Why dosing ends before the protocol's minimum dosing time (required then)",
    )


def end_dose(
    db: Session, actor: Actor, session_id: int, data: DoseEndIn | None = None
) -> dict[str, Any]:
    """Dosing finished; observation time is counted from here. Ending before the protocol's
    minimum dosing time (e.g. a click just after the start) needs the reason, recorded."""
    data = data or DoseEndIn()
    with audited(db, actor, "session.dose.end") as note:
        require(actor, Permission.SESSION_WRITE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.dose_started_at is None or row.dose_ended_at is not None:
            raise InvalidInput("status", "Dosing is not running.")
        now = utcnow()
        minutes = (now - row.dose_started_at).total_seconds() / 60
        timing = protocol_of(row).timing
        minimum = timing.min_minutes.value if timing is not None else 1
        reason = " ".join((data.short_reason or "").split()) or None
        short = minutes < minimum
        if short and (reason is None or len(reason) < 5):
            raise InvalidInput(
                "short_reason",
                f"Dosing started {minutes:.0f} min ago, under this protocol's minimum dosing time "
                f"of {minimum} min. If dosing really ends now, confirm with the reason (e.g. "
                "'stopped early: vomiting'); otherwise let it run.",
            )
        row.dose_ended_at = now
        if row.status == "paused":
            row.status = "in_progress"
        save(db)
        add_event(
            db,
            actor,
            row,
            "dose_ended",
            f"Ended after {minutes:.0f} min, under the minimum of {minimum} min: {reason}"
            if short
            else None,
            at=now,
            minutes=round(minutes, 1),
            **({"short_reason": reason, "minimum_minutes": minimum} if short else {}),
        )
        note.detail = {"session_id": row.id, **({"short_reason": reason} if short else {})}
        return {"session_id": row.id, "dose_ended_at": now}


# --- scores, adverse events, alerts ------------------------------------------------------------


class SessionScoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instrument: Literal["cadss", "moaas"]
    answers: list[int] = Field(min_length=1, max_length=30)


class ScoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    instrument: str
    administered_at: datetime
    total: int
    band: str | None
    result: dict[str, Any]


def record_score(db: Session, actor: Actor, session_id: int, data: SessionScoreIn) -> ScoreOut:
    """A CADSS or MOAA/S rating during the session, scored as published."""
    with audited(db, actor, "session.score") as note:
        require(actor, Permission.SESSION_WRITE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.status not in RECORDING:
            raise InvalidInput("status", f"The session is {row.status}; start it first.")
        patient = db.get(Patient, row.patient_id)
        assert patient is not None
        stored = _store(
            db,
            patient,
            data.instrument,
            data.answers,
            source="staff",
            at=utcnow(),
            recorded_by=actor.user_id,
            session_id=row.id,
        )
        note.detail = {"session_id": row.id, "instrument": data.instrument, "total": stored.total}
        return ScoreOut.model_validate(stored)


class AdverseEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(max_length=40)
    severity: Literal["mild", "moderate", "severe"]
    serious: bool = False
    onset_at: datetime | None = Field(None, description="Default: now")
    action: str | None = Field(None, max_length=2000, description="What was done")
    outcome: Literal["resolved", "ongoing", "unknown"] = "ongoing"
    note: str | None = Field(None, max_length=2000)

    _tz = field_validator("onset_at")(_aware)

    @model_validator(mode="after")
    def _known(self) -> AdverseEventIn:
        definition = load_session_checks().adverse_event(self.code)
        if definition is None:
            known = ", ".join(a.code for a in load_session_checks().adverse_events)
            raise ValueError(f"code: unknown adverse event {self.code!r}; one of {known}")
        if definition.requires_note and not self.note:
            raise ValueError("note: describe the event")
        return self


class AdverseEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    severity: str
    serious: bool
    onset_at: datetime
    action: str | None
    outcome: str
    note: str | None
    recorded_by: int | None
    recorded_at: datetime


def record_adverse_event(
    db: Session, actor: Actor, session_id: int, data: AdverseEventIn
) -> AdverseEventOut:
    with audited(db, actor, "session.adverse_event") as note:
        require(actor, Permission.SESSION_WRITE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.status not in RECORDING:
            raise InvalidInput("status", f"The session is {row.status}; start it first.")
        now = utcnow()
        onset = data.onset_at or now
        if onset > now or (row.started_at and onset < row.started_at):
            raise InvalidInput("onset_at", "The onset must be between the start and now.")
        event = AdverseEvent(
            clinic_id=row.clinic_id,
            session_id=row.id,
            patient_id=row.patient_id,
            code=data.code,
            severity=data.severity,
            serious=data.serious,
            onset_at=onset,
            action=data.action or None,
            outcome=data.outcome,
            note=data.note or None,
            knowledge_version=knowledge_version(),
            recorded_by=actor.user_id,
            recorded_at=now,
        )
        db.add(event)
        db.flush()
        note.detail = {"session_id": row.id, "code": data.code, "severity": data.severity}
        return AdverseEventOut.model_validate(event)


class AlertAckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: str = Field(min_length=3, max_length=2000, description="What was done")


def acknowledge_alert(
    db: Session, actor: Actor, session_id: int, alert_id: int, data: AlertAckIn
) -> dict[str, Any]:
    with audited(db, actor, "session.alert.ack") as note:
        require(actor, Permission.SESSION_WRITE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        alert = db.scalar(
            select(SessionAlert).where(
                SessionAlert.id == alert_id, SessionAlert.session_id == row.id
            )
        )
        if alert is None:
            raise NotFound(f"No alert {alert_id} in session {session_id}.")
        if alert.id in acknowledged_alerts(db, [row.id]):
            raise InvalidInput("alert_id", "This alert is already acknowledged.")
        event = add_event(db, actor, row, "alert_ack", data.action, alert_id=alert.id)
        db.flush()
        note.detail = {"session_id": row.id, "alert_id": alert.id}
        return {"alert_id": alert.id, "acknowledged_at": event.at, "action": data.action}


class AlertsAckIn(BaseModel):
    """Several alerts (those raised by one reading) acknowledged with one action."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    alert_ids: list[int] = Field(min_length=1, max_length=50)
    action: str = Field(min_length=3, max_length=2000, description="What was done")


def acknowledge_alerts(
    db: Session, actor: Actor, session_id: int, data: AlertsAckIn
) -> dict[str, Any]:
    """Acknowledge alerts of the session together, in one transaction: each gets its own
    acknowledgement event with the same action and time, so every reader of single
    acknowledgements sees them. All or none: an alert not in the session, or already
    acknowledged, refuses the whole request."""
    with audited(db, actor, "session.alert.ack") as note:
        require(actor, Permission.SESSION_WRITE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        ids = sorted(set(data.alert_ids))
        found = set(
            db.scalars(
                select(SessionAlert.id).where(
                    SessionAlert.id.in_(ids), SessionAlert.session_id == row.id
                )
            )
        )
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"No alert {', '.join(map(str, missing))} in session {session_id}.")
        done = sorted(acknowledged_alerts(db, [row.id]) & found)
        if done:
            raise InvalidInput(
                "alert_ids",
                f"Alert {', '.join(map(str, done))} is already acknowledged: reload the session.",
            )
        now = utcnow()
        for alert_id in ids:
            add_event(
                db, actor, row, "alert_ack", data.action, at=now, alert_id=alert_id, together=ids
            )
        db.flush()
        note.detail = {"session_id": row.id, "alert_ids": ids}
        return {"alert_ids": ids, "acknowledged_at": now, "action": data.action}


# --- discharge and sign-off --------------------------------------------------------------------


class DischargeForm(BaseModel):
    """What the nurse observes at discharge; readings and scores come from the session."""

    model_config = ConfigDict(extra="forbid")

    on_room_air: bool | None = None
    oriented: bool | None = None
    ambulating: bool | None = None
    dissociation_resolved: bool | None = None
    escort_confirmed: bool | None = None
    driving_counselling_documented: bool | None = None
    rems_form_queued: bool | None = None


class SignRequest(DischargeForm):
    version: int = Field(description="The session's version as read (no lost update)")
    override_reason: str | None = Field(
        None,
        max_length=2000,
        description="Prescriber only: why the patient leaves with criteria not met "
        "(e.g. transferred to emergency care)",
    )


def post_dose_readings(
    samples: Iterable[Any], dose_started_at: datetime, dose_ended_at: datetime | None
) -> dict[str, Any]:
    """The discharge inputs a session's readings give: every blood pressure since the dose
    started (minutes from the start, whether taken after dosing ended), and the latest heart
    rate and SpO2 since dosing ended. ``samples``: readings since the dose started, in time
    order, with measured_at, systolic, diastolic, heart_rate and spo2."""
    bp: list[BpReading] = []
    after: list[Any] = []
    for sample in samples:
        ended = dose_ended_at is not None and sample.measured_at >= dose_ended_at
        if ended:
            after.append(sample)
        if sample.systolic is not None and sample.diastolic is not None:
            bp.append(
                BpReading(
                    minutes_after_start=(sample.measured_at - dose_started_at).total_seconds() / 60,
                    systolic=sample.systolic,
                    diastolic=sample.diastolic,
                    after_end=ended,
                )
            )

    def latest(name: str) -> float | None:
        return next((v for s in reversed(after) if (v := getattr(s, name)) is not None), None)

    return {"bp_readings": tuple(bp), "heart_rate": latest("heart_rate"), "spo2": latest("spo2")}


def _discharge_inputs(db: Session, row: TreatmentSession, form: DischargeForm) -> DischargeInputs:
    """The checklist's inputs: the readings since the dose started (one query), the latest
    MOAA/S and CADSS of the session, the pre-dose CADSS as baseline, and the form."""
    base = row.baseline or {}
    start, end = row.dose_started_at, row.dose_ended_at
    now = utcnow()
    readings: dict[str, Any] = {}
    if start is not None:
        samples = db.execute(
            select(
                VitalSample.measured_at,
                VitalSample.systolic,
                VitalSample.diastolic,
                VitalSample.heart_rate,
                VitalSample.spo2,
            )
            .where(VitalSample.session_id == row.id, VitalSample.measured_at >= start)
            .order_by(VitalSample.measured_at, VitalSample.id)
        ).all()
        readings = post_dose_readings(samples, start, end)

    def latest_score(instrument: str, before: datetime | None = None) -> int | None:
        stmt = select(Assessment.total).where(
            Assessment.session_id == row.id, Assessment.instrument == instrument
        )
        if before is not None:
            stmt = stmt.where(Assessment.administered_at < before)
        return db.scalar(
            stmt.order_by(Assessment.administered_at.desc(), Assessment.id.desc()).limit(1)
        )

    return DischargeInputs(
        minutes_since_end=(now - end).total_seconds() / 60 if end else None,
        minutes_since_start=(now - start).total_seconds() / 60 if start else None,
        baseline_systolic=base.get("systolic"),
        baseline_diastolic=base.get("diastolic"),
        baseline_heart_rate=base.get("heart_rate"),
        moaas=latest_score("moaas"),
        cadss_total=latest_score("cadss"),
        cadss_baseline=latest_score("cadss", start) if start else None,
        **readings,
        **form.model_dump(),
    )


def _evaluate_discharge(db: Session, row: TreatmentSession, form: DischargeForm) -> dict[str, Any]:
    inputs = _discharge_inputs(db, row, form)
    try:
        result = discharge_check(
            inputs, protocol_of(row), effective_settings(db, row.clinic_id).monitoring
        )
    except VitalSignError as exc:
        raise InvalidInput(exc.field, str(exc)) from None
    return {**result.to_json_dict(), "inputs": asdict(inputs)}


def discharge_preview(
    db: Session, actor: Actor, session_id: int, form: DischargeForm
) -> dict[str, Any]:
    """The discharge checklist now, criterion by criterion (nothing is stored)."""
    with audited(db, actor, "session.discharge.check") as note:
        require(actor, Permission.PATIENT_READ)
        row = _scoped_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.signed_at is not None and row.discharge is not None:
            return row.discharge
        if row.dose_started_at is None:
            raise InvalidInput("status", "Dosing has not started: there is nothing to discharge.")
        return _evaluate_discharge(db, row, form)


def sign_session(db: Session, actor: Actor, session_id: int, data: SignRequest) -> dict[str, Any]:
    """Evaluate discharge and sign: the session and everything in it become immutable.
    Criteria not met need a prescriber's documented reason."""
    with audited(db, actor, "session.sign") as note:
        require(actor, Permission.SESSION_SIGN)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.version != data.version:
            raise Conflict("The session changed since you opened it: reload and check again.")
        if row.status not in RECORDING or row.dose_started_at is None:
            raise InvalidInput("status", "Only a session whose dosing started can be signed off.")
        if row.dose_ended_at is None:
            raise InvalidInput("status", "End the dose first; observation counts from its end.")
        form = DischargeForm.model_validate(
            data.model_dump(include=set(DischargeForm.model_fields))
        )
        discharge = _evaluate_discharge(db, row, form)
        reason = " ".join((data.override_reason or "").split()) or None
        if not discharge["allowed"]:
            pending = [c for c in discharge["criteria"] if c["required"] and c["status"] != "met"]
            if reason is None:
                first = pending[0]
                raise InvalidInput(
                    first["id"],
                    f"Discharge criteria not met: {first['reason']} "
                    f"({len(pending)} open). Keep monitoring, or a prescriber signs with the "
                    "reason.",
                )
            require(actor, Permission.SESSION_OVERRIDE)
            if len(reason) < 10:
                raise InvalidInput("override_reason", "Give the reason (at least 10 characters).")
        now = utcnow()
        discharge["override_reason"] = reason
        row.discharge = discharge
        row.status = "stopped" if row.status == "stopped" else "completed"
        row.ended_at = now
        row.signed_by = actor.user_id
        row.signed_at = now
        save(db)
        note.detail = {
            "session_id": row.id,
            "discharge_allowed": discharge["allowed"],
            "override": reason is not None,
        }
        return {"session_id": row.id, "signed_at": now, "discharge": discharge}


class AmendmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=5, max_length=4000)


class AmendmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    text: str
    recorded_by: int | None
    recorded_at: datetime


def amend_session(db: Session, actor: Actor, session_id: int, data: AmendmentIn) -> AmendmentOut:
    with audited(db, actor, "session.amend") as note:
        require(actor, Permission.SESSION_WRITE)
        row = _scoped_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.signed_at is None:
            raise InvalidInput("status", "The session is not signed: record the change directly.")
        amendment = SessionAmendment(
            clinic_id=row.clinic_id, session_id=row.id, text=data.text, recorded_by=actor.user_id
        )
        db.add(amendment)
        db.flush()
        note.detail = {"session_id": row.id, "amendment_id": amendment.id}
        return AmendmentOut.model_validate(amendment)


# --- the whole record --------------------------------------------------------------------------


class SessionRecord(BaseModel):
    orders: list[OrderOut]
    scores: list[ScoreOut]
    adverse_events: list[AdverseEventOut]
    acknowledged_alert_ids: list[int]
    amendments: list[AmendmentOut]


def session_record(
    db: Session, actor: Actor, session_id: int, *, events: Sequence[EventOut] | None = None
) -> SessionRecord:
    """``events``: all of this session's events, when the caller has just read them with
    ``get_session``; the acknowledged alerts are then taken from them, not read again."""
    with audited(db, actor, "session.record.view") as note:
        require(actor, Permission.PATIENT_READ)
        row = _scoped_session(db, actor, session_id)
        note.patient_id = row.patient_id
        acked = acknowledged_alerts(db, [row.id]) if events is None else _acknowledged(events)
        return _record(db, row.id, acked)


def _acknowledged(events: Sequence[EventOut]) -> set[int]:
    """The ids of ``acknowledged_alerts``, from events already read."""
    return {
        int(e.detail["alert_id"])
        for e in events
        if e.kind == "alert_ack" and e.detail and "alert_id" in e.detail
    }


def _record(db: Session, session_id: int, acknowledged: set[int]) -> SessionRecord:
    orders = list(
        db.scalars(
            select(DoseOrder)
            .where(DoseOrder.session_id == session_id)
            .order_by(DoseOrder.ordered_at, DoseOrder.id)
        )
    )
    scores = db.scalars(
        select(Assessment)
        .where(Assessment.session_id == session_id)
        .order_by(Assessment.administered_at, Assessment.id)
    )
    events = db.scalars(
        select(AdverseEvent)
        .where(AdverseEvent.session_id == session_id)
        .order_by(AdverseEvent.onset_at, AdverseEvent.id)
    )
    amendments = db.scalars(
        select(SessionAmendment)
        .where(SessionAmendment.session_id == session_id)
        .order_by(SessionAmendment.recorded_at, SessionAmendment.id)
    )
    return SessionRecord(
        orders=_orders_out(db, orders),
        scores=[ScoreOut.model_validate(s) for s in scores],
        adverse_events=[AdverseEventOut.model_validate(e) for e in events],
        acknowledged_alert_ids=sorted(acknowledged),
        amendments=[AmendmentOut.model_validate(a) for a in amendments],
    )
