"""A course plan as iCalendar: one VEVENT per session, UTC times, no patient name; parsed back."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from icalendar import Calendar

from ketacare.clinical.course import plan_course, replan
from ketacare.interop.ical import PRODID, plan_to_ics

STAMP = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def _plan():
    return plan_course(
        "iv-ketamine",
        date(2026, 3, 6),
        set(range(7)),
        (time(9), time(17)),
        set(),
        "America/Toronto",
    )


def _events(text: str) -> list:
    return [c for c in Calendar.from_ical(text).walk() if c.name == "VEVENT"]


def test_every_session_becomes_an_event_in_utc() -> None:
    plan = _plan()
    text = plan_to_ics(plan, course_id="course-42", stamp=STAMP)
    calendar = Calendar.from_ical(text)
    assert str(calendar["prodid"]) == PRODID and str(calendar["version"]) == "2.0"
    events = _events(text)
    assert len(events) == len(plan.sessions) == 12
    by_uid = {str(e["uid"]): e for e in events}
    assert len(by_uid) == 12
    second = by_uid["course-42-infusion-2@ketacare"]
    assert str(second["summary"]) == "Ketamine infusion 2 of 6"
    # 2026-03-08 10:00 EDT, right after the spring change, written in UTC.
    assert second.decoded("dtstart") == datetime(2026, 3, 8, 14, 0, tzinfo=UTC)
    assert second.decoded("dtend") == datetime(2026, 3, 8, 15, 40, tzinfo=UTC)
    assert "DTSTART:20260308T140000Z" in text
    cbt = by_uid["course-42-cbt-2@ketacare"]
    assert str(cbt["summary"]) == "CBT session after infusion 2"
    assert cbt.decoded("dtstamp") == STAMP
    for event in events:
        assert event.decoded("dtstart").tzinfo is not None
        assert event.decoded("dtstart").utcoffset().total_seconds() == 0


def test_the_file_carries_no_patient_identity() -> None:
    text = plan_to_ics(_plan(), course_id="course-42", stamp=STAMP)
    summaries = {str(e["summary"]) for e in _events(text)}
    assert all(s.startswith(("Ketamine infusion", "CBT session after")) for s in summaries)


def test_replanning_keeps_uids_and_raises_the_sequence() -> None:
    plan = _plan()
    later = replan(plan, ["infusion-1", "cbt-1"], ["infusion-2"], date(2026, 3, 9))
    before = {str(e["uid"]): e for e in _events(plan_to_ics(plan, course_id="c", stamp=STAMP))}
    after = {str(e["uid"]): e for e in _events(plan_to_ics(later, course_id="c", stamp=STAMP))}
    assert set(before) == set(after)
    moved = after["c-infusion-2@ketacare"]
    assert int(moved["sequence"]) == 1
    assert moved.decoded("dtstart") > before["c-infusion-2@ketacare"].decoded("dtstart")


def test_course_ids_are_made_uid_safe() -> None:
    text = plan_to_ics(_plan(), course_id="clinic a/course 7", stamp=STAMP)
    assert "UID:clinic-a-course-7-infusion-1@ketacare" in text
