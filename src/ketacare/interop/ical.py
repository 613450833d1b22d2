"""A course plan as an iCalendar file (RFC 5545), one VEVENT per session.

Times are written in UTC. Summaries name the session, never the patient ("Ketamine infusion
2 of 6", "CBT session after infusion 2"), because calendar files travel to phones and shared
calendars. A session's UID is stable across re-planning (course id + session key) and SEQUENCE
is the plan's revision, so a calendar that imported an earlier version moves the event instead
of duplicating it. Missed or cancelled sessions are left out: their rescheduled session carries
the same UID.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from icalendar import Calendar, Event

from ketacare.clinical.course import CoursePlan, PlannedSession

__all__ = ["PRODID", "event_uid", "plan_to_ics"]

PRODID = "-//KetaCare//Course plan//EN"
_UID_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def event_uid(course_id: str, session: PlannedSession) -> str:
    """Stable UID of one session of one course."""
    return f"{_UID_SAFE.sub('-', course_id)}-{session.key}@ketacare"


def _description(plan: CoursePlan, session: PlannedSession) -> str:
    settings = plan.settings
    if session.kind == "cbt":
        return (
            f"CBT session ({settings['cbt_minutes']} min). Planned "
            f"{settings['cbt_window_hours'][0]:g}-{settings['cbt_window_hours'][1]:g} h after "
            f"the end of dosing. Protocol {plan.protocol}."
        )
    return (
        f"Dosing {settings['infusion_minutes']} min, then observation of at least "
        f"{settings['observation_minutes']} min; discharge only when the discharge criteria are "
        f"met. Protocol {plan.protocol}. Bring a responsible adult escort; no driving afterwards."
    )


def plan_to_ics(
    plan: CoursePlan,
    *,
    course_id: str,
    stamp: datetime | None = None,
    calendar_name: str | None = None,
) -> str:
    """The plan as iCalendar text. ``course_id`` must be unique per course (it makes the UIDs);
    ``stamp`` is the DTSTAMP (default: now, UTC)."""
    if not course_id.strip():
        raise ValueError("course_id: give the course's identifier")
    if stamp is not None and stamp.tzinfo is None:
        raise ValueError("stamp: give an aware datetime")
    stamp_utc = (stamp or datetime.now(UTC)).astimezone(UTC)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-timezone", plan.calendar.tz)
    if calendar_name:
        calendar.add("x-wr-calname", calendar_name)
    for session in plan.sessions:
        event = Event()
        event.add("uid", event_uid(course_id, session))
        event.add("dtstamp", stamp_utc)
        event.add("dtstart", session.start_utc)
        # The event blocks the visit: dosing plus observation for a dosing session.
        event.add("dtend", session.busy_until_utc)
        event.add("summary", session.summary)
        event.add("description", _description(plan, session))
        event.add("sequence", plan.revision)
        event.add("status", "CONFIRMED")
        event.add("transp", "OPAQUE")
        event.add("categories", ["KetaCare", "CBT" if session.kind == "cbt" else "Dosing"])
        if session.status == "completed":
            event.add("x-ketacare-status", "completed")
        calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")
