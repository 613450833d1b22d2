"""Psychotherapy (CBT) sessions and the therapist's short structured note: schedule an ad-hoc
session, save a draft, sign it, amend a signed note, mark a session missed or cancelled, the
patient's list and the clinic's worklist, and whether each session fell inside the CBT window
after the infusion it follows.

A signed note is sealed by the database; a correction is a new signed row that points at the one
it amends (``amends_id``), and the chain's last row is the note in force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.exc import StaleDataError

from ketacare.app.audit import audited
from ketacare.app.clinic_settings import effective_settings
from ketacare.app.errors import Conflict, InvalidInput, NotFound
from ketacare.app.paging import after_time_cursor, encode_time_cursor
from ketacare.app.patients import _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.therapy_defs import TherapyDef, load_therapy
from ketacare.store.models import Patient, TherapySession, TreatmentSession, User
from ketacare.store.types import utcnow

PLAN_KEY_PREFIX = "cbt-"
MINUTES = (1, 240)
WORKLIST_DAYS = 7
# A note is signed once the session has taken place; allow for a clock running a little fast.
SIGN_EARLY = timedelta(minutes=15)
# Keys of the stored note that are about the record, not the session itself.
META_KEYS = ("cancel_reason", "amend_reason", "window", "knowledge_version")


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2026-01-05T09:30:00Z)")
    return value


def _vocab() -> TherapyDef:
    return load_therapy()


# --- input -------------------------------------------------------------------------------------


class TherapyCreate(BaseModel):
    """An ad-hoc session; course planning creates the planned ones."""

    model_config = ConfigDict(extra="forbid")

    scheduled_at: datetime = Field(description="Start, with time zone")
    follows_session_id: int | None = Field(
        None, ge=1, description="The dosing session this one follows (the same patient's)"
    )
    minutes: int | None = Field(
        None, ge=MINUTES[0], le=MINUTES[1], description="Planned length; the clinic's default"
    )

    _tz = field_validator("scheduled_at")(_aware)


class RiskCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    asked: bool | None = Field(None, description="Was the patient asked about suicidal thoughts?")
    result: str | None = Field(None, max_length=40, description="A code of therapy.yaml")
    action: str | None = Field(
        None, max_length=2000, description="What was done under the suicide-risk pathway"
    )
    not_asked_reason: str | None = Field(None, max_length=500)

    _blank = field_validator("result", "action", "not_asked_reason", mode="before")(_blank_to_none)

    @field_validator("result")
    @classmethod
    def _known_result(cls, value: str | None) -> str | None:
        codes = _vocab().risk_codes()
        if value is not None and value not in codes:
            raise ValueError(f"unknown risk result {value!r}; use one of: {', '.join(codes)}")
        return value


class TherapyNote(BaseModel):
    """The therapist's structured note. A draft may be incomplete; signing needs attendance and
    the risk check answered (and the minutes when the patient attended)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    attendance: str | None = Field(None, max_length=40, description="A code of therapy.yaml")
    minutes: int | None = Field(None, ge=MINUTES[0], le=MINUTES[1])
    techniques: list[str] = Field(default_factory=list, max_length=20)
    focus: str | None = Field(None, max_length=40, description="The main technique worked on")
    worked_on: str | None = Field(None, max_length=4000, description="What was worked on")
    homework: str | None = Field(None, max_length=2000)
    patient_words: str | None = Field(
        None, max_length=2000, description="The patient's own words on the last infusion"
    )
    risk_check: RiskCheckIn = Field(default_factory=RiskCheckIn)
    plan_next: str | None = Field(None, max_length=2000, description="Plan for the next session")

    _blank = field_validator(
        "attendance",
        "minutes",
        "focus",
        "worked_on",
        "homework",
        "patient_words",
        "plan_next",
        mode="before",
    )(_blank_to_none)

    @field_validator("attendance")
    @classmethod
    def _known_attendance(cls, value: str | None) -> str | None:
        codes = _vocab().attendance_codes()
        if value is not None and value not in codes:
            raise ValueError(f"unknown attendance {value!r}; use one of: {', '.join(codes)}")
        return value

    @field_validator("techniques")
    @classmethod
    def _known_techniques(cls, value: list[str]) -> list[str]:
        codes = _vocab().technique_codes()
        unknown = [c for c in value if c not in codes]
        if unknown:
            raise ValueError(
                f"unknown technique {unknown[0]!r}; use codes from the list: {', '.join(codes)}"
            )
        return list(dict.fromkeys(value))

    @field_validator("focus")
    @classmethod
    def _known_focus(cls, value: str | None) -> str | None:
        codes = _vocab().technique_codes()
        if value is not None and value not in codes:
            raise ValueError(f"unknown focus {value!r}; choose one of the techniques")
        return value


