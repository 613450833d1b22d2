"""Therapy (CBT) sessions: the structured note, signing, amendments, the database seal, the CBT
window after an infusion, the worklist and who may do what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import therapy as uc
from ketacare.app.errors import Conflict, Forbidden, InvalidInput, NotFound
from ketacare.app.permissions import Role
from ketacare.store.models import AuditEvent, Clinic, TherapySession, TreatmentSession
from ketacare.store.types import utcnow

NOW = datetime.now(UTC)
COMPLETE: dict[str, Any] = {
    "attendance": "attended",
    "minutes": 50,
    "techniques": ["organisation_planning", "infusion_integration"],
    "focus": "organisation_planning",
    "worked_on": "Set up one calendar; reviewed the week.",
    "homework": "Use the task list daily.",
    "patient_words": "It felt like stepping back from my thoughts.",
    "risk_check": {"asked": True, "result": "none"},
    "plan_next": "Distractibility module.",
}


def infusion(
    db: Session,
    world: ClinicWorld,
    *,
    ended_at: datetime | None,
    scheduled_at: datetime | None = None,
    patient: int = 0,
) -> int:
    row = TreatmentSession(
        clinic_id=world.clinic.id,
        patient_id=world.patients[patient].id,
        protocol_id="iv-ketamine",
        scheduled_at=scheduled_at or (ended_at or NOW) - timedelta(hours=1),
        status="completed" if ended_at else "scheduled",
        ended_at=ended_at,
    )
    db.add(row)
    db.commit()
    return row.id


def schedule(
    db: Session,
    world: ClinicWorld,
    at: datetime = NOW,
    *,
    follows: int | None = None,
    role: Role = Role.THERAPIST,
    patient: int = 0,
) -> uc.TherapyOut:
    return uc.schedule_therapy(
        db,
        world.actor(role),
        world.patients[patient].id,
        uc.TherapyCreate(scheduled_at=at, follows_session_id=follows),
    )


def save(db: Session, world: ClinicWorld, therapy_id: int, **note: Any) -> uc.TherapyOut:
    version = db.scalar(select(TherapySession.version).where(TherapySession.id == therapy_id))
    return uc.save_note(
        db,
        world.actor(Role.THERAPIST),
        therapy_id,
        uc.NoteUpdate.model_validate({**note, "version": version}),
    )


def signed(db: Session, world: ClinicWorld, **note: Any) -> uc.TherapyOut:
    row = schedule(db, world)
    draft = save(db, world, row.id, **(note or COMPLETE))
    return uc.sign_note(db, world.actor(Role.THERAPIST), row.id, uc.SignIn(version=draft.version))


# --- the note's validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"attendance": "present"}, ("attendance",)),
        ({"minutes": 0}, ("minutes",)),
        ({"minutes": 241}, ("minutes",)),
        ({"minutes": "fifty"}, ("minutes",)),
        ({"techniques": ["psychoeducation", "hypnosis"]}, ("techniques",)),
        ({"techniques": ["x"] * 21}, ("techniques",)),
        ({"focus": "hypnosis"}, ("focus",)),
        ({"worked_on": "x" * 4001}, ("worked_on",)),
        ({"homework": "x" * 2001}, ("homework",)),
        ({"patient_words": "x" * 2001}, ("patient_words",)),
        ({"plan_next": "x" * 2001}, ("plan_next",)),
        ({"risk_check": {"asked": True, "result": "maybe"}}, ("risk_check", "result")),
        ({"risk_check": {"asked": "perhaps"}}, ("risk_check", "asked")),
        ({"risk_check": {"action": "x" * 2001}}, ("risk_check", "action")),
        ({"risk_check": {"not_asked_reason": "x" * 501}}, ("risk_check", "not_asked_reason")),
        ({"risk_check": {"mood": "low"}}, ("risk_check", "mood")),
        ({"colour": "blue"}, ("colour",)),
    ],
)
def test_each_bad_field_of_the_note_is_named(
    change: dict[str, Any], field: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as err:
        uc.TherapyNote.model_validate({**COMPLETE, **change})
    locs = {tuple(str(p) for p in e["loc"] if not isinstance(p, int)) for e in err.value.errors()}
    assert locs == {field}


def test_the_unknown_technique_message_lists_the_vocabulary() -> None:
    with pytest.raises(ValidationError) as err:
        uc.TherapyNote.model_validate({"techniques": ["hypnosis"]})
    message = err.value.errors()[0]["msg"]
    assert "'hypnosis'" in message and "organisation_planning" in message


def test_a_draft_may_be_incomplete_and_blank_text_is_empty() -> None:
    note = uc.TherapyNote.model_validate(
        {"worked_on": "  ", "minutes": "", "techniques": ["mindfulness", "mindfulness"]}
    )
    assert note.worked_on is None and note.minutes is None
    assert note.techniques == ["mindfulness"]
    assert note.risk_check.asked is None


@pytest.mark.parametrize(
    ("note", "field"),
    [
        ({"risk_check": {"asked": False, "result": "none"}}, "risk_check.result"),
        ({"attendance": "did_not_attend", "minutes": 30}, "minutes"),
        ({"techniques": ["mindfulness"], "focus": "psychoeducation"}, "focus"),
    ],
)
def test_a_draft_that_contradicts_itself_is_refused(
    db: Session, world_a: ClinicWorld, note: dict[str, Any], field: str
) -> None:
    row = schedule(db, world_a)
    with pytest.raises(InvalidInput) as err:
        save(db, world_a, row.id, **note)
    assert err.value.field == field


# --- signing -----------------------------------------------------------------------------------


ACTION = "C-SSRS screen done, safety plan reviewed, prescriber told."


def _n(attendance: str, minutes: int | None, **risk: Any) -> dict[str, Any]:
    note: dict[str, Any] = {"attendance": attendance, "minutes": minutes}
    return {**note, "risk_check": risk} if risk else note


@pytest.mark.parametrize(
    ("note", "outcome"),
    [
        ({}, "attendance"),
        ({"worked_on": "Talked."}, "attendance"),
        (_n("attended", 50), "risk_check.asked"),
        (_n("attended", 50, asked=True), "risk_check.result"),
        (_n("attended", None, asked=True, result="none"), "minutes"),
        (_n("attended", 50, asked=False), "risk_check.not_asked_reason"),
        (_n("attended", 50, asked=True, result="passive_ideation"), "risk_check.action"),
        (
            _n("attended", 50, asked=True, result="active_ideation", action="ok"),
            "risk_check.action",
        ),
        (_n("attended", 50, asked=True, result="none"), "completed"),
        (
            _n("attended_partly", 20, asked=False, not_asked_reason="Left upset; phoned."),
            "completed",
        ),
        (_n("did_not_attend", None, asked=False), "missed"),
        (_n("attended", 50, asked=True, result="passive_ideation", action=ACTION), "completed"),
    ],
)
def test_signing_needs_attendance_and_the_risk_check(
    db: Session, world_a: ClinicWorld, note: dict[str, Any], outcome: str
) -> None:
    row = schedule(db, world_a)
    draft = save(db, world_a, row.id, **note)
    sign = uc.SignIn(version=draft.version)
    if outcome in ("completed", "missed"):
        out = uc.sign_note(db, world_a.actor(Role.THERAPIST), row.id, sign)
        assert out.status == outcome
        assert out.signed_at is not None
        assert out.therapist_id == world_a.users[Role.THERAPIST].id
    else:
        with pytest.raises(InvalidInput) as err:
            uc.sign_note(db, world_a.actor(Role.THERAPIST), row.id, sign)
        assert err.value.field == outcome
        db.expire_all()
        assert db.get(TherapySession, row.id).signed_at is None  # type: ignore[union-attr]


def test_signing_without_a_saved_note_or_ahead_of_time_is_refused(
    db: Session, world_a: ClinicWorld
) -> None:
    actor = world_a.actor(Role.THERAPIST)
    empty = schedule(db, world_a)
    with pytest.raises(InvalidInput) as err:
        uc.sign_note(db, actor, empty.id, uc.SignIn(version=empty.version))
    assert err.value.field == "attendance"
    later = schedule(db, world_a, NOW + timedelta(days=2))
    draft = save(db, world_a, later.id, **COMPLETE)
    with pytest.raises(InvalidInput) as err:
        uc.sign_note(db, actor, later.id, uc.SignIn(version=draft.version))
    assert err.value.field == "scheduled_at"


def test_after_signing_nothing_changes(db: Session, world_a: ClinicWorld) -> None:
    out = signed(db, world_a)
    actor = world_a.actor(Role.THERAPIST)
    with pytest.raises(InvalidInput) as err:
        uc.save_note(db, actor, out.id, uc.NoteUpdate(**{**COMPLETE, "version": out.version}))
    assert err.value.field == "status"
    with pytest.raises(InvalidInput):
        uc.sign_note(db, actor, out.id, uc.SignIn(version=out.version))
    with pytest.raises(InvalidInput):
        uc.cancel_session(
            db, actor, out.id, uc.CancelIn(status="missed", reason="wrong", version=out.version)
        )
    stored = db.get(TherapySession, out.id)
    assert stored is not None and stored.note is not None
    assert stored.note["worked_on"] == COMPLETE["worked_on"]
    assert stored.note["knowledge_version"]


def test_a_stale_version_is_a_conflict(db: Session, world_a: ClinicWorld) -> None:
    row = schedule(db, world_a)
    save(db, world_a, row.id, worked_on="First draft.")
    actor = world_a.actor(Role.THERAPIST)
    with pytest.raises(Conflict):
        uc.save_note(db, actor, row.id, uc.NoteUpdate(worked_on="Lost update", version=row.version))
    with pytest.raises(Conflict):
        uc.sign_note(db, actor, row.id, uc.SignIn(version=row.version))


def test_the_database_refuses_to_change_a_signed_row(
    db: Session, engine: Engine, world_a: ClinicWorld
) -> None:
    out = signed(db, world_a)
    open_row = schedule(db, world_a)
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(
            text("UPDATE therapy_sessions SET minutes = 10 WHERE id = :id"), {"id": out.id}
        )
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("DELETE FROM therapy_sessions WHERE id = :id"), {"id": out.id})
    # An unsigned row is an ordinary draft.
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE therapy_sessions SET minutes = 45 WHERE id = :id"), {"id": open_row.id}
        )
    db.expire_all()
    assert db.get(TherapySession, out.id).minutes == 50  # type: ignore[union-attr]
    assert db.get(TherapySession, open_row.id).minutes == 45  # type: ignore[union-attr]


# --- amendments and cancellation ------------------------------------------------------------


def test_an_amendment_is_a_new_signed_row_and_the_old_one_stays(
    db: Session, world_a: ClinicWorld
) -> None:
    original = signed(db, world_a)
    before = dict(db.get(TherapySession, original.id).note or {})  # type: ignore[union-attr]
    actor = world_a.actor(Role.PRESCRIBER)
    change = {**COMPLETE, "minutes": 45, "reason": "Session ended early; length corrected."}
    amended = uc.amend_note(db, actor, original.id, uc.AmendmentIn.model_validate(change))
    assert amended.id != original.id
    assert amended.amends_id == original.id
    assert amended.patient_id == original.patient_id
    assert amended.signed_at is not None and amended.status == "completed"
    assert amended.minutes == 45 and amended.amend_reason == change["reason"]
    assert amended.therapist_id == world_a.users[Role.PRESCRIBER].id
    db.expire_all()
    kept = db.get(TherapySession, original.id)
    assert kept is not None and kept.note == before and kept.minutes == 50
    entries = uc.list_patient_therapy(db, actor, world_a.patients[0].id)
    assert [(e.current.id, [h.id for h in e.history]) for e in entries] == [
        (amended.id, [original.id])
    ]
    detail = uc.get_therapy(db, actor, original.id)
    assert detail.current_id == amended.id
    assert [v.id for v in detail.versions] == [original.id, amended.id]
    # Only the note in force is amended; a second amendment of the original would fork.
    with pytest.raises(Conflict):
        uc.amend_note(db, actor, original.id, uc.AmendmentIn.model_validate(change))
    again = uc.amend_note(db, actor, amended.id, uc.AmendmentIn.model_validate(change))
    assert again.amends_id == amended.id


def test_an_amendment_must_be_complete_and_only_of_a_signed_note(
    db: Session, world_a: ClinicWorld
) -> None:
    actor = world_a.actor(Role.THERAPIST)
    draft = schedule(db, world_a)
    with pytest.raises(InvalidInput) as err:
        uc.amend_note(
            db, actor, draft.id, uc.AmendmentIn.model_validate({**COMPLETE, "reason": "fix"})
        )
    assert err.value.field == "status"
    out = signed(db, world_a)
    with pytest.raises(InvalidInput) as err:
        uc.amend_note(
            db, actor, out.id, uc.AmendmentIn.model_validate({"worked_on": "x", "reason": "fix"})
        )
    assert err.value.field == "attendance"
    with pytest.raises(ValidationError):
        uc.AmendmentIn.model_validate({**COMPLETE, "reason": ""})


def test_a_missed_or_cancelled_session_is_recorded_with_its_reason_and_sealed(
    db: Session, world_a: ClinicWorld
) -> None:
    actor = world_a.actor(Role.THERAPIST)
    row = schedule(db, world_a)
    save(db, world_a, row.id, worked_on="Prepared material.")
    version = db.get(TherapySession, row.id).version  # type: ignore[union-attr]
    out = uc.cancel_session(
        db, actor, row.id, uc.CancelIn(status="cancelled", reason="Clinic closed.", version=version)
    )
    assert (out.status, out.cancel_reason) == ("cancelled", "Clinic closed.")
    assert out.signed_at is not None and out.note is not None
    assert out.note.worked_on == "Prepared material."
    with pytest.raises(InvalidInput):
        save(db, world_a, row.id, worked_on="More")
    with pytest.raises(ValidationError):
        uc.CancelIn.model_validate({"status": "postponed", "reason": "x x", "version": 1})
    # A wrong cancellation is corrected by an amendment with the real attendance.
    fixed = uc.amend_note(
        db, actor, row.id, uc.AmendmentIn.model_validate({**COMPLETE, "reason": "Held after all."})
    )
    assert fixed.status == "completed"


# --- the CBT window after the infusion -------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "inside"), [(24, True), (72, True), (23.9, False), (72.1, False), (48, True)]
)
def test_the_cbt_window_counts_from_the_end_of_the_infusion(
    db: Session, world_a: ClinicWorld, hours: float, inside: bool
) -> None:
    ended = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    sid = infusion(db, world_a, ended_at=ended)
    out = schedule(db, world_a, ended + timedelta(hours=hours), follows=sid)
    assert out.window is not None
    assert out.window.inside is inside
    assert (out.window.start_hours, out.window.end_hours) == (24, 72)
    assert out.window.anchor == "ended_at" and out.window.anchor_at == ended
    assert out.window.hours_after == pytest.approx(hours)
    assert out.window.text.startswith("Inside" if inside else "Outside")
    assert "24-72 h" in out.window.text


def test_the_window_counts_from_the_end_of_dosing_not_from_sign_off(
    db: Session, world_a: ClinicWorld
) -> None:
    dose_end = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    sid = infusion(db, world_a, ended_at=dose_end + timedelta(hours=2))
    row = db.get(TreatmentSession, sid)
    assert row is not None
    row.dose_started_at, row.dose_ended_at = dose_end - timedelta(minutes=40), dose_end
    db.commit()
    # 23 h after sign-off, but 25 h after the infusion ended: inside the window.
    out = schedule(db, world_a, dose_end + timedelta(hours=25), follows=sid)
    assert out.window is not None and out.window.inside
    assert out.window.anchor_at == dose_end and out.window.hours_after == pytest.approx(25)


def test_without_an_end_the_window_counts_from_the_scheduled_time(
    db: Session, world_a: ClinicWorld
) -> None:
    planned = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    sid = infusion(db, world_a, ended_at=None, scheduled_at=planned)
    out = schedule(db, world_a, planned + timedelta(hours=73), follows=sid)
    assert out.window is not None
    assert (out.window.anchor, out.window.inside) == ("scheduled_at", False)
    assert "scheduled time" in out.window.text


def test_the_window_uses_the_clinics_settings_and_is_kept_at_signing(
    db: Session, world_a: ClinicWorld
) -> None:
    clinic = db.get(Clinic, world_a.clinic.id)
    assert clinic is not None
    clinic.settings = {"monitoring": {"cbt_window_start_hours": 12, "cbt_window_end_hours": 36}}
    db.commit()
    ended = NOW - timedelta(hours=20)
    sid = infusion(db, world_a, ended_at=ended)
    row = schedule(db, world_a, ended + timedelta(hours=18), follows=sid)
    assert row.window is not None and row.window.inside
    assert (row.window.start_hours, row.window.end_hours) == (12, 36)
    draft = save(db, world_a, row.id, **COMPLETE)
    out = uc.sign_note(db, world_a.actor(Role.THERAPIST), row.id, uc.SignIn(version=draft.version))
    # A later change of the clinic's window does not rewrite what the signed note recorded.
    clinic.settings = {"monitoring": {"cbt_window_start_hours": 24, "cbt_window_end_hours": 72}}
    db.commit()
    detail = uc.get_therapy(db, world_a.actor(Role.NURSE), out.id)
    assert detail.window is not None
    assert (detail.window.start_hours, detail.window.inside) == (12, True)


def test_the_infusion_followed_must_be_the_same_patients_and_before(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    ended = NOW - timedelta(hours=30)
    other_patient = infusion(db, world_a, ended_at=ended, patient=1)
    other_clinic = infusion(db, world_b, ended_at=ended)
    own = infusion(db, world_a, ended_at=ended)
    for sid in (other_patient, other_clinic, 999_999):
        with pytest.raises(InvalidInput) as err:
            schedule(db, world_a, follows=sid)
        assert err.value.field == "follows_session_id"
    with pytest.raises(InvalidInput) as err:
        schedule(db, world_a, ended - timedelta(hours=1), follows=own)
    assert err.value.field == "scheduled_at"
    with pytest.raises(ValidationError):
        uc.TherapyCreate.model_validate({"scheduled_at": "2026-03-02T10:00:00"})


def test_window_status_boundaries_as_a_pure_rule() -> None:
    end = datetime(2026, 1, 1, tzinfo=UTC)

    def at(h: float) -> bool:
        return uc.window_status(1, end + timedelta(hours=h), end, end, 24, 72).inside

    assert [at(h) for h in (23.9, 24, 72, 72.1, -1)] == [False, True, True, False, False]
    assert (
        "before the infusion ended"
        in uc.window_status(1, end, end + timedelta(hours=1), end, 24, 72).text
    )


# --- the worklist --------------------------------------------------------------------------------


def test_the_worklist_shows_the_clinics_unsigned_sessions_in_range(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    soon = schedule(db, world_a, NOW + timedelta(hours=2))
    in_six_days = schedule(db, world_a, NOW + timedelta(days=6), patient=1)
    overdue = schedule(db, world_a, NOW - timedelta(days=5), patient=2)
    schedule(db, world_a, NOW + timedelta(days=10))  # beyond the next 7 days
    done = signed(db, world_a)
    cancelled = schedule(db, world_a, NOW - timedelta(hours=3))
    uc.cancel_session(
        db,
        world_a.actor(Role.THERAPIST),
        cancelled.id,
        uc.CancelIn(status="missed", reason="No show.", version=cancelled.version),
    )
    other = schedule(db, world_b, NOW + timedelta(hours=1))
    page = uc.worklist(db, world_a.actor(Role.NURSE))
    ids = [i.id for i in page.items]
    assert ids == [overdue.id, soon.id, in_six_days.id]
    assert done.id not in ids and other.id not in ids
    assert [i.overdue for i in page.items] == [True, False, False]
    assert page.items[1].patient.family_name == world_a.patients[0].family_name
    theirs = uc.worklist(db, world_b.actor(Role.THERAPIST))
    assert [i.id for i in theirs.items] == [other.id]
    assert all(i.patient.id in {p.id for p in world_b.patients} for i in theirs.items)


def test_the_worklist_pages_and_runs_the_same_queries_for_any_page_size(
    db: Session, engine: Engine, world_a: ClinicWorld
) -> None:
    ended = NOW - timedelta(hours=30)
    sid = infusion(db, world_a, ended_at=ended)
    made = [schedule(db, world_a, NOW + timedelta(hours=h), follows=sid).id for h in range(1, 7)]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    actor = world_a.actor(Role.THERAPIST)
    event.listen(engine, "before_cursor_execute", count)
    try:
        first = uc.worklist(db, actor, limit=2)
        small = len(statements)
        statements.clear()
        everything = uc.worklist(db, actor, limit=50)
        large = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert 0 < small == large  # no query per row
    assert [i.id for i in everything.items] == made
    assert all(
        i.window is not None and i.window.follows_session_id == sid for i in everything.items
    )
    assert [i.id for i in first.items] == made[:2] and first.next_cursor
    second = uc.worklist(db, actor, limit=2, cursor=first.next_cursor)
    assert [i.id for i in second.items] == made[2:4]
    with pytest.raises(InvalidInput) as err:
        uc.worklist(db, actor, cursor="not-a-cursor")
    assert err.value.field == "cursor"


# --- who may do what; scoping; audit ----------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "may"),
    [
        (Role.THERAPIST, True),
        (Role.PRESCRIBER, True),
        (Role.NURSE, False),
        (Role.ADMIN, False),
        (Role.RESEARCHER, False),
    ],
)
def test_therapists_and_prescribers_write_notes_others_cannot(
    db: Session, world_a: ClinicWorld, role: Role, may: bool
) -> None:
    actor = world_a.actor(role)
    row = schedule(db, world_a)
    note = uc.NoteUpdate.model_validate({**COMPLETE, "version": row.version})
    if may:
        out = schedule(db, world_a, role=role)
        draft = uc.save_note(db, actor, out.id, note.model_copy(update={"version": out.version}))
        assert (
            uc.sign_note(db, actor, out.id, uc.SignIn(version=draft.version)).status == "completed"
        )
        return
    with pytest.raises(Forbidden):
        schedule(db, world_a, role=role)
    with pytest.raises(Forbidden):
        uc.save_note(db, actor, row.id, note)
    with pytest.raises(Forbidden):
        uc.sign_note(db, actor, row.id, uc.SignIn(version=row.version))
    with pytest.raises(Forbidden):
        uc.cancel_session(db, actor, row.id, uc.CancelIn(status="missed", reason="x y", version=1))
    if role is Role.RESEARCHER:
        with pytest.raises(Forbidden):
            uc.get_therapy(db, actor, row.id)
        with pytest.raises(Forbidden):
            uc.worklist(db, actor)
    else:
        assert uc.get_therapy(db, actor, row.id).id == row.id


def test_another_clinics_sessions_are_not_found(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    theirs = signed(db, world_b)
    mine = world_a.actor(Role.THERAPIST)
    with pytest.raises(NotFound):
        uc.get_therapy(db, mine, theirs.id)
    with pytest.raises(NotFound):
        uc.amend_note(
            db, mine, theirs.id, uc.AmendmentIn.model_validate({**COMPLETE, "reason": "x y"})
        )
    with pytest.raises(NotFound):
        uc.list_patient_therapy(db, mine, world_b.patients[0].id)
    with pytest.raises(NotFound):
        uc.schedule_therapy(db, mine, world_b.patients[0].id, uc.TherapyCreate(scheduled_at=NOW))
    assert (
        db.scalar(
            select(func.count())
            .select_from(TherapySession)
            .where(TherapySession.amends_id == theirs.id)
        )
        == 0
    )


def test_reads_and_writes_are_audited_with_the_patient(db: Session, world_a: ClinicWorld) -> None:
    out = signed(db, world_a)
    uc.get_therapy(db, world_a.actor(Role.NURSE), out.id)
    with pytest.raises(Forbidden):
        uc.sign_note(db, world_a.actor(Role.NURSE), out.id, uc.SignIn(version=1))
    events = db.execute(
        select(AuditEvent.action, AuditEvent.outcome, AuditEvent.patient_id).order_by(AuditEvent.id)
    ).all()
    pid = world_a.patients[0].id
    assert [tuple(e) for e in events] == [
        ("therapy.schedule", "success", pid),
        ("therapy.note", "success", pid),
        ("therapy.sign", "success", pid),
        ("therapy.view", "success", pid),
        ("therapy.sign", "denied", None),
    ]


def test_an_urgent_risk_result_is_flagged_with_the_pathway(
    db: Session, world_a: ClinicWorld
) -> None:
    action = "C-SSRS screen: no intent or plan; safety plan reviewed; prescriber told."
    out = signed(
        db,
        world_a,
        **{
            **COMPLETE,
            "risk_check": {"asked": True, "result": "passive_ideation", "action": action},
        },
    )
    assert out.urgent is not None
    assert out.urgent.result == "passive_ideation"
    assert "C-SSRS" in out.urgent.text and "pathway" in out.urgent.text
    panel = uc.therapy_panel(db, world_a.actor(Role.NURSE), world_a.patients[0].id)
    assert panel.latest_risk is not None and panel.latest_risk.id == out.id
    # A later session with no risk found: the latest risk check is no longer urgent.
    later = schedule(db, world_a, NOW + timedelta(minutes=5))
    draft = save(db, world_a, later.id, **COMPLETE)
    uc.sign_note(db, world_a.actor(Role.THERAPIST), later.id, uc.SignIn(version=draft.version))
    panel = uc.therapy_panel(db, world_a.actor(Role.NURSE), world_a.patients[0].id)
    assert panel.latest_risk is None
    assert [e.current.urgent is not None for e in panel.entries] == [False, True]


def test_plan_rows_from_course_planning_are_held_the_same_way(
    db: Session, world_a: ClinicWorld
) -> None:
    row = TherapySession(
        clinic_id=world_a.clinic.id,
        patient_id=world_a.patients[0].id,
        plan_key="cbt-3",
        scheduled_at=utcnow(),
        minutes=50,
        status="scheduled",
    )
    db.add(row)
    db.commit()
    page = uc.worklist(db, world_a.actor(Role.THERAPIST))
    assert [(i.id, i.plan_key) for i in page.items] == [(row.id, "cbt-3")]
    draft = save(db, world_a, row.id, **COMPLETE)
    out = uc.sign_note(db, world_a.actor(Role.THERAPIST), row.id, uc.SignIn(version=draft.version))
    assert (out.plan_key, out.status) == ("cbt-3", "completed")
