"""Treatment courses: plan a series of dosing sessions with CBT after each, re-plan after a
missed session, stop a course, and export it as an iCalendar file.

The plan itself comes from ``clinical.course``; this module checks that the patient may start
a course (signed eligible review, consent given, no active course), stores the plan and keeps
one row per session in step with it. A dosing row is a ``TreatmentSession``, a CBT row a
``TherapySession``; both carry the planner's key ("infusion-3", "cbt-3").
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from icalendar import Calendar
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ketacare.app.audit import audited
from ketacare.app.clinic_settings import EffectiveSettings, effective_settings
from ketacare.app.errors import Conflict, InvalidInput, NotFound
from ketacare.app.intake import programme_status
from ketacare.app.patients import Stage, _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.clinical import course as planner
from ketacare.interop.ical import event_uid, plan_to_ics
from ketacare.store.models import (
    Clinic,
    Patient,
    TherapySession,
    TreatmentCourse,
    TreatmentSession,
)
from ketacare.store.types import utcnow

UNDERWAY = ("in_progress", "paused")
# Rows that no longer stand for a session of the plan (a re-planned key has a new row).
SUPERSEDED = ("missed", "cancelled")
# The planner's field names, as the request calls them.
_FIELDS = {
    "protocol": "protocol_id",
    "start": "start_date",
    "missed_or_cancelled": "missed",
    "completed": "missed",
}
_CALENDAR_FIELDS = ("clinic_days", "clinic_hours", "closed_dates", "tz")


class CourseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol_id: str = Field("iv-ketamine", max_length=40)
    start_date: date = Field(description="First day the course may start (clinic's local date)")
    infusions: int | None = Field(
        None, ge=1, le=100, description="Number of dosing sessions (default: the protocol's)"
    )
    cbt: bool = Field(True, description="Plan a CBT session in the window after each one")


class ReplanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int = Field(ge=1, description="The course version you read; a stale one is 409")
    missed: list[str] = Field(
        default_factory=list, max_length=50, description="Plan keys that did not happen"
    )
    reason: str | None = Field(None, max_length=2000)
    from_date: date | None = Field(
        None, description="Plan again from this local date (default: today in the clinic)"
    )

    @field_validator("missed")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        return list(dict.fromkeys(k.strip() for k in keys if k.strip()))


class StopRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int = Field(ge=1)
    reason: str = Field(min_length=3, max_length=2000)


class WarningOut(BaseModel):
    code: str
    text: str
    session: str | None
    sources: list[str]


class MissedOut(BaseModel):
    key: str
    planned_start: datetime
    reason: str


class CourseSessionOut(BaseModel):
    """One session row of the course, dosing or CBT."""

    id: int
    kind: Literal["infusion", "cbt"]
    plan_key: str
    number: int
    summary: str
    scheduled_at: datetime
    status: str
    minutes: int | None = None
    follows_session_id: int | None = None
    started_at: datetime | None = None
    signed_at: datetime | None = None


class CourseOut(BaseModel):
    id: int
    patient_id: int
    protocol_id: str
    start_date: date
    status: str
    revision: int
    version: int
    stop_reason: str | None
    created_at: datetime
    updated_at: datetime
    plan: dict[str, Any]
    warnings: list[WarningOut]
    missed: list[MissedOut]
    sessions: list[CourseSessionOut]


class Blocker(BaseModel):
    field: str
    message: str


class CoursePanel(BaseModel):
    """The chart's course section in one read: the courses, newest first, and why a new one
    cannot be planned yet (empty when it can)."""

    courses: list[CourseOut]
    blockers: list[Blocker]
    today: date


# --- helpers -------------------------------------------------------------------------------


def _invalid(exc: planner.CoursePlanError) -> InvalidInput:
    if exc.field in _CALENDAR_FIELDS:
        return InvalidInput(
            f"calendar.{exc.field}",
            f"{exc.message.rstrip('.')}. Ask an administrator to check the clinic settings.",
        )
    return InvalidInput(_FIELDS.get(exc.field, exc.field), exc.message)


def _blockers(db: Session, patient: Patient) -> list[Blocker]:
    found: list[Blocker] = []
    status = programme_status(db, patient.id)
    if status.review is None:
        found.append(
            Blocker(
                field="eligibility",
                message="No signed eligibility review: a prescriber signs the review as "
                "eligible before a course is planned.",
            )
        )
    elif status.review != "eligible":
        found.append(
            Blocker(
                field="eligibility",
                message=f"The latest signed eligibility review is {status.review!r}: "
                "a course is planned only after a review signed as eligible.",
            )
        )
    if status.consent != "given":
        found.append(
            Blocker(
                field="consent",
                message=(
                    "Consent was withdrawn: record consent given again before planning."
                    if status.consent == "withdrawn"
                    else "No informed consent recorded: record consent given before planning."
                ),
            )
        )
    active = db.scalar(
        select(TreatmentCourse.id).where(
            TreatmentCourse.patient_id == patient.id, TreatmentCourse.status == "active"
        )
    )
    if active is not None:
        found.append(
            Blocker(
                field="course",
                message=f"The patient already has an active course ({active}): re-plan it, or "
                "stop it before planning a new one.",
            )
        )
    return found


def _scoped_course(
    db: Session, actor: Actor, course_id: int, patient_id: int | None = None
) -> TreatmentCourse:
    """The course in the actor's clinic (and of ``patient_id`` when a face names one)."""
    stmt = select(TreatmentCourse).where(
        TreatmentCourse.id == course_id, TreatmentCourse.clinic_id == actor.clinic_id
    )
    if patient_id is not None:
        stmt = stmt.where(TreatmentCourse.patient_id == patient_id)
    row = db.scalar(stmt)
    if row is None:
        raise NotFound(f"No treatment course {course_id} for this patient in your clinic.")
    return row