class NoteUpdate(TherapyNote):
    version: int = Field(ge=1, description="The version you read; a stale one is refused (409)")


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="The version you read; a stale one is refused (409)")


class AmendmentIn(TherapyNote):
    reason: str = Field(min_length=3, max_length=1000, description="Why the note is amended")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: Literal["missed", "cancelled"]
    reason: str = Field(min_length=3, max_length=1000)
    version: int = Field(ge=1)


# --- output ------------------------------------------------------------------------------------


class RiskCheckOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    asked: bool | None = None
    result: str | None = None
    action: str | None = None
    not_asked_reason: str | None = None


class NoteOut(BaseModel):
    """A stored note, read as recorded (no vocabulary check: a signed note is shown as it was)."""

    model_config = ConfigDict(extra="ignore")

    attendance: str | None = None
    minutes: int | None = None
    techniques: list[str] = []
    focus: str | None = None
    worked_on: str | None = None
    homework: str | None = None
    patient_words: str | None = None
    risk_check: RiskCheckOut = RiskCheckOut()
    plan_next: str | None = None


class WindowOut(BaseModel):
    """Whether a session falls inside the CBT window after the infusion it follows."""

    follows_session_id: int
    anchor: Literal["ended_at", "scheduled_at"] = Field(
        description="The infusion's end, or its scheduled time when no end is recorded"
    )
    anchor_at: datetime
    start_hours: int
    end_hours: int
    hours_after: float
    inside: bool
    text: str


class RiskFlag(BaseModel):
    result: str
    label: str
    text: str
    sources: list[str]


class PatientRef(BaseModel):
    id: int
    mrn: str
    family_name: str
    given_name: str


class InfusionRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    protocol_id: str
    scheduled_at: datetime
    ended_at: datetime | None
    status: str


class TherapyOut(BaseModel):
    id: int
    patient_id: int
    course_id: int | None
    plan_key: str | None
    follows_session_id: int | None
    scheduled_at: datetime
    minutes: int | None
    status: str
    note: NoteOut | None
    cancel_reason: str | None = None
    amend_reason: str | None = None
    therapist_id: int | None
    signed_at: datetime | None
    amends_id: int | None
    created_at: datetime
    version: int
    window: WindowOut | None
    urgent: RiskFlag | None


class TherapyEntry(BaseModel):
    """One session of the patient's list: the note in force and the versions it amends."""

    current: TherapyOut
    history: list[TherapyOut] = Field(description="Earlier versions, newest first")


class VersionOut(TherapyOut):
    therapist_name: str | None = None


class TherapyDetail(TherapyOut):
    patient: PatientRef
    follows: InfusionRef | None
    therapist_name: str | None
    current_id: int = Field(description="The chain's note in force (the latest amendment)")
    versions: list[VersionOut] = Field(description="The whole chain, oldest first")


class WorklistItem(BaseModel):
    id: int
    patient: PatientRef
    scheduled_at: datetime
    minutes: int | None
    plan_key: str | None
    follows_session_id: int | None
    draft: bool = Field(description="A draft note has been saved")
    overdue: bool = Field(description="Before today and still unsigned")
    window: WindowOut | None
    urgent: RiskFlag | None


class WorklistPage(BaseModel):
    items: list[WorklistItem]
    next_cursor: str | None
    until: datetime = Field(description="The end of the range (today and the next 7 days)")
    today_starts: datetime


