"""Treatment courses: who may plan, what planning needs, the rows it creates, re-planning after a
missed infusion, stopping, the calendar file and clinic scoping."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import courses as uc
from ketacare.app.clinic_settings import ClinicSettingsIn, update_clinic_settings
from ketacare.app.errors import Conflict, Forbidden, InvalidInput, NotFound
from ketacare.app.intake import consent_text
from ketacare.app.permissions import Role
from ketacare.store.models import (
    AuditEvent,
    ConsentRecord,
    EligibilityReview,
    Patient,
    TherapySession,
    TreatmentCourse,
    TreatmentSession,
)

ZONE = ZoneInfo("America/Toronto")


def _first_monday_of_next_january() -> date:
    """A Monday always ahead, with no daylight-saving change in the weeks of a course."""
    new_year = date(datetime.now(UTC).year + 1, 1, 1)
    return new_year + timedelta(days=-new_year.weekday() % 7)


MONDAY = _first_monday_of_next_january()  # e.g. 2027-01-04
CLOSED = MONDAY + timedelta(days=2)  # that week's Wednesday


def day(offset: int, hour: int, minute: int = 0) -> datetime:
    """A local wall time ``offset`` days after MONDAY (naive, in the clinic's zone)."""
    return datetime.combine(MONDAY + timedelta(days=offset), time(hour, minute))


def utc(offset: int, hour: int, minute: int = 0) -> datetime:
    """The same in UTC; Toronto is UTC-5 all January."""
    return day(offset, hour, minute).replace(tzinfo=ZONE).astimezone(UTC)


REASON = "Patient unwell with a fever, rang to cancel."


def local(row: TreatmentSession | TherapySession) -> datetime:
    return row.scheduled_at.astimezone(ZONE).replace(tzinfo=None)


def review(db: Session, patient: Patient, decision: str = "eligible") -> None:
    db.add(
        EligibilityReview(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            computed_decision=decision,
            final_decision=decision,
            inputs={},
            output={},
            knowledge_version="test",
        )
    )
    db.commit()


def consent(
    db: Session, patient: Patient, status: str = "given", at: datetime | None = None
) -> None:
    db.add(
        ConsentRecord(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            consent_version=consent_text()["version"],
            status=status,
            **({"recorded_at": at} if at else {}),
        )
    )
    db.commit()


def ready(db: Session, patient: Patient) -> Patient:
    review(db, patient)
    consent(db, patient)
    return patient


def close_a_wednesday(db: Session, world: ClinicWorld) -> None:
    """Monday to Friday 08:00-17:00 (the defaults) with the first Wednesday closed."""
    data = ClinicSettingsIn.model_validate({"calendar": {"closed_dates": [CLOSED.isoformat()]}})
    update_clinic_settings(db, world.actor(Role.ADMIN), data, world.clinic.settings_version)


def plan(db: Session, world: ClinicWorld, role: Role = Role.NURSE, **kw: object) -> uc.CourseOut:
    patient = world.patients[0]
    body = uc.CourseCreate.model_validate({"start_date": MONDAY, **kw})
    return uc.plan_course(db, world.actor(role), patient.id, body)


def dosing(db: Session, course_id: int) -> list[TreatmentSession]:
    return list(
        db.scalars(
            select(TreatmentSession)
            .where(TreatmentSession.course_id == course_id)
            .order_by(TreatmentSession.scheduled_at, TreatmentSession.id)
        )
    )


def therapy(db: Session, course_id: int) -> list[TherapySession]:
    return list(
        db.scalars(
            select(TherapySession)
            .where(TherapySession.course_id == course_id)
            .order_by(TherapySession.scheduled_at, TherapySession.id)
        )
    )


# --- what planning needs -------------------------------------------------------------------


def test_planning_needs_a_signed_review_decided_eligible(db: Session, world_a: ClinicWorld) -> None:
    patient = world_a.patients[0]
    consent(db, patient)
    with pytest.raises(InvalidInput) as none:
        plan(db, world_a)
    assert none.value.field == "eligibility"
    assert "No signed eligibility review" in none.value.message
    review(db, patient, "ineligible")
    with pytest.raises(InvalidInput) as refused:
        plan(db, world_a)
    assert refused.value.field == "eligibility"
    assert "'ineligible'" in refused.value.message
    assert db.scalar(select(func.count()).select_from(TreatmentCourse)) == 0


def test_planning_needs_consent_given_in_the_latest_record(
    db: Session, world_a: ClinicWorld
) -> None:
    patient = world_a.patients[0]
    review(db, patient)
    with pytest.raises(InvalidInput) as missing:
        plan(db, world_a)
    assert missing.value.field == "consent"
    consent(db, patient, "given", datetime(2026, 11, 1, 12, tzinfo=UTC))
    consent(db, patient, "withdrawn", datetime(2026, 11, 20, 12, tzinfo=UTC))
    with pytest.raises(InvalidInput) as withdrawn:
        plan(db, world_a)
    assert withdrawn.value.field == "consent"
    assert "withdrawn" in withdrawn.value.message
    refusals = db.scalars(
        select(AuditEvent.outcome).where(AuditEvent.action == "course.plan")
    ).all()
    assert refusals == ["invalid", "invalid"]


def test_a_second_active_course_is_refused(db: Session, world_a: ClinicWorld) -> None:
    ready(db, world_a.patients[0])
    first = plan(db, world_a)
    with pytest.raises(InvalidInput) as info:
        plan(db, world_a)
    assert info.value.field == "course"
    assert f"({first.id})" in info.value.message


def test_an_unknown_or_unplannable_protocol_names_the_field(
    db: Session, world_a: ClinicWorld
) -> None:
    ready(db, world_a.patients[0])
    for protocol in ("iv-ketamin", "oral-ketamine"):
        with pytest.raises(InvalidInput) as info:
            plan(db, world_a, protocol_id=protocol)
        assert info.value.field == "protocol_id"


def today() -> date:
    return datetime.now(UTC).astimezone(ZONE).date()


def test_no_session_is_planned_in_the_past(db: Session, world_a: ClinicWorld) -> None:
    ready(db, world_a.patients[0])
    with pytest.raises(InvalidInput) as info:
        plan(db, world_a, start_date=today() - timedelta(days=1))
    assert info.value.field == "start_date"
    # Planned today: a slot whose time has passed today is not used.
    out = plan(db, world_a, start_date=today())
    now = datetime.now(UTC)
    assert all(s.scheduled_at > now for s in out.sessions)
    assert out.start_date in (today(), today() + timedelta(days=1))
    with pytest.raises(InvalidInput) as replan_info:
        uc.replan_course(
            db,
            world_a.actor(Role.NURSE),
            out.id,
            uc.ReplanRequest(version=1, from_date=today() - timedelta(days=1)),
        )
    assert replan_info.value.field == "from_date"


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.ADMIN, Role.RESEARCHER])
def test_only_prescribers_and_nurses_plan(db: Session, world_a: ClinicWorld, role: Role) -> None:
    ready(db, world_a.patients[0])
    with pytest.raises(Forbidden):
        plan(db, world_a, role)
    assert plan(db, world_a, Role.PRESCRIBER).status == "active"