def _plan_of(course: TreatmentCourse) -> planner.CoursePlan:
    return planner.CoursePlan.from_json_dict(course.plan)


def _dosing_rows(db: Session, course_ids: list[int]) -> list[TreatmentSession]:
    if not course_ids:
        return []
    return list(
        db.scalars(
            select(TreatmentSession)
            .where(TreatmentSession.course_id.in_(course_ids))
            .order_by(TreatmentSession.scheduled_at, TreatmentSession.id)
        )
    )


def _therapy_rows(db: Session, course_ids: list[int]) -> list[TherapySession]:
    if not course_ids:
        return []
    # An amended note is a new row pointing at the original; the original stands for the visit.
    return list(
        db.scalars(
            select(TherapySession)
            .where(TherapySession.course_id.in_(course_ids), TherapySession.amends_id.is_(None))
            .order_by(TherapySession.scheduled_at, TherapySession.id)
        )
    )


def _took_place(row: TreatmentSession | TherapySession) -> bool:
    """A dosing session took place once its dose started (a session stopped before any dose
    did not, and is planned again); a CBT session when it is completed or its note signed."""
    if isinstance(row, TreatmentSession):
        return row.status == "completed" or row.dose_started_at is not None
    return row.status == "completed" or row.signed_at is not None


def _summary(plan: planner.CoursePlan, key: str) -> str:
    try:
        return plan.session(key).summary
    except KeyError:
        kind, _, number = key.partition("-")
        return f"CBT session after infusion {number}" if kind == "cbt" else f"Session {number}"


def _number(key: str) -> int:
    return int(key.rsplit("-", 1)[1])


