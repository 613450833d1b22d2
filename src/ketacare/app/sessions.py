"""Monitored dosing sessions: scheduling, the pre-dose checks (blood-pressure gate, fasting,
escort, pregnancy, interaction re-screen, the interval since the previous dose, open risk
flags, a start refused earlier the same day), vital signs (by hand or pushed by a device in
batches) and the alerts they raise, pause, resume and early stop.

A refused start is part of the session's record: the refusal, with the readings and the gate,
is written as a session event in a transaction of its own (the refused attempt's transaction
is rolled back like any other refused input).

Orders, scores, adverse events, discharge and sign-off are in ``app.session_record``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Row, bindparam, func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ketacare.app.audit import audited
from ketacare.app.clinic_settings import effective_settings, settings_from
from ketacare.app.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from ketacare.app.intake import programme_status
from ketacare.app.interactions import screen_current
from ketacare.app.paging import after_time_cursor, encode_time_cursor
from ketacare.app.patients import _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.app.risk_flags import open_flags, session_decisions
from ketacare.clinical.eligibility import age_on
from ketacare.clinical.monitoring import (
    Alert,
    VitalSignError,
    VitalSigns,
    alerts_for_samples,
    bp_gate,
    validate_vitals,
)
from ketacare.clinical.prechecks import (
    EarlierRefusal,
    InteractionSummary,
    IntervalCheck,
    assess_prechecks,
    dose_interval,
    worst,
)
from ketacare.knowledge.protocol_defs import ProtocolDef, load_protocols
from ketacare.store.db import insert_new
from ketacare.store.models import (
    Clinic,
    Patient,
    SessionAlert,
    SessionEvent,
    TreatmentSession,
    VitalSample,
)
from ketacare.store.types import utcnow

READINGS = ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate")
# Monitoring goes on after an early stop, until the session is signed off.
RECORDING = ("in_progress", "paused", "stopped")
# A device clock may run a little ahead of the server's.
CLOCK_SKEW = timedelta(minutes=5)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2026-01-05T09:30:00Z)")
    return value


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol_id: str = Field("iv-ketamine", max_length=40)
    scheduled_at: datetime

    _tz = field_validator("scheduled_at")(_aware)


class PreCheck(BaseModel):
    """Pre-dose readings and checks. The blood pressure decides the gate; fasting, escort,
    pregnancy and the interaction re-screen add their own bands; the worst band decides."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    systolic: float
    diastolic: float
    heart_rate: float | None = None
    spo2: float | None = None
    respiratory_rate: float | None = None
    fasting: Literal["yes", "no"] | None = Field(None, description="Fasted as instructed")
    escort: Literal["yes", "no"] | None = Field(None, description="Responsible adult escort home")
    pregnancy: Literal["not_pregnant", "pregnant", "unknown"] | None = Field(
        None, description="Asked of female patients of childbearing age"
    )
    acknowledge_caution: bool = False
    override_reason: str | None = Field(None, max_length=2000)
    monitoring_plan: str | None = Field(
        None,
        max_length=2000,
        description="The monitoring change for an interaction the Spravato label names "
        "(e.g. 'BP every 5 min for the first 40 min'); required when one is found",
    )
    acknowledge_refusal: bool = Field(
        False,
        description="A start was refused earlier today: acknowledged, on a repeated reading",
    )


class VitalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measured_at: datetime = Field(description="When the device measured (with time zone)")
    systolic: float | None = None
    diastolic: float | None = None
    heart_rate: float | None = None
    spo2: float | None = None
    respiratory_rate: float | None = None
    sample_key: str | None = Field(
        None, max_length=100, description="Device's id for the sample: a re-sent one is ignored"
    )

    _tz = field_validator("measured_at")(_aware)


class VitalsBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples: list[VitalIn] = Field(min_length=1, max_length=500)
    source: Literal["device", "manual"] = "device"


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    vital_sample_id: int
    raised_at: datetime
    code: str
    severity: str
    field: str
    value: float
    threshold: float
    text: str
    sources: list[str]


class Rejected(BaseModel):
    index: int
    field: str
    code: str
    text: str


class IngestResult(BaseModel):
    stored: list[int] = Field(description="Ids of the stored samples, in batch order")
    duplicates: list[int] = Field(description="Batch indexes already stored (same sample_key)")
    rejected: list[Rejected]
    alerts: list[AlertOut]


class VitalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    measured_at: datetime
    received_at: datetime
    systolic: float | None
    diastolic: float | None
    heart_rate: float | None
    spo2: float | None
    respiratory_rate: float | None
    source: str


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    course_id: int | None = None
    plan_key: str | None = None
    number: int | None = None
    protocol_id: str
    scheduled_at: datetime
    status: str
    baseline: dict[str, Any] | None
    gate: dict[str, Any] | None
    gate_override_reason: str | None
    prechecks: dict[str, Any] | None = None
    started_at: datetime | None
    dose_started_at: datetime | None = None
    dose_ended_at: datetime | None = None
    ended_at: datetime | None
    end_reason: str | None = None
    discharge: dict[str, Any] | None = None
    signed_by: int | None = None
    signed_at: datetime | None = None
    version: int


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    kind: str
    text: str | None
    detail: dict[str, Any] | None
    recorded_by: int | None


class PatientBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    mrn: str
    family_name: str
    given_name: str
    sex: str
    date_of_birth: date


class SessionDetail(SessionOut):
    patient: PatientBrief | None = None
    vitals: list[VitalOut] = []
    alerts: list[AlertOut] = []
    events: list[EventOut] = []


# Built once: every session screen, poll and device batch runs these (building a statement
# and its cache key costs more than running it).
_SESSION_IN_CLINIC = select(TreatmentSession).where(
    TreatmentSession.id == bindparam("session_id"),
    TreatmentSession.clinic_id == bindparam("clinic_id"),
)
# Only what a vitals batch needs, as plain columns: no ORM object to build per batch.
_SESSION_AND_SETTINGS = (
    select(
        TreatmentSession.id,
        TreatmentSession.clinic_id,
        TreatmentSession.patient_id,
        TreatmentSession.status,
        TreatmentSession.signed_at,
        TreatmentSession.baseline,
        Clinic.timezone,
        Clinic.settings,
        Clinic.settings_version,
    )
    .join(Clinic, Clinic.id == TreatmentSession.clinic_id)
    .where(
        TreatmentSession.id == bindparam("session_id"),
        TreatmentSession.clinic_id == bindparam("clinic_id"),
    )
)


def _scoped_session(db: Session, actor: Actor, session_id: int) -> TreatmentSession:
    row = db.scalar(_SESSION_IN_CLINIC, {"session_id": session_id, "clinic_id": actor.clinic_id})
    if row is None:
        raise NotFound(f"No session {session_id} in your clinic.")
    return row


def open_session(db: Session, actor: Actor, session_id: int) -> TreatmentSession:
    """The session, refusing any change once it is signed (an amendment is the way)."""
    row = _scoped_session(db, actor, session_id)
    _refuse_signed(row)
    return row


def _refuse_signed(row: TreatmentSession | Row[Any]) -> None:
    if row.signed_at is not None:
        raise InvalidInput(
            "status", "The session is signed and cannot change; add an amendment instead."
        )


def save(db: Session) -> None:
    """Flush, turning a concurrent change of the same row into a Conflict (no lost update)."""
    try:
        db.flush()
    except StaleDataError:
        raise Conflict(
            "Someone else changed this session at the same moment. Reload it and try again."
        ) from None


def add_event(
    db: Session,
    actor: Actor,
    row: TreatmentSession,
    kind: str,
    text: str | None = None,
    at: datetime | None = None,
    **detail: Any,
) -> SessionEvent:
    event = SessionEvent(
        clinic_id=row.clinic_id,
        session_id=row.id,
        at=at or utcnow(),
        kind=kind,
        text=text,
        detail=detail or None,
        recorded_by=actor.user_id,
    )
    db.add(event)
    return event


def protocol_of(row: TreatmentSession) -> ProtocolDef:
    return load_protocols()[row.protocol_id]


def _reason(value: str | None, field: str, what: str) -> str:
    text = " ".join((value or "").split())
    if len(text) < 5:
        raise InvalidInput(field, f"Give the reason for {what} (at least 5 characters).")
    return text


class StartRefused(InvalidInput):
    """A start (or a dose start) refused on clinical grounds. ``record`` (the code, readings,
    gate and checks) is written to the session after the attempt is rolled back."""

    def __init__(self, field: str, message: str, record: dict[str, Any]) -> None:
        super().__init__(field, message)
        self.record = record