# --- planning ------------------------------------------------------------------------------


def test_planning_creates_a_row_per_session_at_the_planned_times(
    db: Session, world_a: ClinicWorld
) -> None:
    close_a_wednesday(db, world_a)
    patient = ready(db, world_a.patients[0])
    out = plan(db, world_a)
    rows = dosing(db, out.id)
    assert [local(r) for r in rows] == [
        day(0, 8, 0),
        day(3, 8, 0),  # Wednesday is closed
        day(7, 8, 0),
        day(9, 8, 0),
        day(11, 8, 15),
        day(14, 9, 0),
    ]
    assert [(r.plan_key, r.number, r.status) for r in rows] == [
        (f"infusion-{n}", n, "scheduled") for n in range(1, 7)
    ]
    assert {(r.protocol_id, r.patient_id, r.clinic_id) for r in rows} == {
        ("iv-ketamine", patient.id, world_a.clinic.id)
    }
    cbt = therapy(db, out.id)
    assert [local(r) for r in cbt] == [
        day(1, 8, 45),
        day(4, 8, 45),
        day(8, 8, 45),
        day(10, 8, 45),
        day(14, 8, 0),
        day(15, 9, 45),
    ]
    by_number = {r.number: r.id for r in rows}
    assert [(r.plan_key, r.follows_session_id, r.minutes) for r in cbt] == [
        (f"cbt-{n}", by_number[n], 50) for n in range(1, 7)
    ]
    # Stored UTC: 08:00 in Toronto in January is 13:00Z.
    assert rows[0].scheduled_at == utc(0, 8, 0)
    assert rows[0].scheduled_at.hour == 13
    assert [s.plan_key for s in out.sessions][:4] == ["infusion-1", "cbt-1", "infusion-2", "cbt-2"]
    assert out.warnings == [] and out.revision == 0 and out.version == 1
    assert out.plan["calendar"]["closed_dates"] == [CLOSED.isoformat()]
    db.expire_all()
    assert db.get(Patient, patient.id).stage == "in_course"  # type: ignore[union-attr]
    audit = db.scalars(select(AuditEvent).where(AuditEvent.action == "course.plan")).one()
    assert audit.outcome == "success" and audit.patient_id == patient.id
    assert audit.detail == {
        "course_id": out.id,
        "protocol": "iv-ketamine",
        "start_date": MONDAY.isoformat(),
        "sessions": 12,
        "warnings": [],
    }