# --- rules ---------------------------------------------------------------------------------------


def window_status(
    follows_session_id: int,
    therapy_at: datetime,
    infusion_ended_at: datetime | None,
    infusion_scheduled_at: datetime,
    start_hours: int,
    end_hours: int,
) -> WindowOut:
    """Hours from the infusion's end (or, with no end recorded, its scheduled time) to the
    therapy session; inside when start <= hours <= end, both ends included."""
    anchor: Literal["ended_at", "scheduled_at"] = (
        "ended_at" if infusion_ended_at is not None else "scheduled_at"
    )
    anchor_at = infusion_ended_at or infusion_scheduled_at
    delta = therapy_at - anchor_at
    inside = timedelta(hours=start_hours) <= delta <= timedelta(hours=end_hours)
    hours = delta.total_seconds() / 3600
    since = "the infusion ended" if anchor == "ended_at" else "the infusion's scheduled time"
    where = "Inside" if inside else "Outside"
    when = f"{hours:.1f} h after {since}" if hours >= 0 else f"{-hours:.1f} h before {since}"
    text = f"{where} the {start_hours}-{end_hours} h CBT window: {when}."
    return WindowOut(
        follows_session_id=follows_session_id,
        anchor=anchor,
        anchor_at=anchor_at,
        start_hours=start_hours,
        end_hours=end_hours,
        hours_after=round(hours, 2),
        inside=inside,
        text=text,
    )


def risk_flag(result: str | None) -> RiskFlag | None:
    """The urgent flag of a risk-check result (None for "none" or not answered)."""
    if result is None:
        return None
    found = _vocab().risk_check.by_code().get(result)
    if found is None:
        # A code no longer in the vocabulary is shown as urgent: it cannot be read as safe.
        return RiskFlag(
            result=result,
            label=result,
            text=(
                f"The recorded risk result {result!r} is not in the current vocabulary. Review "
                "the note and follow the clinic's suicide-risk pathway (C-SSRS) if in doubt."
            ),
            sources=[],
        )
    if not found.urgent:
        return None
    return RiskFlag(
        result=found.code, label=found.label, text=found.text or "", sources=list(found.sources)
    )


def _check_consistent(note: TherapyNote) -> None:
    """Contradictions are refused even in a draft."""
    vocab = _vocab()
    rc = note.risk_check
    if rc.asked is False and rc.result is not None:
        raise InvalidInput(
            "risk_check.result", "The risk check was not asked, so it has no result: clear one."
        )
    if note.attendance is not None:
        option = vocab.attendance_option(note.attendance)
        if option is not None and option.status == "missed" and note.minutes is not None:
            raise InvalidInput("minutes", "The patient did not attend: leave the minutes empty.")
    if note.focus is not None and note.techniques and note.focus not in note.techniques:
        raise InvalidInput("focus", "The focus must be one of the techniques ticked.")


def _check_signable(note: TherapyNote) -> str:
    """What signing needs; returns the status the attendance sets."""
    _check_consistent(note)
    vocab = _vocab()
    if note.attendance is None:
        raise InvalidInput("attendance", "Record whether the patient attended before signing.")
    option = vocab.attendance_option(note.attendance)
    assert option is not None  # validated by the model
    attended = option.status == "completed"
    rc = note.risk_check
    if rc.asked is None:
        raise InvalidInput(
            "risk_check.asked",
            "Answer the risk check (were suicidal thoughts asked about?) before signing.",
        )
    if attended and note.minutes is None:
        raise InvalidInput("minutes", "Give the session's length in minutes before signing.")
    if rc.asked and rc.result is None:
        raise InvalidInput("risk_check.result", "Record the result of the risk check.")
    if rc.asked is False and attended and not rc.not_asked_reason:
        raise InvalidInput(
            "risk_check.not_asked_reason",
            "The patient attended but was not asked about suicidal thoughts: say why.",
        )
    flag = risk_flag(rc.result)
    if flag is not None and (not rc.action or len(rc.action) < 3):
        raise InvalidInput(
            "risk_check.action",
            f"{flag.text} Describe what was done before signing.",
        )
    return option.status


