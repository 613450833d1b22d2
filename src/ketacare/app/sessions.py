"""Monitored dosing sessions: pre-dose blood-pressure gate, vital signs (by hand or pushed by a
device in batches) and the alerts they raise."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app.audit import audited
from ketacare.app.errors import InvalidInput, NotFound
from ketacare.app.patients import _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.clinical.monitoring import (
    Alert,
    VitalSignError,
    VitalSigns,
    alerts,
    bp_gate,
    validate_vitals,
)
from ketacare.knowledge.protocol_defs import load_protocols
from ketacare.store.models import SessionAlert, TreatmentSession, VitalSample
from ketacare.store.types import utcnow

READINGS = ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate")
RECORDING = ("in_progress", "paused")
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
    """Pre-dose readings; the blood pressure decides the gate."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    systolic: float
    diastolic: float
    heart_rate: float | None = None
    spo2: float | None = None
    respiratory_rate: float | None = None
    acknowledge_caution: bool = False
    override_reason: str | None = Field(None, max_length=2000)


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
    protocol_id: str
    scheduled_at: datetime
    status: str
    baseline: dict[str, Any] | None
    gate: dict[str, Any] | None
    gate_override_reason: str | None
    started_at: datetime | None
    ended_at: datetime | None
    version: int


class SessionDetail(SessionOut):
    vitals: list[VitalOut] = []
    alerts: list[AlertOut] = []


def _scoped_session(db: Session, actor: Actor, session_id: int) -> TreatmentSession:
    row = db.scalar(
        select(TreatmentSession).where(
            TreatmentSession.id == session_id, TreatmentSession.clinic_id == actor.clinic_id
        )
    )
    if row is None:
        raise NotFound(f"No session {session_id} in your clinic.")
    return row


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


def start_session(db: Session, actor: Actor, session_id: int, check: PreCheck) -> SessionOut:
    """Apply the blood-pressure gate to the pre-dose readings and start the session:
    proceed; caution needs an acknowledgement; hold needs a prescriber's override with a
    reason; refuse cannot be overridden."""
    with audited(db, actor, "session.start") as note:
        require(actor, Permission.SESSION_WRITE)
        row = _scoped_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.status != "scheduled":
            raise InvalidInput(
                "status", f"The session is {row.status}; only a scheduled one starts."
            )
        readings = check.model_dump(include=set(READINGS))
        problems = validate_vitals(readings)
        if problems:
            raise InvalidInput(problems[0].field, problems[0].text)
        try:
            gate = bp_gate(check.systolic, check.diastolic)
        except VitalSignError as exc:
            raise InvalidInput(exc.field, str(exc)) from None
        reason = check.override_reason or None
        text = gate.reasons[0].text
        if gate.band == "refuse":
            raise InvalidInput("systolic", f"Do not dose: {text}")
        if gate.band == "hold":
            require(actor, Permission.SESSION_OVERRIDE)
            if not reason or len(reason) < 10:
                raise InvalidInput("override_reason", f"{text} Give the override reason.")
        if gate.band == "caution" and not check.acknowledge_caution:
            raise InvalidInput("acknowledge_caution", f"{text} Acknowledge to proceed.")
        row.baseline = readings
        row.gate = gate.to_json_dict()
        row.gate_override_reason = reason if gate.band == "hold" else None
        row.status = "in_progress"
        row.started_at = utcnow()
        db.flush()
        note.detail = {"session_id": row.id, "gate": gate.band}
        return SessionOut.model_validate(row)


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
        row = _scoped_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.status not in RECORDING:
            raise InvalidInput("status", f"The session is {row.status}; vitals are not recorded.")
        now = utcnow()
        keys = [s.sample_key for s in batch.samples if s.sample_key]
        seen = set(
            db.scalars(
                select(VitalSample.sample_key).where(
                    VitalSample.session_id == row.id, VitalSample.sample_key.in_(keys)
                )
            )
            if keys
            else []
        )
        baseline = VitalSigns.coerce(row.baseline or {})
        stored: list[VitalSample] = []
        duplicates: list[int] = []
        rejected: list[Rejected] = []
        pending: list[tuple[VitalSample, list[Any]]] = []
        for index, sample in enumerate(batch.samples):
            if sample.sample_key and sample.sample_key in seen:
                duplicates.append(index)
                continue
            readings = sample.model_dump(include=set(READINGS))
            if all(v is None for v in readings.values()):
                rejected.append(
                    Rejected(
                        index=index, field="samples", code="empty", text="No reading in the sample."
                    )
                )
                continue
            if sample.measured_at > now + CLOCK_SKEW:
                rejected.append(
                    Rejected(
                        index=index,
                        field="measured_at",
                        code="future",
                        text="The time is in the future.",
                    )
                )
                continue
            problems = validate_vitals(readings)
            if problems:
                rejected.extend(
                    Rejected(index=index, field=p.field, code=p.code, text=p.text) for p in problems
                )
                continue
            if sample.sample_key:
                seen.add(sample.sample_key)
            vital = VitalSample(
                clinic_id=row.clinic_id,
                session_id=row.id,
                measured_at=sample.measured_at,
                received_at=now,
                source=batch.source,
                sample_key=sample.sample_key,
                recorded_by=actor.user_id,
                **readings,
            )
            stored.append(vital)
            pending.append((vital, alerts(readings, baseline)))
        db.add_all(stored)
        db.flush()
        raised = [
            alert_row(row.clinic_id, row.id, vital.id, now, a)
            for vital, found in pending
            for a in found
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
            stored=[v.id for v in stored],
            duplicates=duplicates,
            rejected=rejected,
            alerts=[AlertOut.model_validate(a) for a in raised],
        )


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
        detail = SessionDetail.model_validate(row)
        detail.vitals = [VitalOut.model_validate(v) for v in vitals]
        detail.alerts = [AlertOut.model_validate(a) for a in found]
        return detail