def test_the_clinics_cbt_length_and_window_are_used(db: Session, world_a: ClinicWorld) -> None:
    data = ClinicSettingsIn.model_validate(
        {
            "monitoring": {"cbt_session_minutes": 45, "cbt_window_end_hours": 48},
            "change_note": "Shorter CBT sessions within two days, per the clinic's protocol.",
        }
    )
    update_clinic_settings(db, world_a.actor(Role.ADMIN), data, 1)
    ready(db, world_a.patients[0])
    out = plan(db, world_a, infusions=3)
    assert out.plan["settings"]["cbt_minutes"] == 45
    assert out.plan["settings"]["cbt_window_hours"] == [24.0, 48.0]
    assert {r.minutes for r in therapy(db, out.id)} == {45}
    assert len(dosing(db, out.id)) == 3


def test_a_course_without_cbt_has_no_therapy_rows(db: Session, world_a: ClinicWorld) -> None:
    ready(db, world_a.patients[0])
    out = plan(db, world_a, cbt=False)
    assert len(dosing(db, out.id)) == 6
    assert therapy(db, out.id) == []


# --- re-planning ---------------------------------------------------------------------------


def _took_place(db: Session, course_id: int) -> None:
    """Infusion 1 started ten minutes late and was signed off; CBT 1 was held."""
    first = dosing(db, course_id)[0]
    first.status = "completed"
    first.started_at = utc(0, 8, 10)
    cbt = therapy(db, course_id)[0]
    cbt.status = "completed"
    db.commit()


