"""A stored plan rebuilds exactly: CoursePlan.from_json_dict inverts to_json_dict, with times
back in the clinic's zone, and a rebuilt plan re-plans as the original would."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.clinical.course import (
    ClinicCalendar,
    CoursePlan,
    MissedSession,
    PlannedSession,
    PlanWarning,
    plan_course,
    replan,
)

TZ = "America/Toronto"


def _plan(start: date, days: set[int], closed: set[date], hours: tuple[time, time]) -> CoursePlan:
    return plan_course("iv-ketamine", start, days, hours, closed, TZ)


def test_a_replanned_plan_with_history_and_warnings_round_trips() -> None:
    original = _plan(date(2026, 1, 5), {0, 2, 4}, {date(2026, 1, 7)}, (time(9), time(17)))
    replanned = replan(original, ["infusion-1"], ["infusion-2"], date(2026, 1, 12))
    assert replanned.missed and replanned.warnings and replanned.revision == 1
    rebuilt = CoursePlan.from_json_dict(replanned.to_json_dict())
    assert rebuilt == replanned
    assert rebuilt.to_json_dict() == replanned.to_json_dict()
    assert all(s.start.tzinfo == ZoneInfo(TZ) for s in rebuilt.sessions)
    assert rebuilt.missed[0].planned_start.tzinfo == ZoneInfo(TZ)
    # The rebuilt plan re-plans exactly as the original does.
    later = (["infusion-1", "infusion-2"], ["infusion-3"], date(2026, 1, 19))
    assert replan(rebuilt, *later) == replan(replanned, *later)


def test_each_part_round_trips() -> None:
    calendar = ClinicCalendar(
        frozenset({0, 3}), time(8, 30), time(16), frozenset({date(2026, 12, 25)}), TZ
    )
    assert ClinicCalendar.from_json_dict(calendar.to_json_dict()) == calendar
    warning = PlanWarning("cbt_window_impossible", "No CBT slot.", "cbt-2", ("a", "b"))
    assert PlanWarning.from_json_dict(warning.to_json_dict()) == warning
    session = _plan(date(2026, 3, 6), set(range(7)), set(), (time(9), time(17))).sessions[2]
    assert PlannedSession.from_json_dict(session.to_json_dict(), TZ) == session
    assert session.observation_end is not None
    missed = MissedSession("infusion-2", session.start, "Unwell")
    assert MissedSession.from_json_dict(missed.to_json_dict(), TZ) == missed


@settings(max_examples=40, deadline=None)
@given(
    days=st.sets(st.integers(min_value=0, max_value=6), min_size=1),
    start=st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 1)),
    opens=st.integers(min_value=6, max_value=11),
    length=st.integers(min_value=3, max_value=12),
    closed_offsets=st.sets(st.integers(min_value=0, max_value=30), max_size=6),
    missed_first=st.booleans(),
)
def test_any_plan_round_trips(
    days: set[int],
    start: date,
    opens: int,
    length: int,
    closed_offsets: set[int],
    missed_first: bool,
) -> None:
    closed = {start + timedelta(days=n) for n in closed_offsets}
    result = _plan(start, days, closed, (time(opens), time(min(opens + length, 23))))
    if missed_first and result.infusion_sessions:
        result = replan(result, [], ["infusion-1"], start + timedelta(days=2))
    rebuilt = CoursePlan.from_json_dict(result.to_json_dict())
    assert rebuilt == result
    assert rebuilt.to_json_dict() == result.to_json_dict()