def _out(
    course: TreatmentCourse,
    dosing: list[TreatmentSession],
    therapy: list[TherapySession],
) -> CourseOut:
    plan = _plan_of(course)
    rows: list[CourseSessionOut] = [
        CourseSessionOut(
            id=r.id,
            kind="infusion",
            plan_key=r.plan_key or "",
            number=r.number or _number(r.plan_key or "infusion-0"),
            summary=_summary(plan, r.plan_key or ""),
            scheduled_at=r.scheduled_at,
            status=r.status,
            minutes=plan.settings.get("infusion_minutes"),
            started_at=r.started_at,
            signed_at=r.signed_at,
        )
        for r in dosing
    ]
    rows += [
        CourseSessionOut(
            id=r.id,
            kind="cbt",
            plan_key=r.plan_key or "",
            number=_number(r.plan_key or "cbt-0"),
            summary=_summary(plan, r.plan_key or ""),
            scheduled_at=r.scheduled_at,
            status=r.status,
            minutes=r.minutes,
            follows_session_id=r.follows_session_id,
            signed_at=r.signed_at,
        )
        for r in therapy
    ]
    rows.sort(key=lambda s: (s.scheduled_at, s.kind != "infusion", s.number, s.id))
    data = course.plan
    return CourseOut(
        id=course.id,
        patient_id=course.patient_id,
        protocol_id=course.protocol_id,
        start_date=course.start_date,
        status=course.status,
        revision=course.revision,
        version=course.version,
        stop_reason=course.stop_reason,
        created_at=course.created_at,
        updated_at=course.updated_at,
        plan=data,
        warnings=[WarningOut(**w) for w in data.get("warnings") or ()],
        missed=[MissedOut(**m) for m in data.get("missed") or ()],
        sessions=rows,
    )


def _course_out(db: Session, course: TreatmentCourse) -> CourseOut:
    return _out(course, _dosing_rows(db, [course.id]), _therapy_rows(db, [course.id]))


def _flush(what: str, db: Session) -> None:
    try:
        db.flush()
    except StaleDataError:
        raise Conflict(
            f"Someone else changed this {what} at the same moment. Reload and try again."
        ) from None


def _check_version(course: TreatmentCourse, version: int) -> None:
    if course.version != version:
        raise Conflict(
            "Someone else changed this course since you opened it. Reload it and apply your "
            "change again."
        )


def _today(db: Session, clinic_id: int, now: datetime | None = None) -> date:
    tz = db.scalar(select(Clinic.timezone).where(Clinic.id == clinic_id)) or "UTC"
    return (now or utcnow()).astimezone(ZoneInfo(tz)).date()


def _replanned(
    plan: planner.CoursePlan,
    completed: list[planner.CompletedSession],
    missed: list[str],
    from_date: date,
) -> planner.CoursePlan:
    try:
        return planner.replan(plan, completed, missed, from_date)
    except planner.CoursePlanError as exc:
        raise _invalid(exc) from None


def _infusion_row(
    course: TreatmentCourse, session: planner.PlannedSession, actor: Actor
) -> TreatmentSession:
    return TreatmentSession(
        clinic_id=course.clinic_id,
        patient_id=course.patient_id,
        course_id=course.id,
        plan_key=session.key,
        number=session.number,
        protocol_id=course.protocol_id,
        scheduled_at=session.start_utc,
        status="scheduled",
        created_by=actor.user_id,
    )