def test_replanning_after_a_missed_infusion(db: Session, world_a: ClinicWorld) -> None:
    close_a_wednesday(db, world_a)
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    _took_place(db, out.id)
    before = {r.plan_key: r.id for r in dosing(db, out.id)}
    request = uc.ReplanRequest(
        version=out.version,
        missed=["infusion-2"],
        reason=REASON,
        from_date=MONDAY + timedelta(days=4),
    )
    new = uc.replan_course(db, world_a.actor(Role.NURSE), out.id, request)
    db.expire_all()
    rows = dosing(db, out.id)
    assert [(r.plan_key, r.status, local(r)) for r in rows] == [
        ("infusion-1", "completed", day(0, 8, 0)),
        ("infusion-2", "missed", day(3, 8, 0)),
        ("infusion-2", "scheduled", day(4, 8, 15)),
        ("infusion-3", "scheduled", day(7, 9, 0)),
        ("infusion-4", "scheduled", day(9, 9, 0)),
        ("infusion-5", "scheduled", day(11, 9, 0)),
        ("infusion-6", "scheduled", day(14, 9, 0)),
    ]
    # The missed row stays; the later ones are the same rows, moved.
    assert rows[1].id == before["infusion-2"] and rows[2].id not in before.values()
    assert [r.id for r in rows[3:]] == [before[f"infusion-{n}"] for n in range(3, 7)]
    cbt = {r.plan_key: r for r in therapy(db, out.id)}
    assert local(cbt["cbt-2"]) == day(7, 8, 0)
    assert cbt["cbt-2"].follows_session_id == rows[2].id
    assert local(cbt["cbt-3"]) == day(8, 9, 45)
    assert new.revision == 1 and new.version == out.version + 1
    assert [(m.key, m.reason) for m in new.missed] == [("infusion-2", REASON)]
    assert new.missed[0].planned_start == utc(3, 8, 0)
    plan_json = {s["key"]: s for s in new.plan["sessions"]}
    # The late start of infusion 1 is what the plan now carries.
    assert plan_json["infusion-1"]["status"] == "completed"
    assert plan_json["infusion-1"]["start_utc"] == f"{MONDAY.isoformat()}T13:10:00Z"
    audit = db.scalars(select(AuditEvent).where(AuditEvent.action == "course.replan")).one()
    assert audit.detail["missed"] == ["infusion-2"] and audit.detail["created"] == 1


def test_replanning_again_keeps_every_missed_row(db: Session, world_a: ClinicWorld) -> None:
    close_a_wednesday(db, world_a)
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    _took_place(db, out.id)
    nurse = world_a.actor(Role.NURSE)
    first = uc.replan_course(
        db,
        nurse,
        out.id,
        uc.ReplanRequest(
            version=1, missed=["infusion-2"], reason=REASON, from_date=MONDAY + timedelta(days=4)
        ),
    )
    second = uc.replan_course(
        db,
        nurse,
        out.id,
        uc.ReplanRequest(
            version=first.version,
            missed=["infusion-2"],
            reason="Snowstorm, clinic reachable but patient could not travel.",
            from_date=MONDAY + timedelta(days=7),
        ),
    )
    statuses = [(r.plan_key, r.status) for r in dosing(db, out.id) if r.plan_key == "infusion-2"]
    assert statuses == [("infusion-2", "missed")] * 2 + [("infusion-2", "scheduled")]
    assert second.revision == 2
    assert [m.key for m in second.missed] == ["infusion-2", "infusion-2"]


def test_a_session_stopped_before_dosing_is_planned_again(
    db: Session, world_a: ClinicWorld
) -> None:
    close_a_wednesday(db, world_a)
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    _took_place(db, out.id)
    second = dosing(db, out.id)[1]
    # Blood pressure too high at the pre-check: stopped, no dose given.
    second.status, second.started_at = "stopped", utc(3, 8, 5)
    db.commit()
    new = uc.replan_course(
        db,
        world_a.actor(Role.NURSE),
        out.id,
        uc.ReplanRequest(version=1, from_date=MONDAY + timedelta(days=4)),
    )
    rows = [(r.status, local(r)) for r in dosing(db, out.id) if r.plan_key == "infusion-2"]
    assert rows == [("stopped", day(3, 8, 0)), ("scheduled", day(4, 8, 15))]
    assert [(m.key, m.reason) for m in new.missed] == [("infusion-2", "stopped before dosing")]


def test_a_missed_cbt_session_is_planned_again_in_its_window(
    db: Session, world_a: ClinicWorld
) -> None:
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    first = dosing(db, out.id)[0]
    first.status, first.started_at = "completed", first.scheduled_at
    db.commit()
    new = uc.replan_course(
        db,
        world_a.actor(Role.NURSE),
        out.id,
        uc.ReplanRequest(
            version=1, missed=["cbt-1"], reason=REASON, from_date=MONDAY + timedelta(days=2)
        ),
    )
    cbt1 = [(r.status, local(r)) for r in therapy(db, out.id) if r.plan_key == "cbt-1"]
    assert cbt1 == [
        ("missed", day(1, 8, 45)),
        ("scheduled", day(2, 8, 0)),
    ]
    assert new.warnings == []