# --- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    start: int
    end: int


# When the dosing session's infusion ended (None: not recorded), and its scheduled time.
Infusion = tuple[datetime | None, datetime]


def _dosing_end(session: Any) -> Any:
    """The CBT window counts from the end of dosing; a session without it, from its end."""
    return func.coalesce(session.dose_ended_at, session.ended_at)


def _settings(db: Session, clinic_id: int) -> tuple[_Window, ZoneInfo]:
    eff = effective_settings(db, clinic_id)
    mon = eff.monitoring
    return _Window(mon.cbt_window_start_hours, mon.cbt_window_end_hours), ZoneInfo(eff.timezone)


def _split(raw: dict[str, Any] | None) -> tuple[NoteOut | None, dict[str, Any]]:
    if not raw:
        return None, {}
    meta = {k: raw[k] for k in META_KEYS if k in raw}
    body = {k: v for k, v in raw.items() if k not in META_KEYS}
    return (NoteOut.model_validate(body) if body else None), meta


def _out(
    row: TherapySession,
    win: _Window,
    infusion: Infusion | None,
) -> TherapyOut:
    note, meta = _split(row.note)
    window: WindowOut | None = None
    if row.signed_at is not None and meta.get("window"):
        # A signed note shows the window as it was decided at signing.
        window = WindowOut.model_validate(meta["window"])
    elif row.follows_session_id is not None and infusion is not None:
        window = window_status(
            row.follows_session_id, row.scheduled_at, infusion[0], infusion[1], win.start, win.end
        )
    return TherapyOut(
        id=row.id,
        patient_id=row.patient_id,
        course_id=row.course_id,
        plan_key=row.plan_key,
        follows_session_id=row.follows_session_id,
        scheduled_at=row.scheduled_at,
        minutes=row.minutes,
        status=row.status,
        note=note,
        cancel_reason=meta.get("cancel_reason"),
        amend_reason=meta.get("amend_reason"),
        therapist_id=row.therapist_id,
        signed_at=row.signed_at,
        amends_id=row.amends_id,
        created_at=row.created_at,
        version=row.version,
        window=window,
        urgent=risk_flag(note.risk_check.result) if note else None,
    )


def _scoped_therapy(db: Session, actor: Actor, therapy_id: int) -> TherapySession:
    row = db.scalar(
        select(TherapySession).where(
            TherapySession.id == therapy_id, TherapySession.clinic_id == actor.clinic_id
        )
    )
    if row is None:
        raise NotFound(f"No therapy session {therapy_id} in your clinic.")
    return row


def _infusion(db: Session, clinic_id: int, session_id: int | None) -> Infusion | None:
    if session_id is None:
        return None
    found = db.execute(
        select(
            _dosing_end(TreatmentSession).label("ended_at"), TreatmentSession.scheduled_at
        ).where(TreatmentSession.id == session_id, TreatmentSession.clinic_id == clinic_id)
    ).first()
    return (found.ended_at, found.scheduled_at) if found else None


def _saved_note(row: TherapySession) -> TherapyNote:
    """The saved draft, checked against the vocabulary in force before it is signed."""
    body, _meta = _split(row.note)
    if body is None:
        raise InvalidInput("attendance", "Save the note (attendance, risk check) first.")
    try:
        return TherapyNote.model_validate(body.model_dump())
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "note"
        raise InvalidInput(field, err["msg"].removeprefix("Value error, ")) from None


def _chains(rows: Sequence[TherapySession]) -> list[list[TherapySession]]:
    """Group rows into amendment chains (original first), in the order of their originals."""
    amended_by = {r.amends_id: r for r in rows if r.amends_id is not None}
    chains = []
    for root in (r for r in rows if r.amends_id is None):
        chain = [root]
        while chain[-1].id in amended_by:
            chain.append(amended_by[chain[-1].id])
        chains.append(chain)
    return chains


def _check_version(row: TherapySession, version: int) -> None:
    if row.version != version:
        raise Conflict(
            "Someone else changed this therapy session since you opened it. "
            "Reload it and apply your change again."
        )


