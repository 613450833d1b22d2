"""Rating scales on the chart: staff-entered and patient self-report, urgent flags."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ketacare.app import outcome_summaries
from ketacare.app.audit import audited
from ketacare.app.errors import InvalidInput, NotFound
from ketacare.app.patients import _scoped_patient
from ketacare.app.permissions import Actor, Permission, Role, require
from ketacare.clinical.instruments import AnswerError, Score, score
from ketacare.store.models import Assessment, FlagAcknowledgement, Patient, SelfReportLink
from ketacare.store.types import utcnow

# Instruments a patient may answer alone; CADSS, MOAA/S and C-SSRS are clinician-administered.
SELF_REPORT_INSTRUMENTS = ("asrs", "phq9", "gad7")
STAFF_INSTRUMENTS = ("asrs", "phq9", "gad7", "cadss", "moaas", "cssrs")


class AssessmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instrument: str = Field(description="asrs, phq9, gad7, cadss, moaas or cssrs")
    answers: list[int] = Field(description="Item answers in form order")
    administered_at: datetime | None = Field(default=None, description="Defaults to now (UTC)")


class AssessmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    instrument: str
    administered_at: datetime
    source: str
    answers: list[int]
    total: int
    band: str | None
    positive_screen: bool | None
    urgent: bool
    result: dict[str, Any]
    knowledge_version: str


class UrgentFlag(BaseModel):
    assessment_id: int
    instrument: str
    administered_at: datetime
    source: str
    flags: list[dict[str, Any]]


def assessment_row(
    patient: Patient,
    result: Score,
    *,
    source: str,
    at: datetime,
    recorded_by: int | None,
    session_id: int | None = None,
) -> Assessment:
    """A rating as the records hold it: every answer and the score as computed."""
    return Assessment(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        instrument=result.instrument,
        administered_at=at,
        source=source,
        recorded_by=recorded_by,
        answers=list(result.answers),
        total=result.total,
        band=result.band,
        positive_screen=result.positive_screen,
        urgent=result.urgent,
        result=result.to_json_dict(),
        knowledge_version=result.knowledge_version,
        session_id=session_id,
    )


def _store(
    db: Session,
    patient: Patient,
    instrument: str,
    answers: list[int],
    *,
    source: str,
    at: datetime,
    recorded_by: int | None,
    session_id: int | None = None,
) -> Assessment:
    try:
        result = score(instrument, answers)
    except AnswerError as exc:
        raise InvalidInput(exc.field, exc.message) from None
    row = assessment_row(
        patient, result, source=source, at=at, recorded_by=recorded_by, session_id=session_id
    )
    db.add(row)
    db.flush()
    if session_id is None:
        # A rating between sessions can be a baseline or the latest follow-up.
        outcome_summaries.refresh(db, [patient.id])
    return row


def record_assessment(
    db: Session, actor: Actor, patient_id: int, data: AssessmentCreate
) -> AssessmentOut:
    with audited(db, actor, "assessment.create", patient_id=patient_id) as note:
        require(actor, Permission.ASSESSMENT_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        if data.instrument not in STAFF_INSTRUMENTS:
            raise InvalidInput("instrument", f"Unknown instrument {data.instrument!r}.")
        now = utcnow()
        at = data.administered_at or now
        if at.tzinfo is None:
            raise InvalidInput("administered_at", "Give a time zone (e.g. ...T10:00:00Z).")
        if at > now + timedelta(minutes=5):
            raise InvalidInput("administered_at", "The time is in the future.")
        row = _store(
            db,
            patient,
            data.instrument,
            data.answers,
            source="staff",
            at=at,
            recorded_by=actor.user_id,
        )
        note.detail = {"assessment_id": row.id, "instrument": row.instrument, "urgent": row.urgent}
        return AssessmentOut.model_validate(row)


def list_assessments(db: Session, actor: Actor, patient_id: int) -> list[AssessmentOut]:
    with audited(db, actor, "assessment.list", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        rows = db.scalars(
            select(Assessment)
            .where(Assessment.patient_id == patient.id)
            .order_by(Assessment.administered_at.desc(), Assessment.id.desc())
        ).all()
        return [AssessmentOut.model_validate(r) for r in rows]


# Built once: the chart page runs it on every view.
_OPEN_URGENT = (
    select(Assessment)
    .outerjoin(FlagAcknowledgement, FlagAcknowledgement.assessment_id == Assessment.id)
    .where(
        Assessment.patient_id == bindparam("patient_id"),
        Assessment.urgent.is_(True),
        FlagAcknowledgement.id.is_(None),
    )
    .order_by(Assessment.administered_at.desc())
)


def open_urgent_flags(db: Session, patient_id: int) -> list[UrgentFlag]:
    """Urgent flags no clinician has acknowledged yet (query helper; callers audit)."""
    rows = db.scalars(_OPEN_URGENT, {"patient_id": patient_id}).all()
    return [
        UrgentFlag(
            assessment_id=r.id,
            instrument=r.instrument,
            administered_at=r.administered_at,
            source=r.source,
            flags=[f for f in r.result.get("flags", []) if f.get("severity") == "urgent"],
        )
        for r in rows
    ]


def acknowledge_flag(
    db: Session, actor: Actor, patient_id: int, assessment_id: int, note_text: str
) -> None:
    with audited(db, actor, "assessment.flag_acknowledge", patient_id=patient_id) as note:
        require(actor, Permission.ASSESSMENT_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        note_text = note_text.strip()
        if not 3 <= len(note_text) <= 2000:
            raise InvalidInput("note", "Say what was done (3-2000 characters).")
        row = db.scalar(
            select(Assessment).where(
                Assessment.id == assessment_id,
                Assessment.patient_id == patient.id,
                Assessment.urgent.is_(True),
            )
        )
        if row is None:
            raise NotFound("No urgent flag with that id on this chart.")
        if db.scalar(
            select(FlagAcknowledgement.id).where(FlagAcknowledgement.assessment_id == row.id)
        ):
            raise InvalidInput("assessment_id", "This flag was already acknowledged.")
        db.add(
            FlagAcknowledgement(
                clinic_id=patient.clinic_id,
                assessment_id=row.id,
                acknowledged_by=actor.user_id,
                note=note_text,
            )
        )
        note.detail = {"assessment_id": row.id}


# --- patient self-report --------------------------------------------------------------------


class SelfReportInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instruments: list[str] = Field(min_length=1, max_length=3)
    valid_hours: int = Field(default=72, ge=1, le=14 * 24)


class SelfReportCreated(BaseModel):
    link_id: int
    token: str = Field(description="Shown once; the patient's link is /r/{token}")
    path: str
    instruments: list[str]
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_self_report_link(
    db: Session, actor: Actor, patient_id: int, data: SelfReportInvite
) -> SelfReportCreated:
    with audited(db, actor, "self_report.invite", patient_id=patient_id) as note:
        require(actor, Permission.SELF_REPORT_INVITE)
        patient = _scoped_patient(db, actor, patient_id)
        chosen = list(dict.fromkeys(data.instruments))
        for name in chosen:
            if name not in SELF_REPORT_INSTRUMENTS:
                raise InvalidInput(
                    "instruments",
                    f"{name!r} cannot be self-reported; choose from "
                    f"{', '.join(SELF_REPORT_INSTRUMENTS)}.",
                )
        token = secrets.token_urlsafe(32)  # 256 bits: cannot be guessed
        now = utcnow()
        row = SelfReportLink(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            token_hash=_hash(token),
            instruments=chosen,
            created_by=actor.user_id,
            created_at=now,
            expires_at=now + timedelta(hours=data.valid_hours),
        )
        db.add(row)
        db.flush()
        note.detail = {"link_id": row.id, "instruments": chosen}
        return SelfReportCreated(
            link_id=row.id,
            token=token,
            path=f"/r/{token}",
            instruments=chosen,
            expires_at=row.expires_at,
        )


class OpenLink(BaseModel):
    link_id: int
    clinic_id: int
    patient_id: int
    given_name: str
    instruments: list[str]
    expires_at: datetime


LINK_GONE = (
    "This questionnaire link has expired or was already used. Please ask the clinic for a new one."
)


def _patient_actor(link: SelfReportLink) -> Actor:
    return Actor(clinic_id=link.clinic_id, role=Role.SYSTEM, label="patient-self-report")


def open_self_report(db: Session, token: str, *, now: datetime) -> OpenLink:
    """The questionnaire behind a link; NotFound when unknown, used or expired."""
    link = db.scalar(select(SelfReportLink).where(SelfReportLink.token_hash == _hash(token)))
    if link is None or link.used_at is not None or link.expires_at <= now:
        db.rollback()
        raise NotFound(LINK_GONE)
    with audited(db, _patient_actor(link), "self_report.open", patient_id=link.patient_id):
        patient = db.get(Patient, link.patient_id)
        assert patient is not None
        return OpenLink(
            link_id=link.id,
            clinic_id=link.clinic_id,
            patient_id=link.patient_id,
            given_name=patient.given_name,
            instruments=list(link.instruments),
            expires_at=link.expires_at,
        )


def submit_self_report(
    db: Session, token: str, answers: dict[str, list[int]], *, now: datetime
) -> list[AssessmentOut]:
    """Store the patient's answers and spend the link, in one transaction: a link answers once."""
    link = db.scalar(select(SelfReportLink).where(SelfReportLink.token_hash == _hash(token)))
    if link is None or link.used_at is not None or link.expires_at <= now:
        db.rollback()
        raise NotFound(LINK_GONE)
    with audited(
        db, _patient_actor(link), "self_report.submit", patient_id=link.patient_id
    ) as note:
        missing = [i for i in link.instruments if i not in answers]
        if missing:
            raise InvalidInput(missing[0], "Please answer every question.")
        # Spend the link first; a concurrent second submission matches no row and stops here.
        spent = db.execute(
            update(SelfReportLink)
            .where(SelfReportLink.id == link.id, SelfReportLink.used_at.is_(None))
            .values(used_at=now)
        )
        if spent.rowcount != 1:
            raise NotFound(LINK_GONE)
        patient = db.get(Patient, link.patient_id)
        assert patient is not None
        rows = [
            _store(db, patient, name, answers[name], source="self_report", at=now, recorded_by=None)
            for name in link.instruments
        ]
        note.detail = {
            "link_id": link.id,
            "assessment_ids": [r.id for r in rows],
            "urgent": any(r.urgent for r in rows),
        }
        return [AssessmentOut.model_validate(r) for r in rows]