@pytest.mark.parametrize(
    ("missed", "reason", "field"),
    [
        (["infusion-1"], REASON, "missed"),  # it took place
        (["infusion-9"], REASON, "missed"),
        (["infusion-2"], None, "reason"),
    ],
)
def test_replanning_refuses_what_cannot_be_missed(
    db: Session, world_a: ClinicWorld, missed: list[str], reason: str | None, field: str
) -> None:
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    _took_place(db, out.id)
    with pytest.raises(InvalidInput) as info:
        uc.replan_course(
            db,
            world_a.actor(Role.NURSE),
            out.id,
            uc.ReplanRequest(
                version=1, missed=missed, reason=reason, from_date=MONDAY + timedelta(days=4)
            ),
        )
    assert info.value.field == field
    db.expire_all()
    assert [r.status for r in dosing(db, out.id)].count("scheduled") == 5


def test_a_stale_version_is_a_conflict_and_changes_nothing(
    db: Session, world_a: ClinicWorld
) -> None:
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    nurse = world_a.actor(Role.NURSE)
    request = uc.ReplanRequest(version=1, missed=["infusion-1"], reason=REASON)
    uc.replan_course(db, nurse, out.id, request)
    before = [(r.id, r.status, r.scheduled_at) for r in dosing(db, out.id)]
    with pytest.raises(Conflict):
        uc.replan_course(db, nurse, out.id, request)
    with pytest.raises(Conflict):
        uc.stop_course(db, nurse, out.id, "Patient moved away.", 1)
    db.expire_all()
    assert [(r.id, r.status, r.scheduled_at) for r in dosing(db, out.id)] == before


def test_a_session_under_way_is_not_replanned(db: Session, world_a: ClinicWorld) -> None:
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    first = dosing(db, out.id)[0]
    first.status, first.started_at = "in_progress", first.scheduled_at
    db.commit()
    with pytest.raises(InvalidInput) as info:
        uc.replan_course(
            db,
            world_a.actor(Role.NURSE),
            out.id,
            uc.ReplanRequest(version=1, missed=["cbt-1"], reason=REASON),
        )
    assert "in progress" in info.value.message


# --- stopping ------------------------------------------------------------------------------


def test_stopping_cancels_the_scheduled_sessions(db: Session, world_a: ClinicWorld) -> None:
    patient = ready(db, world_a.patients[0])
    out = plan(db, world_a)
    _took_place(db, out.id)
    stopped = uc.stop_course(db, world_a.actor(Role.PRESCRIBER), out.id, "Moved away.", 1)
    assert stopped.status == "stopped" and stopped.stop_reason == "Moved away."
    assert [r.status for r in dosing(db, out.id)] == ["completed"] + ["cancelled"] * 5
    assert [r.status for r in therapy(db, out.id)] == ["completed"] + ["cancelled"] * 5
    db.expire_all()
    assert db.get(Patient, patient.id).stage == "eligible"  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        uc.replan_course(db, world_a.actor(Role.NURSE), out.id, uc.ReplanRequest(version=2))
    # A stopped course no longer blocks a new one.
    assert plan(db, world_a).status == "active"
    courses = uc.list_courses(db, world_a.actor(Role.THERAPIST), patient.id)
    assert [c.status for c in courses] == ["active", "stopped"]


# --- calendar ------------------------------------------------------------------------------


def _events(text: str) -> dict[str, object]:
    return {str(e["uid"]): e for e in Calendar.from_ical(text).walk("VEVENT")}