def _check_open(row: TherapySession) -> None:
    if row.signed_at is not None:
        raise InvalidInput("status", "The note is signed and cannot change: add an amendment.")
    if row.status != "scheduled":
        raise InvalidInput("status", f"The session is {row.status}; it cannot change.")


def _flush(db: Session) -> None:
    try:
        db.flush()
    except StaleDataError:
        raise Conflict(
            "Someone else changed this therapy session at the same moment. Reload and try again."
        ) from None


def _stored(note: TherapyNote) -> dict[str, Any]:
    return note.model_dump(mode="json")


def _seal_meta(row: TherapySession, win: _Window, infusion: Infusion | None) -> dict[str, Any]:
    """What a signed note keeps of the rules in force: the window decision and the version of
    the knowledge its vocabulary came from."""
    meta: dict[str, Any] = {"knowledge_version": knowledge_version()}
    if row.follows_session_id is not None and infusion is not None:
        meta["window"] = window_status(
            row.follows_session_id, row.scheduled_at, infusion[0], infusion[1], win.start, win.end
        ).model_dump(mode="json")
    return meta


# --- use-cases -----------------------------------------------------------------------------------


def schedule_therapy(db: Session, actor: Actor, patient_id: int, data: TherapyCreate) -> TherapyOut:
    with audited(db, actor, "therapy.schedule", patient_id=patient_id) as note:
        require(actor, Permission.THERAPY_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        eff = effective_settings(db, actor.clinic_id)
        win = _Window(eff.monitoring.cbt_window_start_hours, eff.monitoring.cbt_window_end_hours)
        infusion: Infusion | None = None
        if data.follows_session_id is not None:
            dosing = db.scalar(
                select(TreatmentSession).where(
                    TreatmentSession.id == data.follows_session_id,
                    TreatmentSession.clinic_id == actor.clinic_id,
                    TreatmentSession.patient_id == patient.id,
                )
            )
            if dosing is None:
                raise InvalidInput(
                    "follows_session_id",
                    f"No dosing session {data.follows_session_id} for this patient: choose one "
                    "of the patient's own sessions, or leave it empty.",
                )
            infusion = (dosing.dose_ended_at or dosing.ended_at, dosing.scheduled_at)
            if data.scheduled_at < (infusion[0] or dosing.scheduled_at):
                raise InvalidInput(
                    "scheduled_at", "The therapy session is before the infusion it follows."
                )
        minutes = data.minutes or eff.monitoring.cbt_session_minutes
        row = TherapySession(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            follows_session_id=data.follows_session_id,
            scheduled_at=data.scheduled_at,
            minutes=minutes,
            status="scheduled",
            created_by=actor.user_id,
        )
        db.add(row)
        db.flush()
        note.detail = {"therapy_id": row.id, "follows_session_id": row.follows_session_id}
        return _out(row, win, infusion)


def save_note(db: Session, actor: Actor, therapy_id: int, data: NoteUpdate) -> TherapyOut:
    """Save the draft note (incomplete is fine; contradictions are not)."""
    with audited(db, actor, "therapy.note") as note:
        require(actor, Permission.THERAPY_WRITE)
        row = _scoped_therapy(db, actor, therapy_id)
        note.patient_id = row.patient_id
        _check_open(row)
        _check_version(row, data.version)
        draft = TherapyNote.model_validate(data.model_dump(exclude={"version"}))
        _check_consistent(draft)
        row.note = _stored(draft)
        if draft.minutes is not None:
            row.minutes = draft.minutes
        _flush(db)
        note.detail = {"therapy_id": row.id, "version": row.version}
        win, _tz = _settings(db, actor.clinic_id)
        return _out(row, win, _infusion(db, actor.clinic_id, row.follows_session_id))


def sign_note(db: Session, actor: Actor, therapy_id: int, data: SignIn) -> TherapyOut:
    """Sign the saved note: the session becomes completed or missed and can no longer change."""
    with audited(db, actor, "therapy.sign") as note:
        require(actor, Permission.THERAPY_WRITE)
        row = _scoped_therapy(db, actor, therapy_id)
        note.patient_id = row.patient_id
        _check_open(row)
        _check_version(row, data.version)
        now = utcnow()
        if row.scheduled_at > now + SIGN_EARLY:
            raise InvalidInput(
                "scheduled_at",
                "The session is scheduled for later: sign the note after it has taken place.",
            )
        saved = _saved_note(row)
        status = _check_signable(saved)
        win, _tz = _settings(db, actor.clinic_id)
        infusion = _infusion(db, actor.clinic_id, row.follows_session_id)
        row.note = {**_stored(saved), **_seal_meta(row, win, infusion)}
        row.minutes = saved.minutes
        row.status = status
        row.therapist_id = actor.user_id
        row.signed_at = now
        _flush(db)
        flag = risk_flag(saved.risk_check.result)
        note.detail = {
            "therapy_id": row.id,
            "status": status,
            **({"urgent": flag.result} if flag else {}),
        }
        return _out(row, win, infusion)


def amend_note(db: Session, actor: Actor, therapy_id: int, data: AmendmentIn) -> TherapyOut:
    """A corrected note as a new signed row pointing at the signed one; the old one stays."""
    with audited(db, actor, "therapy.amend") as note:
        require(actor, Permission.THERAPY_WRITE)
        target = db.scalar(
            select(TherapySession)
            .where(TherapySession.id == therapy_id, TherapySession.clinic_id == actor.clinic_id)
            .with_for_update()
        )
        if target is None:
            raise NotFound(f"No therapy session {therapy_id} in your clinic.")
        note.patient_id = target.patient_id
        if target.signed_at is None:
            raise InvalidInput(
                "status", "The note is not signed yet: edit the draft instead of amending it."
            )
        later = db.scalar(select(TherapySession.id).where(TherapySession.amends_id == target.id))
        if later is not None:
            raise Conflict(
                f"This note was already amended (therapy session {later}): amend the latest one."
            )
        amended = TherapyNote.model_validate(data.model_dump(exclude={"reason"}))
        status = _check_signable(amended)
        win, _tz = _settings(db, actor.clinic_id)
        infusion = _infusion(db, actor.clinic_id, target.follows_session_id)
        row = TherapySession(
            clinic_id=target.clinic_id,
            patient_id=target.patient_id,
            course_id=target.course_id,
            plan_key=target.plan_key,
            follows_session_id=target.follows_session_id,
            scheduled_at=target.scheduled_at,
            minutes=amended.minutes,
            status=status,
            therapist_id=actor.user_id,
            signed_at=utcnow(),
            amends_id=target.id,
            created_by=actor.user_id,
        )
        row.note = {
            **_stored(amended),
            **_seal_meta(row, win, infusion),
            "amend_reason": data.reason,
        }
        db.add(row)
        db.flush()
        note.detail = {"therapy_id": row.id, "amends_id": target.id, "status": status}
        return _out(row, win, infusion)


def cancel_session(db: Session, actor: Actor, therapy_id: int, data: CancelIn) -> TherapyOut:
    """Record that an unsigned session was missed or cancelled, with the reason. The record is
    sealed like a signed note; a wrong entry is corrected by an amendment."""
    with audited(db, actor, "therapy.cancel") as note:
        require(actor, Permission.THERAPY_WRITE)
        row = _scoped_therapy(db, actor, therapy_id)
        note.patient_id = row.patient_id
        _check_open(row)
        _check_version(row, data.version)
        row.note = {**(row.note or {}), "cancel_reason": data.reason}
        row.status = data.status
        row.therapist_id = actor.user_id
        row.signed_at = utcnow()
        _flush(db)
        note.detail = {"therapy_id": row.id, "status": data.status, "reason": data.reason}
        win, _tz = _settings(db, actor.clinic_id)
        return _out(row, win, _infusion(db, actor.clinic_id, row.follows_session_id))


def _entries(db: Session, actor: Actor, patient_id: int, win: _Window) -> list[TherapyEntry]:
    inf = aliased(TreatmentSession)
    rows = db.execute(
        select(
            TherapySession,
            _dosing_end(inf).label("inf_ended_at"),
            inf.scheduled_at.label("inf_scheduled_at"),
        )
        .outerjoin(
            inf,
            and_(
                inf.id == TherapySession.follows_session_id,
                inf.clinic_id == TherapySession.clinic_id,
            ),
        )
        .where(
            TherapySession.patient_id == patient_id,
            TherapySession.clinic_id == actor.clinic_id,
        )
        .order_by(TherapySession.scheduled_at.desc(), TherapySession.id)
    ).all()
    times: dict[int, Infusion] = {
        r[0].id: (r.inf_ended_at, r.inf_scheduled_at) for r in rows if r.inf_scheduled_at
    }
    entries = []
    for chain in _chains([r[0] for r in rows]):
        outs = [_out(r, win, times.get(r.id)) for r in chain]
        entries.append(TherapyEntry(current=outs[-1], history=outs[-2::-1]))
    return entries


def list_patient_therapy(db: Session, actor: Actor, patient_id: int) -> list[TherapyEntry]:
    """The patient's therapy sessions, newest first; each shows its latest amendment as the note
    in force and keeps the versions before it."""
    with audited(db, actor, "therapy.list", patient_id=patient_id) as note:
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        win, _tz = _settings(db, actor.clinic_id)
        entries = _entries(db, actor, patient.id, win)
        note.detail = {"count": len(entries)}
        return entries


class TherapyPanel(BaseModel):
    """The chart's therapy section."""

    entries: list[TherapyEntry]
    infusions: list[InfusionRef] = Field(description="Latest dosing sessions, to follow one")
    latest_risk: TherapyOut | None = Field(
        description="The most recent session whose risk check has a result, when it is urgent"
    )
    start_hours: int
    end_hours: int


def therapy_panel(db: Session, actor: Actor, patient_id: int) -> TherapyPanel:
    with audited(db, actor, "therapy.list", patient_id=patient_id) as note:
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        win, _tz = _settings(db, actor.clinic_id)
        entries = _entries(db, actor, patient.id, win)
        infusions = db.scalars(
            select(TreatmentSession)
            .where(
                TreatmentSession.patient_id == patient.id,
                TreatmentSession.clinic_id == actor.clinic_id,
            )
            .order_by(TreatmentSession.scheduled_at.desc(), TreatmentSession.id.desc())
            .limit(12)
        ).all()
        checked = [
            e.current
            for e in entries
            if e.current.note is not None and e.current.note.risk_check.result is not None
        ]
        latest = checked[0] if checked and checked[0].urgent else None
        note.detail = {"count": len(entries)}
        return TherapyPanel(
            entries=entries,
            infusions=[InfusionRef.model_validate(i) for i in infusions],
            latest_risk=latest,
            start_hours=win.start,
            end_hours=win.end,
        )


def get_therapy(db: Session, actor: Actor, therapy_id: int) -> TherapyDetail:
    with audited(db, actor, "therapy.view") as note:
        require(actor, Permission.PATIENT_READ)
        row = _scoped_therapy(db, actor, therapy_id)
        note.patient_id = row.patient_id
        patient = _scoped_patient(db, actor, row.patient_id)
        win, _tz = _settings(db, actor.clinic_id)
        follows = None
        infusion: Infusion | None = None
        if row.follows_session_id is not None:
            dosing = db.scalar(
                select(TreatmentSession).where(
                    TreatmentSession.id == row.follows_session_id,
                    TreatmentSession.clinic_id == actor.clinic_id,
                )
            )
            if dosing is not None:
                follows = InfusionRef.model_validate(dosing)
                infusion = (dosing.dose_ended_at or dosing.ended_at, dosing.scheduled_at)
        # The chain this row belongs to: the same patient's rows, grouped by amendment.
        siblings = db.scalars(
            select(TherapySession).where(
                TherapySession.patient_id == row.patient_id,
                TherapySession.clinic_id == actor.clinic_id,
                TherapySession.scheduled_at == row.scheduled_at,
            )
        ).all()
        chain = next((c for c in _chains(siblings) if row in c), [row])
        names = _names(db, actor.clinic_id, {r.therapist_id for r in chain if r.therapist_id})
        versions = [
            VersionOut(
                **_out(r, win, infusion).model_dump(), therapist_name=names.get(r.therapist_id or 0)
            )
            for r in chain
        ]
        this = _out(row, win, infusion)
        note.detail = {"therapy_id": row.id}
        return TherapyDetail(
            **this.model_dump(),
            patient=PatientRef(
                id=patient.id,
                mrn=patient.mrn,
                family_name=patient.family_name,
                given_name=patient.given_name,
            ),
            follows=follows,
            therapist_name=names.get(row.therapist_id or 0),
            current_id=chain[-1].id,
            versions=versions,
        )


def _names(db: Session, clinic_id: int, ids: set[int | None]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.execute(
        select(User.id, User.display_name).where(User.id.in_(ids), User.clinic_id == clinic_id)
    ).all()
    return {r.id: r.display_name for r in rows}


def worklist(
    db: Session,
    actor: Actor,
    *,
    cursor: str | None = None,
    limit: int = 25,
    now: datetime | None = None,
) -> WorklistPage:
    """The clinic's unsigned therapy sessions from today to the end of the next 7 days (clinic
    time), plus every overdue unsigned one, in time order, keyset-paged. One query joins the
    patient and the infusion followed (index: clinic_id, status, scheduled_at)."""
    with audited(db, actor, "therapy.worklist") as note:
        require(actor, Permission.PATIENT_READ)
        limit = max(1, min(limit, 100))
        now = now or utcnow()
        win, tz = _settings(db, actor.clinic_id)
        today = now.astimezone(tz).date()
        today_starts = datetime.combine(today, time(0), tz)
        until = datetime.combine(today + timedelta(days=WORKLIST_DAYS + 1), time(0), tz)
        inf = aliased(TreatmentSession)
        stmt = (
            select(
                TherapySession,
                Patient.mrn,
                Patient.family_name,
                Patient.given_name,
                _dosing_end(inf).label("inf_ended_at"),
                inf.scheduled_at.label("inf_scheduled_at"),
            )
            .join(
                Patient,
                and_(
                    Patient.id == TherapySession.patient_id,
                    Patient.clinic_id == TherapySession.clinic_id,
                ),
            )
            .outerjoin(
                inf,
                and_(
                    inf.id == TherapySession.follows_session_id,
                    inf.clinic_id == TherapySession.clinic_id,
                ),
            )
            .where(
                TherapySession.clinic_id == actor.clinic_id,
                TherapySession.status == "scheduled",
                TherapySession.signed_at.is_(None),
                TherapySession.scheduled_at < until,
            )
        )
        if cursor:
            stmt = stmt.where(
                after_time_cursor(cursor, TherapySession.scheduled_at, TherapySession.id)
            )
        rows = db.execute(
            stmt.order_by(TherapySession.scheduled_at, TherapySession.id).limit(limit + 1)
        ).all()
        items = []
        for r in rows[:limit]:
            row: TherapySession = r[0]
            infusion = (r.inf_ended_at, r.inf_scheduled_at) if r.inf_scheduled_at else None
            out = _out(row, win, infusion)
            items.append(
                WorklistItem(
                    id=row.id,
                    patient=PatientRef(
                        id=row.patient_id,
                        mrn=r.mrn,
                        family_name=r.family_name,
                        given_name=r.given_name,
                    ),
                    scheduled_at=row.scheduled_at,
                    minutes=row.minutes,
                    plan_key=row.plan_key,
                    follows_session_id=row.follows_session_id,
                    draft=bool(row.note),
                    overdue=row.scheduled_at < today_starts,
                    window=out.window,
                    urgent=out.urgent,
                )
            )
        last = rows[limit - 1][0] if len(rows) > limit else None
        note.detail = {"count": len(items)}
        return WorklistPage(
            items=items,
            next_cursor=encode_time_cursor(last.scheduled_at, last.id) if last else None,
            until=until,
            today_starts=today_starts,
        )