class StartNeedsPrescriber(Forbidden):
    """A blood-pressure hold met by someone who cannot override it: recorded like a refusal."""

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record


def record_refusal(
    db: Session, actor: Actor, session_id: int, kind: str, text: str, record: dict[str, Any]
) -> None:
    """Write a refused start to the session's timeline, audited as a write of its own. If the
    session cannot take it (signed meanwhile), the refused attempt's own audit entry stays."""
    try:
        with audited(db, actor, "session.refusal") as note:
            require(actor, Permission.SESSION_WRITE)
            row = open_session(db, actor, session_id)
            note.patient_id = row.patient_id
            add_event(db, actor, row, kind, text, **record)
            db.flush()
            note.detail = {"session_id": row.id, "kind": kind, "code": record.get("code")}
    except DomainError:
        pass


def previous_dose_at(db: Session, row: TreatmentSession) -> datetime | None:
    """When the patient's latest dose started, in any other session (any protocol)."""
    return db.scalar(
        select(func.max(TreatmentSession.dose_started_at)).where(
            TreatmentSession.clinic_id == row.clinic_id,
            TreatmentSession.patient_id == row.patient_id,
            TreatmentSession.id != row.id,
        )
    )


def interval_for(db: Session, row: TreatmentSession, at: datetime, tz: str) -> IntervalCheck:
    return dose_interval(protocol_of(row), previous_dose_at(db, row), at, tz)


def refusals_today(db: Session, row: TreatmentSession, tz: str) -> list[EarlierRefusal]:
    """Starts of this patient's dose refused on the blood pressure (a refuse or a hold not
    overridden) since midnight in the clinic's zone, oldest first. Other refusals decide again
    on their own at the next start (an interaction, the interval, a risk flag)."""
    zone = ZoneInfo(tz)
    midnight = datetime.combine(utcnow().astimezone(zone).date(), datetime.min.time(), zone)
    rows = db.execute(
        select(SessionEvent.at, SessionEvent.text, SessionEvent.detail)
        .join(TreatmentSession, TreatmentSession.id == SessionEvent.session_id)
        .where(
            TreatmentSession.clinic_id == row.clinic_id,
            TreatmentSession.patient_id == row.patient_id,
            SessionEvent.kind == "start_refused",
            SessionEvent.at >= midnight,
        )
        .order_by(SessionEvent.at, SessionEvent.id)
    ).all()
    out = []
    for r in rows:
        detail = r.detail or {}
        gate = detail.get("gate") or {}
        if gate.get("band") not in ("hold", "refuse"):
            continue
        out.append(
            EarlierRefusal(
                at=r.at,
                code=str(detail.get("code", "refused")),
                text=f"blood pressure {gate.get('systolic', 0):g}/{gate.get('diastolic', 0):g}"
                f" ({gate['band']}): {' '.join(str(r.text or '').split())}",
                bp_refused=gate["band"] == "refuse",
            )
        )
    return out


# Session events of a refused start and of a refused dose start.
REFUSAL_KINDS = ("start_refused", "dose_refused")