def _therapy_row(
    course: TreatmentCourse,
    session: planner.PlannedSession,
    follows: TreatmentSession | None,
    actor: Actor,
) -> TherapySession:
    return TherapySession(
        clinic_id=course.clinic_id,
        patient_id=course.patient_id,
        course_id=course.id,
        plan_key=session.key,
        follows_session_id=follows.id if follows else None,
        scheduled_at=session.start_utc,
        minutes=int((session.end_utc - session.start_utc).total_seconds() // 60),
        status="scheduled",
        created_by=actor.user_id,
    )


def store_plan(
    db: Session, patient: Patient, plan: planner.CoursePlan, actor: Actor, now: datetime
) -> tuple[TreatmentCourse, dict[int, TreatmentSession], list[TherapySession]]:
    """The course row and one row per planned dosing and CBT session (inside the caller's
    transaction)."""
    course = TreatmentCourse(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id=plan.protocol,
        start_date=plan.start,
        status="active",
        plan=plan.to_json_dict(),
        revision=plan.revision,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    db.add(course)
    db.flush()
    infusions = {s.number: _infusion_row(course, s, actor) for s in plan.infusion_sessions}
    db.add_all(infusions.values())
    db.flush()
    therapy = [_therapy_row(course, s, infusions.get(s.number), actor) for s in plan.cbt_sessions]
    db.add_all(therapy)
    db.flush()
    return course, infusions, therapy


# --- use-cases -----------------------------------------------------------------------------


def _new_plan(settings: EffectiveSettings, data: CourseCreate, start: date) -> planner.CoursePlan:
    calendar = settings.clinic_calendar()
    mon = settings.monitoring
    try:
        return planner.plan_course(
            data.protocol_id,
            start,
            calendar.days,
            (calendar.opens, calendar.closes),
            calendar.closed_dates,
            calendar.tz,
            infusions=data.infusions,
            cbt=data.cbt,
            cbt_window_hours=(mon.cbt_window_start_hours, mon.cbt_window_end_hours),
            cbt_minutes=mon.cbt_session_minutes,
        )
    except planner.CoursePlanError as exc:
        raise _invalid(exc) from None


def _before(plan: planner.CoursePlan, now: datetime) -> bool:
    """Whether the plan puts a session still to come before ``now``."""
    return any(s.status == "planned" and s.start_utc < now for s in plan.sessions)


def plan_course(db: Session, actor: Actor, patient_id: int, data: CourseCreate) -> CourseOut:
    """Plan a course with the clinic's calendar and CBT window, and create its session rows."""
    with audited(db, actor, "course.plan", patient_id=patient_id) as note:
        require(actor, Permission.COURSE_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        blockers = _blockers(db, patient)
        if blockers:
            raise InvalidInput(blockers[0].field, blockers[0].message)
        settings = effective_settings(db, actor.clinic_id)
        now = utcnow()
        today = now.astimezone(ZoneInfo(settings.timezone)).date()
        if data.start_date < today:
            raise InvalidInput(
                "start_date",
                f"{data.start_date.isoformat()} is in the past: plan from today "
                f"({today.isoformat()}) or later.",
            )
        plan = _new_plan(settings, data, data.start_date)
        if _before(plan, now):
            # Today's slots that have passed cannot be used: start on the next open day.
            plan = _new_plan(settings, data, data.start_date + timedelta(days=1))
        course, _infusions, _therapy = store_plan(db, patient, plan, actor, now)
        # Bumping the patient's version also serialises two plans racing for one patient.
        patient.stage = Stage.IN_COURSE.value
        patient.updated_at = now
        _flush("patient", db)
        note.detail = {
            "course_id": course.id,
            "protocol": plan.protocol,
            "start_date": plan.start.isoformat(),
            "sessions": len(plan.sessions),
            "warnings": [w.code for w in plan.warnings],
        }
        return _course_out(db, course)


def get_course(db: Session, actor: Actor, course_id: int) -> CourseOut:
    with audited(db, actor, "course.view") as note:
        require(actor, Permission.PATIENT_READ)
        course = _scoped_course(db, actor, course_id)
        note.patient_id = course.patient_id
        note.detail = {"course_id": course.id}
        return _course_out(db, course)


def _list(db: Session, patient: Patient) -> list[CourseOut]:
    courses = list(
        db.scalars(
            select(TreatmentCourse)
            .where(TreatmentCourse.patient_id == patient.id)
            .order_by(TreatmentCourse.created_at.desc(), TreatmentCourse.id.desc())
        )
    )
    ids = [c.id for c in courses]
    # One query per kind of session for all the courses together.
    dosing, therapy = _dosing_rows(db, ids), _therapy_rows(db, ids)
    return [
        _out(
            c,
            [r for r in dosing if r.course_id == c.id],
            [r for r in therapy if r.course_id == c.id],
        )
        for c in courses
    ]


def list_courses(db: Session, actor: Actor, patient_id: int) -> list[CourseOut]:
    with audited(db, actor, "course.list", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        return _list(db, patient)


def course_panel(db: Session, actor: Actor, patient_id: int) -> CoursePanel:
    """The courses of a patient and what stands in the way of planning one."""
    with audited(db, actor, "course.list", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        return CoursePanel(
            courses=_list(db, patient),
            blockers=_blockers(db, patient),
            today=_today(db, actor.clinic_id),
        )


def replan_course(
    db: Session,
    actor: Actor,
    course_id: int,
    data: ReplanRequest,
    *,
    patient_id: int | None = None,
) -> CourseOut:
    """Record the sessions that did not happen and plan every remaining one again, keeping
    those that took place at their actual times. One transaction."""
    with audited(db, actor, "course.replan") as note:
        require(actor, Permission.COURSE_WRITE)
        course = _scoped_course(db, actor, course_id, patient_id)
        note.patient_id = course.patient_id
        _check_version(course, data.version)
        if course.status != "active":
            raise InvalidInput("status", f"The course is {course.status}; it cannot be re-planned.")
        if data.missed and len(data.reason or "") < 3:
            raise InvalidInput("reason", "Say why the session did not happen.")
        plan = _plan_of(course)
        dosing = _dosing_rows(db, [course.id])
        therapy = _therapy_rows(db, [course.id])
        scheduled: dict[str, TreatmentSession | TherapySession] = {
            r.plan_key: r for r in [*dosing, *therapy] if r.status == "scheduled" and r.plan_key
        }
        for row in dosing:
            if row.status in UNDERWAY:
                raise InvalidInput(
                    "missed",
                    f"{_summary(plan, row.plan_key or '')} is {row.status.replace('_', ' ')}: "
                    "re-plan after it has ended.",
                )
        for key in data.missed:
            if key not in scheduled:
                known = {r.plan_key: r.status for r in [*dosing, *therapy] if r.plan_key}
                state = f"is {known[key]}" if key in known else "is not a session of this course"
                raise InvalidInput(
                    "missed", f"{key} {state}: only a scheduled session can be marked missed."
                )
            scheduled[key].status = "missed"
        rows = [r for r in [*dosing, *therapy] if r.plan_key]
        completed = [
            planner.CompletedSession(
                r.plan_key or "",
                (r.started_at if isinstance(r, TreatmentSession) else None) or r.scheduled_at,
            )
            for r in rows
            if _took_place(r)
        ]
        # A planned session whose row was stopped before dosing, or marked missed elsewhere,
        # did not happen either: the planner records it and plans it again.
        live = {r.plan_key for r in rows if r.status in ("scheduled", *UNDERWAY) or _took_place(r)}
        elsewhere = {
            r.plan_key: "stopped before dosing" if r.status == "stopped" else f"recorded {r.status}"
            for r in rows
            if r.plan_key not in live and r.plan_key not in data.missed
        }
        elsewhere = {
            s.key: elsewhere[s.key]
            for s in plan.sessions
            if s.status == "planned" and s.key in elsewhere
        }
        missed = [*data.missed, *elsewhere]
        now = utcnow()
        today = _today(db, actor.clinic_id, now)
        if data.from_date is not None and data.from_date < today:
            raise InvalidInput(
                "from_date",
                f"{data.from_date.isoformat()} is in the past: re-plan from today "
                f"({today.isoformat()}) or later.",
            )
        from_date = data.from_date or max(today, course.start_date)
        new = _replanned(plan, completed, missed, from_date)
        if _before(new, now):
            from_date += timedelta(days=1)
            new = _replanned(plan, completed, missed, from_date)
        # The planner records a generic reason; keep the clinician's, or what the row says.
        history = list(new.missed)
        for index in range(len(plan.missed), len(history)):
            key = history[index].key
            reason = elsewhere.get(key) or (data.reason if key in data.missed else None)
            if reason:
                history[index] = replace(history[index], reason=reason)
        new = replace(new, missed=tuple(history))

        # The row each CBT session follows: the infusion that took place or is scheduled.
        infusions: dict[int, TreatmentSession] = {
            r.number: r for r in dosing if r.number is not None and r.status not in SUPERSEDED
        }
        moved, created = 0, 0
        planned = [s for s in new.sessions if s.status == "planned"]
        for session in (s for s in planned if s.kind == "infusion"):
            row = scheduled.get(session.key)
            if isinstance(row, TreatmentSession) and row.status == "scheduled":
                if row.scheduled_at != session.start_utc:
                    row.scheduled_at = session.start_utc
                    moved += 1
            else:
                row = _infusion_row(course, session, actor)
                db.add(row)
                created += 1
            infusions[session.number] = row
        _flush("course's sessions", db)
        for session in (s for s in planned if s.kind == "cbt"):
            row = scheduled.get(session.key)
            follows = infusions.get(session.number)
            if isinstance(row, TherapySession) and row.status == "scheduled":
                if row.scheduled_at != session.start_utc:
                    row.scheduled_at = session.start_utc
                    moved += 1
                row.follows_session_id = follows.id if follows else None
            else:
                db.add(_therapy_row(course, session, follows, actor))
                created += 1
        # A scheduled session the new plan could not place is cancelled; the warnings say why.
        placed = {s.key for s in planned}
        cancelled = [
            key for key, row in scheduled.items() if row.status == "scheduled" and key not in placed
        ]
        for key in cancelled:
            scheduled[key].status = "cancelled"
        course.plan = new.to_json_dict()
        course.revision = new.revision
        course.updated_at = now
        _flush("course", db)
        note.detail = {
            "course_id": course.id,
            "revision": new.revision,
            "missed": data.missed,
            "reason": data.reason,
            "did_not_happen": elsewhere,
            "from_date": from_date.isoformat(),
            "moved": moved,
            "created": created,
            "cancelled": cancelled,
            "warnings": [w.code for w in new.warnings],
        }
        return _course_out(db, course)


def stop_course(
    db: Session,
    actor: Actor,
    course_id: int,
    reason: str,
    version: int,
    *,
    patient_id: int | None = None,
) -> CourseOut:
    """Stop a course: the sessions still scheduled are cancelled; the record stays."""
    reason = " ".join(reason.split())
    with audited(db, actor, "course.stop") as note:
        require(actor, Permission.COURSE_WRITE)
        course = _scoped_course(db, actor, course_id, patient_id)
        note.patient_id = course.patient_id
        _check_version(course, version)
        if course.status != "active":
            raise InvalidInput("status", f"The course is already {course.status}.")
        if len(reason) < 3:
            raise InvalidInput("reason", "Say why the course is stopped.")
        cancelled: list[str] = []
        for row in [*_dosing_rows(db, [course.id]), *_therapy_rows(db, [course.id])]:
            if row.status == "scheduled":
                row.status = "cancelled"
                cancelled.append(row.plan_key or str(row.id))
        now = utcnow()
        course.status = "stopped"
        course.stop_reason = reason
        course.updated_at = now
        patient = db.get(Patient, course.patient_id)
        if patient is not None and patient.stage == Stage.IN_COURSE.value:
            # Still eligible (the signed review stands): a new course can be planned later.
            patient.stage = Stage.ELIGIBLE.value
            patient.updated_at = now
        _flush("course", db)
        note.detail = {"course_id": course.id, "reason": reason, "cancelled": cancelled}
        return _course_out(db, course)


def course_calendar(
    db: Session, actor: Actor, course_id: int, *, patient_id: int | None = None
) -> str:
    """The course as an iCalendar file: one event per planned session, named without the
    patient. A stopped course's remaining sessions come out cancelled, so a calendar that
    imported them drops them."""
    with audited(db, actor, "course.calendar") as note:
        require(actor, Permission.PATIENT_READ)
        course = _scoped_course(db, actor, course_id, patient_id)
        note.patient_id = course.patient_id
        note.detail = {"course_id": course.id, "revision": course.revision}
        clinic = db.get(Clinic, course.clinic_id)
        assert clinic is not None
        plan = _plan_of(course)
        text = plan_to_ics(
            plan,
            course_id=f"{clinic.slug}-course-{course.id}",
            calendar_name=f"{clinic.name}: treatment course",
        )
        if course.status != "stopped":
            return text
        took_place = {
            r.plan_key
            for r in [*_dosing_rows(db, [course.id]), *_therapy_rows(db, [course.id])]
            if _took_place(r)
        }
        uids = {
            event_uid(f"{clinic.slug}-course-{course.id}", s)
            for s in plan.sessions
            if s.key not in took_place
        }
        return _cancelled(text, uids, plan.revision + 1)


def _cancelled(text: str, uids: set[str], sequence: int) -> str:
    """Mark the events ``uids`` cancelled, with a higher SEQUENCE so calendars apply it."""
    calendar = Calendar.from_ical(text)
    for event in calendar.walk("VEVENT"):
        if str(event["uid"]) not in uids:
            continue
        for name in ("status", "sequence"):
            event.pop(name, None)
        event.add("status", "CANCELLED")
        event.add("sequence", sequence)
    return calendar.to_ical().decode("utf-8")