def test_the_calendar_has_one_event_per_session(db: Session, world_a: ClinicWorld) -> None:
    close_a_wednesday(db, world_a)
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    text = uc.course_calendar(db, world_a.actor(Role.THERAPIST), out.id)
    events = _events(text)
    assert len(events) == 12
    first = events[f"a-course-{out.id}-infusion-1@ketacare"]
    assert first.decoded("dtstart") == utc(0, 8, 0)  # type: ignore[attr-defined]
    second = events[f"a-course-{out.id}-infusion-2@ketacare"]
    assert second.decoded("dtstart") == utc(3, 8, 0)  # type: ignore[attr-defined]
    assert str(second["summary"]) == "Ketamine infusion 2 of 6"  # type: ignore[index]
    assert world_a.patients[0].family_name not in text
    _took_place(db, out.id)
    uc.replan_course(
        db,
        world_a.actor(Role.NURSE),
        out.id,
        uc.ReplanRequest(
            version=1, missed=["infusion-2"], reason=REASON, from_date=MONDAY + timedelta(days=4)
        ),
    )
    moved = _events(uc.course_calendar(db, world_a.actor(Role.NURSE), out.id))
    assert len(moved) == 12  # the missed one is replaced under the same UID
    again = moved[f"a-course-{out.id}-infusion-2@ketacare"]
    assert again.decoded("dtstart") == utc(4, 8, 15)  # type: ignore[attr-defined]
    assert int(again["sequence"]) == 1  # type: ignore[index]
    audit = db.scalars(select(AuditEvent.action).where(AuditEvent.action == "course.calendar"))
    assert len(audit.all()) == 2


def test_a_stopped_courses_calendar_cancels_what_did_not_happen(
    db: Session, world_a: ClinicWorld
) -> None:
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    _took_place(db, out.id)
    uc.stop_course(db, world_a.actor(Role.NURSE), out.id, "Moved away.", 1)
    events = _events(uc.course_calendar(db, world_a.actor(Role.NURSE), out.id))
    status = {uid.split(f"course-{out.id}-")[1]: str(e["status"]) for uid, e in events.items()}  # type: ignore[index]
    assert status["infusion-1@ketacare"] == "CONFIRMED"
    assert status["cbt-1@ketacare"] == "CONFIRMED"
    assert status["infusion-2@ketacare"] == "CANCELLED"
    assert sum(v == "CANCELLED" for v in status.values()) == 10


# --- reading and scoping -------------------------------------------------------------------


def test_another_clinic_cannot_read_or_change_a_course(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    outsider = world_b.actor(Role.PRESCRIBER)
    for call in (
        lambda: uc.get_course(db, outsider, out.id),
        lambda: uc.list_courses(db, outsider, world_a.patients[0].id),
        lambda: uc.course_calendar(db, outsider, out.id),
        lambda: uc.replan_course(
            db, outsider, out.id, uc.ReplanRequest(version=1, missed=["infusion-1"], reason=REASON)
        ),
        lambda: uc.stop_course(db, outsider, out.id, "Not ours.", 1),
    ):
        with pytest.raises(NotFound):
            call()
    db.expire_all()
    assert db.get(TreatmentCourse, out.id).version == 1  # type: ignore[union-attr]
    assert {r.status for r in dosing(db, out.id)} == {"scheduled"}


def test_listing_courses_costs_the_same_queries_for_one_or_many(
    db: Session, world_a: ClinicWorld
) -> None:
    patient = ready(db, world_a.patients[0])
    reader = world_a.actor(Role.THERAPIST)

    def count_queries() -> int:
        seen: list[str] = []

        def on_execute(*args: object) -> None:
            seen.append(str(args[2]))

        engine = db.get_bind()
        event.listen(engine, "before_cursor_execute", on_execute)
        try:
            uc.list_courses(db, reader, patient.id)
        finally:
            event.remove(engine, "before_cursor_execute", on_execute)
        return sum(1 for s in seen if s.lstrip().upper().startswith("SELECT"))

    first = plan(db, world_a)
    one = count_queries()
    uc.stop_course(db, world_a.actor(Role.NURSE), first.id, "Moved away.", 1)
    plan(db, world_a)
    assert len(uc.list_courses(db, reader, patient.id)) == 2
    assert count_queries() == one


def test_get_course_returns_the_rows_in_order(db: Session, world_a: ClinicWorld) -> None:
    ready(db, world_a.patients[0])
    out = plan(db, world_a)
    got = uc.get_course(db, world_a.actor(Role.THERAPIST), out.id)
    assert got == out
    kinds = [(s.kind, s.number) for s in got.sessions]
    assert kinds[:4] == [("infusion", 1), ("cbt", 1), ("infusion", 2), ("cbt", 2)]
    assert got.sessions[1].summary == "CBT session after infusion 1"