def create_session(db: Session, actor: Actor, patient_id: int, data: SessionCreate) -> SessionOut:
    with audited(db, actor, "session.create", patient_id=patient_id) as note:
        require(actor, Permission.SESSION_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        protocol = load_protocols().get(data.protocol_id)
        if protocol is None:
            raise InvalidInput("protocol_id", f"Unknown protocol {data.protocol_id!r}.")
        if not protocol.plannable:
            raise InvalidInput("protocol_id", protocol.not_plannable_reason or "Not plannable.")
        row = TreatmentSession(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            protocol_id=protocol.id,
            scheduled_at=data.scheduled_at,
            status="scheduled",
            created_by=actor.user_id,
        )
        db.add(row)
        db.flush()
        note.detail = {"session_id": row.id, "protocol": protocol.id}
        return SessionOut.model_validate(row)


def _interaction_summary(
    db: Session, actor: Actor, patient: Patient, protocol: ProtocolDef
) -> InteractionSummary | None:
    """Re-screen the current list for the protocol's agent and route (a stored screen of an
    unchanged list is reused). Unrecognised and not-reviewed names are unknown, not safe; a
    screen that did not run is None (the pre-dose check holds: not screened). The findings are
    carried with their rules, so label-named interactions are recognised."""
    out, _reused, names = screen_current(
        db,
        actor,
        patient,
        agent=protocol.agent,
        route=protocol.route,  # type: ignore[arg-type]
    )
    if not out.screened:
        return None
    unknown = [str(u["input"]) for u in out.unrecognized]
    unknown += [f"{n['input']} (not reviewed)" for n in out.not_reviewed]
    medicines = len(names) + len(out.stopped_screened)
    return InteractionSummary.of_findings(medicines, out.findings, unknown, out.screen_id)


def start_session(db: Session, actor: Actor, session_id: int, check: PreCheck) -> SessionOut:
    """Apply the pre-dose checks and start the session. The worst band decides: proceed;
    caution needs an acknowledgement; hold needs a prescriber's override with a reason;
    refuse (blood pressure, a contraindicated combination, a dose too soon where the protocol
    allows no override, open risk flags, no signed eligible review or consent) cannot be
    overridden. A critical pre-dose reading needs a prescriber; a label-named interaction needs
    the monitoring change written down; a start refused earlier today needs acknowledging.
    The checks are stored as decided; a refusal is recorded on the session too."""
    try:
        return _start_session(db, actor, session_id, check)
    except (StartRefused, StartNeedsPrescriber) as exc:
        record_refusal(db, actor, session_id, "start_refused", exc.message, exc.record)
        raise


def _plan_text(value: str | None) -> str:
    return " ".join((value or "").split())


def _start_session(db: Session, actor: Actor, session_id: int, check: PreCheck) -> SessionOut:
    with audited(db, actor, "session.start") as note:
        require(actor, Permission.SESSION_WRITE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.status != "scheduled":
            raise InvalidInput(
                "status", f"The session is {row.status}; only a scheduled one starts."
            )
        readings = check.model_dump(include=set(READINGS))
        problems = validate_vitals(readings)
        if problems:
            raise InvalidInput(problems[0].field, problems[0].text)
        settings = effective_settings(db, row.clinic_id)
        try:
            gate = bp_gate(check.systolic, check.diastolic, settings.monitoring)
        except VitalSignError as exc:
            raise InvalidInput(exc.field, str(exc)) from None
        patient = db.get(Patient, row.patient_id)
        assert patient is not None
        protocol = protocol_of(row)
        summary = _interaction_summary(db, actor, patient, protocol)
        tz = settings.timezone
        now = utcnow()
        checks = assess_prechecks(
            protocol,
            fasting=check.fasting,
            escort=check.escort,
            pregnancy=check.pregnancy,
            sex=patient.sex,
            age_years=age_on(patient.date_of_birth, now.astimezone(ZoneInfo(tz)).date()),
            interactions=summary,
            interval=interval_for(db, row, now, tz),
            risk_flags=open_flags(db, row.clinic_id, [row.patient_id]).get(row.patient_id, ()),
            risk_decisions=session_decisions(db, row.id),
            refusals_today=refusals_today(db, row, tz),
            programme=programme_status(db, row.patient_id),
            readings=readings,
            monitoring=settings.monitoring,
            tz=tz,
        )
        band = worst(gate.band, checks.band)
        record = {
            "readings": readings,
            "gate": gate.to_json_dict(),
            "prechecks": checks.to_json_dict(),
            "band": band,
        }
        refused = ([gate.reasons[0].text] if gate.band == "refuse" else []) + [
            c.text for c in checks.checks if c.band == "refuse"
        ]
        if refused:
            codes = (["bp_refuse"] if gate.band == "refuse" else []) + [
                refusal_code(c.id, c.outcome) for c in checks.checks if c.band == "refuse"
            ]
            first = (
                "systolic"
                if gate.band == "refuse"
                else next(c.id for c in checks.checks if c.band == "refuse")
            )
            raise StartRefused(
                first,
                f"Do not dose: {' '.join(refused)}",
                {**record, "code": codes[0], "codes": codes},
            )
        reason = check.override_reason or None

        def texts(level: str) -> str:
            found = [gate.reasons[0].text] if gate.band == level else []
            return " ".join(found + [c.text for c in checks.checks if c.band == level])

        if band == "hold":
            # A blood-pressure hold that does not end in a start is a refusal on the record.
            bp_hold = {**record, "code": "bp_hold", "codes": ["bp_hold"]}
            if not actor.can(Permission.SESSION_OVERRIDE):
                message = (
                    f"{texts('hold')} Only a prescriber can override a hold: ask one to review "
                    "and start the session."
                )
                if gate.band == "hold":
                    raise StartNeedsPrescriber(message, bp_hold)
                raise Forbidden(message)
            if not reason or len(reason) < 10:
                message = f"{texts('hold')} A prescriber gives the override reason."
                if gate.band == "hold":
                    raise StartRefused("override_reason", message, bp_hold)
                raise InvalidInput("override_reason", message)
        if checks.needs("acknowledge_refusal") and not check.acknowledge_refusal:
            raise InvalidInput(
                "acknowledge_refusal",
                f"{checks.check('earlier_refusal').text} Acknowledge it to start.",
            )
        plan = _plan_text(check.monitoring_plan) or None
        if checks.needs("monitoring_plan") and (plan is None or len(plan) < 10):
            raise InvalidInput(
                "monitoring_plan",
                f"{checks.check('interactions').text} Write down the monitoring change "
                "(at least 10 characters), e.g. 'BP every 5 min for the first 40 min'.",
            )
        cautions = texts("caution")
        if cautions and not check.acknowledge_caution:
            raise InvalidInput("acknowledge_caution", f"{cautions} Acknowledge to proceed.")
        interval = checks.check("dose_interval")
        row.baseline = readings
        row.gate = gate.to_json_dict()
        row.gate_override_reason = reason if band == "hold" else None
        row.prechecks = {
            **checks.to_json_dict(),
            "overall": band,
            "screen_id": summary.screen_id if summary else None,
            "acknowledged": bool(check.acknowledge_caution) and band != "proceed",
            "settings_version": settings.version,
            "monitoring_plan": plan if checks.needs("monitoring_plan") else None,
            "acknowledged_refusal": checks.needs("acknowledge_refusal"),
            # A dose inside the interval, overridden by the prescriber who started it.
            "interval_override": reason if interval.band == "hold" else None,
        }
        row.status = "in_progress"
        row.started_at = now
        save(db)
        add_event(
            db,
            actor,
            row,
            "started",
            f"Blood pressure {check.systolic:g}/{check.diastolic:g}: {gate.band}; checks: {band}"
            + (f". Monitoring change: {plan}" if row.prechecks["monitoring_plan"] else ""),
            band=band,
            gate=gate.band,
            readings=readings,
            monitoring_plan=row.prechecks["monitoring_plan"],
        )
        note.detail = {"session_id": row.id, "gate": gate.band, "prechecks": checks.band}
        return SessionOut.model_validate(row)


# The refusal code of each check that can refuse a start (for the record and the hazard log).
REFUSE_CODES = {
    "interactions": "interaction_contraindicated",
    "dose_interval": "interval_too_short",
    "risk_flags": "risk_flags_open",
    "risk_flags/deferred": "risk_decision_deferred",
    "programme": "programme_not_ready",
}


def refusal_code(check_id: str, outcome: str | None) -> str:
    """The code a refusing check is recorded with; a check not listed keeps its own id."""
    return REFUSE_CODES.get(f"{check_id}/{outcome}") or REFUSE_CODES.get(check_id, check_id)


def alert_row(
    clinic_id: int, session_id: int, vital_sample_id: int, raised_at: datetime, alert: Alert
) -> SessionAlert:
    """The stored form of an alert, with the rule's sources and knowledge version."""
    return SessionAlert(
        clinic_id=clinic_id,
        session_id=session_id,
        vital_sample_id=vital_sample_id,
        raised_at=raised_at,
        code=alert.code,
        severity=alert.severity,
        field=alert.field,
        value=alert.value,
        threshold=alert.threshold,
        text=alert.text,
        sources=list(alert.sources),
        knowledge_version=alert.knowledge_version,
    )


def ingest_vitals(db: Session, actor: Actor, session_id: int, batch: VitalsBatch) -> IngestResult:
    """Store every plausible sample of a batch, report each impossible one by index and field,
    skip re-sent ones, and raise alerts against the session's baseline. One transaction."""
    with audited(db, actor, "session.vitals") as note:
        require(actor, Permission.SESSION_WRITE)
        # The session and its clinic's settings in one round trip: a device sends often.
        row = (
            db.connection()
            .execute(
                _SESSION_AND_SETTINGS, {"session_id": session_id, "clinic_id": actor.clinic_id}
            )
            .first()
        )
        if row is None:
            raise NotFound(f"No session {session_id} in your clinic.")
        note.patient_id = row.patient_id
        _refuse_signed(row)
        if row.status not in RECORDING:
            raise InvalidInput("status", f"The session is {row.status}; vitals are not recorded.")
        monitoring = settings_from(row.timezone, row.settings, row.settings_version).monitoring
        now = utcnow()
        baseline = VitalSigns.coerce(row.baseline or {})
        rejected: list[Rejected] = []
        accepted: list[tuple[int, dict[str, Any]]] = []
        in_batch: set[str] = set()
        duplicates: list[int] = []
        for index, sample in enumerate(batch.samples):
            if sample.sample_key and sample.sample_key in in_batch:
                duplicates.append(index)
                continue
            readings = {name: getattr(sample, name) for name in READINGS}
            problem = _sample_problem(index, sample, readings, now)
            if problem:
                rejected.extend(problem)
                continue
            if sample.sample_key:
                in_batch.add(sample.sample_key)
            values = {"measured_at": sample.measured_at, "sample_key": sample.sample_key}
            accepted.append((index, {**values, **readings}))
        # What every sample of the batch shares.
        same = {
            "clinic_id": row.clinic_id,
            "session_id": row.id,
            "received_at": now,
            "source": batch.source,
            "recorded_by": actor.user_id,
        }
        # Re-sent samples (a key already stored) are skipped by the database itself, so two
        # devices sending the same batch at once store it once.
        table = VitalSample.__table__
        # In key order: two overlapping batches inserted at once (one sent newest first) then
        # wait on each other's keys in one order, never in a cycle (a PostgreSQL deadlock).
        keyed = sorted(
            (values for _, values in accepted if values["sample_key"] is not None),
            key=lambda values: values["sample_key"],
        )
        unkeyed = [values for _, values in accepted if values["sample_key"] is None]
        by_key = {
            key: vital_id
            for vital_id, key in insert_new(
                db,
                table,  # type: ignore[arg-type]
                keyed,
                returning=("id", "sample_key"),
                same=same,
            )
        }
        # Without a key a sample is always new; ids come back in the order sent.
        plain_ids = iter(
            db.scalars(
                insert(table).returning(table.c.id, sort_by_parameter_order=True),
                [{**same, **values} for values in unkeyed],
            )
            if unkeyed
            else []
        )
        stored: list[tuple[int, dict[str, Any]]] = []
        for index, values in accepted:
            key = values["sample_key"]
            if key is None:
                stored.append((next(plain_ids), values))
            elif key in by_key:
                stored.append((by_key[key], values))
            else:
                duplicates.append(index)
        # Every stored sample passed validate_vitals above (_sample_problem).
        found = alerts_for_samples(
            [{k: values[k] for k in READINGS} for _, values in stored],
            baseline,
            monitoring,
            checked=True,
        )
        raised = [
            alert_row(row.clinic_id, row.id, vital_id, now, a)
            for (vital_id, _), sample_alerts in zip(stored, found, strict=True)
            for a in sample_alerts
        ]
        db.add_all(raised)
        db.flush()
        note.detail = {
            "session_id": row.id,
            "stored": len(stored),
            "duplicates": len(duplicates),
            "rejected": len(rejected),
            "alerts": [a.code for a in raised],
        }
        return IngestResult(
            stored=[vital_id for vital_id, _ in stored],
            duplicates=sorted(duplicates),
            rejected=rejected,
            alerts=[AlertOut.model_validate(a) for a in raised],
        )


def _sample_problem(
    index: int, sample: VitalIn, readings: dict[str, Any], now: datetime
) -> list[Rejected]:
    """Why a sample cannot be stored (empty, from the future, impossible values), or []."""
    if all(v is None for v in readings.values()):
        return [
            Rejected(index=index, field="samples", code="empty", text="No reading in the sample.")
        ]
    if sample.measured_at > now + CLOCK_SKEW:
        return [
            Rejected(
                index=index, field="measured_at", code="future", text="The time is in the future."
            )
        ]
    return [
        Rejected(index=index, field=p.field, code=p.code, text=p.text)
        for p in validate_vitals(readings)
    ]


def get_session(db: Session, actor: Actor, session_id: int) -> SessionDetail:
    with audited(db, actor, "session.view") as note:
        require(actor, Permission.PATIENT_READ)
        row = _scoped_session(db, actor, session_id)
        note.patient_id = row.patient_id
        vitals = db.scalars(
            select(VitalSample)
            .where(VitalSample.session_id == row.id)
            .order_by(VitalSample.measured_at, VitalSample.id)
        ).all()
        found = db.scalars(
            select(SessionAlert)
            .where(SessionAlert.session_id == row.id)
            .order_by(SessionAlert.raised_at, SessionAlert.id)
        ).all()
        events = db.scalars(
            select(SessionEvent)
            .where(SessionEvent.session_id == row.id)
            .order_by(SessionEvent.at, SessionEvent.id)
        ).all()
        detail = SessionDetail.model_validate(row)
        detail.vitals = [VitalOut.model_validate(v) for v in vitals]
        detail.alerts = [AlertOut.model_validate(a) for a in found]
        detail.events = [EventOut.model_validate(e) for e in events]
        detail.patient = PatientBrief.model_validate(db.get(Patient, row.patient_id))
        return detail


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str | None = Field(None, max_length=2000)


def pause_session(db: Session, actor: Actor, session_id: int, data: ReasonIn) -> SessionOut:
    """Pause dosing (e.g. to let blood pressure settle); monitoring goes on."""
    with audited(db, actor, "session.pause") as note:
        require(actor, Permission.SESSION_WRITE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.status != "in_progress":
            raise InvalidInput("status", f"The session is {row.status}; only a running one pauses.")
        reason = _reason(data.reason, "reason", "the pause")
        row.status = "paused"
        save(db)
        add_event(db, actor, row, "paused", reason)
        note.detail = {"session_id": row.id}
        return SessionOut.model_validate(row)


def resume_session(db: Session, actor: Actor, session_id: int, data: ReasonIn) -> SessionOut:
    with audited(db, actor, "session.resume") as note:
        require(actor, Permission.SESSION_WRITE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.status != "paused":
            raise InvalidInput("status", f"The session is {row.status}; only a paused one resumes.")
        row.status = "in_progress"
        save(db)
        add_event(db, actor, row, "resumed", data.reason or None)
        note.detail = {"session_id": row.id}
        return SessionOut.model_validate(row)


def stop_session(db: Session, actor: Actor, session_id: int, data: ReasonIn) -> SessionOut:
    """Stop dosing early, with the reason. Monitoring and the discharge checks still follow."""
    with audited(db, actor, "session.stop") as note:
        require(actor, Permission.SESSION_WRITE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.status not in ("in_progress", "paused"):
            raise InvalidInput("status", f"The session is {row.status}; it cannot be stopped.")
        reason = _reason(data.reason, "reason", "stopping early")
        now = utcnow()
        row.status = "stopped"
        row.end_reason = reason
        if row.dose_started_at is not None and row.dose_ended_at is None:
            row.dose_ended_at = now
        save(db)
        add_event(db, actor, row, "stopped", reason, at=now)
        note.detail = {"session_id": row.id}
        return SessionOut.model_validate(row)


def list_patient_sessions(db: Session, actor: Actor, patient_id: int) -> list[SessionOut]:
    with audited(db, actor, "session.list", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        rows = db.scalars(
            select(TreatmentSession)
            .where(TreatmentSession.patient_id == patient.id)
            .order_by(TreatmentSession.scheduled_at, TreatmentSession.id)
        ).all()
        return [SessionOut.model_validate(r) for r in rows]


class WorklistSession(BaseModel):
    """What a worklist row shows of a session: when, which protocol, how far it has got."""

    id: int
    patient_id: int
    protocol_id: str
    number: int | None
    scheduled_at: datetime
    status: str
    dose_started_at: datetime | None
    dose_ended_at: datetime | None
    signed_at: datetime | None


class WorklistPatient(BaseModel):
    id: int
    mrn: str
    family_name: str
    given_name: str


class WorklistRiskFlag(BaseModel):
    """An open suicide-risk flag of the row's patient, in the patient's words."""

    level: str
    words: str
    at: datetime


class WorklistItem(BaseModel):
    session: WorklistSession
    patient: WorklistPatient
    open_alerts: int
    risk_flags: list[WorklistRiskFlag] = Field(
        default=[], description="Open risk flags of the patient, critical first"
    )


# Only the columns a row shows: a full session carries its baseline, gate, pre-checks and
# discharge as JSON, which a page of 50 rows would load and validate for nothing.
_WORKLIST_SESSION = tuple(getattr(TreatmentSession, name) for name in WorklistSession.model_fields)
_WORKLIST_PATIENT = tuple(
    getattr(Patient, name).label(f"patient_{name}") for name in WorklistPatient.model_fields
)


class WorklistPage(BaseModel):
    items: list[WorklistItem]
    next_cursor: str | None
    later_alerts: int = Field(
        description="Alerts to acknowledge on the sessions of the pages after this one"
    )


WORKLIST_PAGE = 50


def worklist(
    db: Session, actor: Actor, day: date, *, cursor: str | None = None, limit: int = WORKLIST_PAGE
) -> WorklistPage:
    """The clinic's dosing sessions of ``day`` (its local date) and every session still
    running or waiting for sign-off, whatever its date, keyset-paged in time order. Alerts
    are counted over the whole list, so an alert on a later page is never out of sight; each
    row carries its patient's open risk flags. Four queries, whatever the count."""
    with audited(db, actor, "session.worklist") as note:
        require(actor, Permission.PATIENT_READ)
        limit = max(1, min(limit, 200))
        zone = ZoneInfo(effective_settings(db, actor.clinic_id).timezone)
        start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
        end = start + timedelta(days=1)
        listed = (TreatmentSession.clinic_id == actor.clinic_id) & (
            ((TreatmentSession.scheduled_at >= start) & (TreatmentSession.scheduled_at < end))
            | (TreatmentSession.status.in_(RECORDING) & TreatmentSession.signed_at.is_(None))
        )
        stmt = (
            select(*_WORKLIST_SESSION, *_WORKLIST_PATIENT)
            .join(Patient, Patient.id == TreatmentSession.patient_id)
            .where(listed)
        )
        if cursor:
            stmt = stmt.where(
                after_time_cursor(cursor, TreatmentSession.scheduled_at, TreatmentSession.id)
            )
        rows = db.execute(
            stmt.order_by(TreatmentSession.scheduled_at, TreatmentSession.id).limit(limit + 1)
        ).all()
        page, more = rows[:limit], len(rows) > limit
        # Alerts are few beside sessions: every listed session's, from here to the end.
        alerts = db.execute(
            select(SessionAlert.session_id, SessionAlert.id, TreatmentSession.scheduled_at)
            .join(TreatmentSession, TreatmentSession.id == SessionAlert.session_id)
            .where(listed, SessionAlert.clinic_id == actor.clinic_id)
        ).all()
        acked = acknowledged_alerts(db, sorted({a.session_id for a in alerts}))
        on_page = {r.id for r in page}
        counts: dict[int, int] = {}
        later = 0
        last = (page[-1].scheduled_at, page[-1].id) if more else None
        for a in alerts:
            if a.id in acked:
                continue
            if a.session_id in on_page:
                counts[a.session_id] = counts.get(a.session_id, 0) + 1
            elif last is not None and (a.scheduled_at, a.session_id) > last:
                later += 1
        flags = open_flags(db, actor.clinic_id, {r.patient_id for r in page})
        note.detail = {"day": day.isoformat(), "sessions": len(page)}
        return WorklistPage(
            items=[
                WorklistItem(
                    session=WorklistSession(
                        **{name: r._mapping[name] for name in WorklistSession.model_fields}
                    ),
                    patient=WorklistPatient(
                        **{
                            name: r._mapping[f"patient_{name}"]
                            for name in WorklistPatient.model_fields
                        }
                    ),
                    open_alerts=counts.get(r.id, 0),
                    risk_flags=[
                        WorklistRiskFlag(level=f.level, words=f.words, at=f.at)
                        for f in flags.get(r.patient_id, ())
                    ],
                )
                for r in page
            ],
            next_cursor=encode_time_cursor(*last) if last else None,
            later_alerts=later,
        )


def acknowledged_alerts(db: Session, session_ids: list[int]) -> set[int]:
    """Ids of the alerts of these sessions that someone acknowledged."""
    if not session_ids:
        return set()
    details = db.scalars(
        select(SessionEvent.detail).where(
            SessionEvent.session_id.in_(session_ids), SessionEvent.kind == "alert_ack"
        )
    )
    return {int(d["alert_id"]) for d in details if d and "alert_id" in d}
