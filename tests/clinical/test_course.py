"""Course planning: open days and hours, closed dates, minimum gap, weekly cap, CBT window,
daylight-saving changes (America/Toronto 2026-03-08 and 2026-11-01) and re-planning."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.clinical.course import (
    CompletedSession,
    CoursePlan,
    CoursePlanError,
    plan_course,
    replan,
)
from ketacare.knowledge import knowledge_version

TZ = "America/Toronto"
ZONE = ZoneInfo(TZ)
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
HOURS = (time(9), time(17))
EVERY_DAY = set(range(7))
MWF = {MON, WED, FRI}


def plan(start: date, days: set[int] = MWF, closed: set[date] | None = None, **kw) -> CoursePlan:
    return plan_course(
        "iv-ketamine", start, days, kw.pop("hours", HOURS), closed or set(), TZ, **kw
    )


def check_invariants(result: CoursePlan) -> None:
    """What every plan must satisfy, whatever the calendar."""
    cal = result.calendar
    s = result.settings
    infusions = result.infusion_sessions
    for session in result.sessions:
        local = session.start
        assert local.tzinfo is not None
        assert cal.is_open(local.date()), session
        assert local.time() >= cal.opens, session
        finish = session.observation_end or session.end
        assert finish.date() == local.date() and finish.time() <= cal.closes, session
        assert session.start_utc.tzinfo == UTC
    gap = timedelta(hours=s["min_gap_hours"])
    for earlier, later in pairwise(infusions):
        assert later.start_utc - earlier.start_utc >= gap
    for session in infusions:
        week = [i for i in infusions if 0 <= (session.start.date() - i.start.date()).days < 7]
        assert len(week) <= s["max_sessions_per_7_days"]
    low, high = (timedelta(hours=h) for h in s["cbt_window_hours"])
    warned = {w.session for w in result.warnings if w.code == "cbt_window_impossible"}
    for infusion in infusions if s["cbt"] else ():
        key = f"cbt-{infusion.number}"
        if key in warned:
            assert key not in {c.key for c in result.cbt_sessions}
            continue
        cbt = result.session(key)  # never silently dropped
        assert infusion.end_utc + low <= cbt.start_utc
        assert cbt.end_utc <= infusion.end_utc + high
    busy = sorted(result.sessions, key=lambda x: x.start_utc)
    for first, second in pairwise(busy):
        assert first.busy_until_utc <= second.start_utc, (first, second)


# --- planning ------------------------------------------------------------------------------------


def test_six_infusions_on_monday_wednesday_friday() -> None:
    result = plan(date(2026, 1, 5))  # a Monday
    check_invariants(result)
    infusions = result.infusion_sessions
    assert [i.number for i in infusions] == [1, 2, 3, 4, 5, 6]
    assert [i.start.weekday() for i in infusions] == [MON, WED, FRI, MON, WED, FRI]
    assert infusions[0].start == datetime(2026, 1, 5, 9, 0, tzinfo=ZONE)
    assert infusions[0].summary == "Ketamine infusion 1 of 6"
    assert infusions[0].end - infusions[0].start == timedelta(minutes=40)
    assert infusions[0].observation_end - infusions[0].end == timedelta(minutes=60)
    assert len(result.cbt_sessions) == 6
    assert result.session("cbt-2").summary == "CBT session after infusion 2"
    assert (infusions[-1].start.date() - infusions[0].start.date()).days + 1 == 12
    assert result.warnings == ()
    assert result.settings["infusions"] == 6 and result.settings["min_gap_hours"] == 48
    assert result.knowledge_version == knowledge_version()


def test_the_first_infusion_is_on_or_after_the_start_date() -> None:
    result = plan(date(2026, 1, 6))  # a Tuesday: first open day is Wednesday
    assert result.infusion_sessions[0].start.date() == date(2026, 1, 7)


def test_closed_dates_are_skipped() -> None:
    closed = {date(2026, 1, 7), date(2026, 1, 12)}  # a Wednesday and the next Monday
    result = plan(date(2026, 1, 5), closed=closed)
    check_invariants(result)
    used = {s.start.date() for s in result.sessions}
    assert not used & closed
    assert [i.start.date() for i in result.infusion_sessions][:3] == [
        date(2026, 1, 5),
        date(2026, 1, 9),
        date(2026, 1, 14),
    ]


def test_a_longer_minimum_gap_is_respected() -> None:
    result = plan(date(2026, 1, 5), days=EVERY_DAY, min_gap_hours=72)
    check_invariants(result)
    starts = [i.start_utc for i in result.infusion_sessions]
    assert all(b - a >= timedelta(hours=72) for a, b in pairwise(starts))


def test_a_gap_shorter_than_the_protocol_is_refused() -> None:
    with pytest.raises(CoursePlanError) as info:
        plan(date(2026, 1, 5), min_gap_hours=24)
    assert info.value.field == "min_gap_hours"


def test_at_most_three_infusions_in_any_seven_days() -> None:
    result = plan(date(2026, 1, 5), days=EVERY_DAY)
    check_invariants(result)
    dates = [i.start.date() for i in result.infusion_sessions]
    assert dates[:4] == [date(2026, 1, 5), date(2026, 1, 7), date(2026, 1, 9), date(2026, 1, 12)]


def test_dosing_and_observation_must_end_before_closing() -> None:
    # 09:00-11:00: 40 min infusion + 60 min observation leaves 09:00 or 09:15 as starts.
    result = plan(date(2026, 1, 5), hours=(time(9), time(11)), cbt=False)
    check_invariants(result)
    assert {i.start.time() for i in result.infusion_sessions} <= {time(9), time(9, 15)}
    with pytest.raises(CoursePlanError) as info:
        plan(date(2026, 1, 5), hours=(time(9), time(10, 30)))
    assert info.value.field == "clinic_hours"


def test_a_later_start_time_is_chosen_when_it_lets_the_cbt_session_fit() -> None:
    # Friday 09:00 ends 09:40; its window closes Monday 09:40, too early for a 50-minute
    # session from 09:00. Starting Friday at 09:15 lets CBT fit on Monday 09:00-09:50.
    result = plan(date(2026, 1, 9), days={MON, FRI}, cbt_minutes=50)
    check_invariants(result)
    first = result.infusion_sessions[0]
    assert first.start == datetime(2026, 1, 9, 9, 15, tzinfo=ZONE)
    assert result.session("cbt-1").start == datetime(2026, 1, 12, 9, 0, tzinfo=ZONE)


def test_a_cbt_session_that_cannot_fit_is_a_warning_not_a_silent_drop() -> None:
    # Open Mondays and Fridays: 24-72 h after a Monday infusion every day is closed.
    result = plan(date(2026, 1, 5), days={MON, FRI})
    check_invariants(result)
    warnings = {w.session for w in result.warnings if w.code == "cbt_window_impossible"}
    mondays = {f"cbt-{i.number}" for i in result.infusion_sessions if i.start.weekday() == MON}
    assert mondays and warnings == mondays
    warning = next(w for w in result.warnings if w.session == "cbt-1")
    assert "24-72 h" in warning.text and warning.sources


def test_a_course_longer_than_the_protocol_span_is_flagged() -> None:
    result = plan(date(2026, 1, 5), days={MON})
    check_invariants(result)
    codes = {w.code for w in result.warnings}
    assert "course_longer_than_protocol" in codes
    assert len(result.infusion_sessions) == 6


def test_an_infusion_that_cannot_be_placed_is_reported() -> None:
    closed = {date(2026, 1, 5) + timedelta(days=n) for n in range(400)}
    result = plan(date(2026, 1, 5), closed=closed)
    assert result.sessions == ()
    assert [w.session for w in result.warnings if w.code == "infusion_not_placed"] == [
        f"infusion-{n}" for n in range(1, 7)
    ]


def test_no_cbt_when_asked() -> None:
    result = plan(date(2026, 1, 5), cbt=False)
    assert result.cbt_sessions == () and result.warnings == ()


def test_esketamine_course_is_twice_weekly_with_two_hours_of_monitoring() -> None:
    result = plan_course(
        "intranasal-esketamine", date(2026, 1, 5), {MON, TUE, WED, THU, FRI}, HOURS, set(), TZ
    )
    check_invariants(result)
    sessions = result.infusion_sessions
    assert len(sessions) == 8
    assert sessions[0].summary == "Esketamine nasal spray session 1 of 8"
    assert result.session("cbt-1").summary == "CBT session after session 1"
    assert sessions[0].observation_end - sessions[0].end == timedelta(minutes=120)
    assert result.settings["max_sessions_per_7_days"] == 2
    span = (sessions[-1].start.date() - sessions[0].start.date()).days + 1
    assert span <= 28 and result.warnings == ()


def test_im_course_uses_the_injection_time_reserve() -> None:
    result = plan_course("im-ketamine", date(2026, 1, 5), MWF, HOURS, set(), TZ)
    first = result.infusion_sessions[0]
    assert first.summary == "Ketamine injection (IM) 1 of 6"
    assert first.end - first.start == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"protocol_id": "oral-ketamine"}, "protocol"),
        ({"protocol_id": "no-such-protocol"}, "protocol"),
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"clinic_days": set()}, "clinic_days"),
        ({"clinic_days": {7}}, "clinic_days"),
        ({"clinic_hours": (time(17), time(9))}, "clinic_hours"),
        ({"infusions": 0}, "infusions"),
        ({"infusion_minutes": 30}, "infusion_minutes"),
        ({"infusion_minutes": 61}, "infusion_minutes"),
        ({"observation_minutes": 59}, "observation_minutes"),
        ({"cbt_window_hours": (72, 24)}, "cbt_window_hours"),
        ({"max_per_7_days": 4}, "max_per_7_days"),
        ({"start": datetime(2026, 1, 5, 9)}, "start"),
    ],
)
def test_bad_planning_inputs_name_the_field(kwargs: dict, field: str) -> None:
    args = {
        "protocol_id": "iv-ketamine",
        "start": date(2026, 1, 5),
        "clinic_days": MWF,
        "clinic_hours": HOURS,
        "closed_dates": set(),
        "tz": TZ,
    }
    args.update(kwargs)
    with pytest.raises(CoursePlanError) as info:
        plan_course(**args)
    assert info.value.field == field


def test_the_oral_refusal_gives_the_reason() -> None:
    with pytest.raises(CoursePlanError, match="at-home self-administration"):
        plan_course("oral-ketamine", date(2026, 1, 5), MWF, HOURS, set(), TZ)


# --- daylight-saving changes ---------------------------------------------------------------------


def test_spring_forward_keeps_48_elapsed_hours() -> None:
    # Friday 2026-03-06 09:00 EST = 14:00Z. 48 h later is Sunday 14:00Z = 10:00 EDT: a 09:00
    # start on Sunday would be only 47 h after.
    result = plan(date(2026, 3, 6), days=EVERY_DAY)
    check_invariants(result)
    first, second = result.infusion_sessions[:2]
    assert first.start == datetime(2026, 3, 6, 9, 0, tzinfo=ZONE)
    assert first.start.utcoffset() == timedelta(hours=-5)
    assert second.start.date() == date(2026, 3, 8)
    assert second.start.time() == time(10, 0)
    assert second.start.utcoffset() == timedelta(hours=-4)
    assert second.start_utc == datetime(2026, 3, 8, 14, 0, tzinfo=UTC)
    assert second.start_utc - first.start_utc == timedelta(hours=48)


def test_fall_back_opens_at_nine_local_time() -> None:
    # Friday 2026-10-30 09:00 EDT = 13:00Z; 48 h later is Sunday 13:00Z = 08:00 EST, before
    # opening, so the next infusion is at 09:00 EST (49 h).
    result = plan(date(2026, 10, 30), days=EVERY_DAY)
    check_invariants(result)
    first, second = result.infusion_sessions[:2]
    assert first.start_utc == datetime(2026, 10, 30, 13, 0, tzinfo=UTC)
    assert second.start == datetime(2026, 11, 1, 9, 0, tzinfo=ZONE)
    assert second.start.utcoffset() == timedelta(hours=-5)
    assert second.start_utc == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_cbt_window_is_elapsed_time_across_the_change() -> None:
    # Saturday 2026-03-07 infusion ends 09:40 EST (14:40Z); 24 h later is 14:40Z = 10:40 EDT.
    result = plan(date(2026, 3, 7), days=EVERY_DAY)
    check_invariants(result)
    cbt = result.session("cbt-1")
    assert cbt.start_utc >= datetime(2026, 3, 8, 14, 40, tzinfo=UTC)
    assert cbt.start.time() == time(10, 45)


def test_json_carries_local_and_utc_times() -> None:
    data = plan(date(2026, 3, 6), days=EVERY_DAY).to_json_dict()
    second = data["sessions"][2]
    assert second["key"] == "infusion-2"
    assert second["start"] == "2026-03-08T10:00:00-04:00"
    assert second["start_utc"] == "2026-03-08T14:00:00Z"
    assert data["calendar"]["tz"] == TZ


# --- re-planning ---------------------------------------------------------------------------------


def test_replan_after_a_missed_infusion_keeps_completed_sessions() -> None:
    original = plan(date(2026, 1, 5))
    assert original.session("infusion-2").start.date() == date(2026, 1, 7)
    result = replan(original, ["infusion-1", "cbt-1"], ["infusion-2"], date(2026, 1, 8))
    check_invariants(result)
    assert result.revision == 1
    assert result.session("infusion-1") == replace(
        original.session("infusion-1"), status="completed"
    )
    assert result.session("cbt-1").status == "completed"
    infusions = result.infusion_sessions
    assert [i.number for i in infusions] == [1, 2, 3, 4, 5, 6]
    assert infusions[1].status == "planned"
    assert infusions[1].start.date() == date(2026, 1, 9)  # next open day from the 8th
    assert infusions[1].summary == "Ketamine infusion 2 of 6"
    assert [m.key for m in result.missed] == ["infusion-2"]
    assert result.session("cbt-2").start > infusions[1].end


def test_replan_uses_the_actual_start_of_a_late_infusion() -> None:
    original = plan(date(2026, 1, 5), days=EVERY_DAY)
    late = datetime(2026, 1, 5, 14, 0, tzinfo=ZONE)
    result = replan(
        original, [CompletedSession("infusion-1", late)], ["infusion-2"], date(2026, 1, 6)
    )
    check_invariants(result)
    first, second = result.infusion_sessions[:2]
    assert first.start == late and first.status == "completed"
    assert second.start_utc - first.start_utc >= timedelta(hours=48)
    assert second.start == datetime(2026, 1, 7, 14, 0, tzinfo=ZONE)


def test_replan_replaces_a_missed_cbt_session_inside_its_window() -> None:
    original = plan(date(2026, 1, 5))
    result = replan(original, ["infusion-1"], ["cbt-1"], date(2026, 1, 7))
    check_invariants(result)
    cbt = result.session("cbt-1")
    assert cbt.status == "planned" and cbt.start.date() == date(2026, 1, 7)


def test_replan_warns_when_a_missed_cbt_window_has_passed() -> None:
    original = plan(date(2026, 1, 5))
    result = replan(original, ["infusion-1"], ["cbt-1"], date(2026, 1, 9))
    assert "cbt-1" in {w.session for w in result.warnings if w.code == "cbt_window_impossible"}


def test_replan_flags_sessions_that_were_not_reported() -> None:
    original = plan(date(2026, 1, 5))
    result = replan(original, ["infusion-1", "cbt-1"], [], date(2026, 1, 12))
    check_invariants(result)
    flagged = {w.session for w in result.warnings if w.code == "session_not_reported"}
    assert "infusion-2" in flagged
    assert result.session("infusion-2").start.date() >= date(2026, 1, 12)


@pytest.mark.parametrize(
    ("completed", "missed", "field"),
    [
        (["infusion-9"], [], "completed"),
        (["infusion-1"], ["infusion-1"], "missed_or_cancelled"),
        (["cbt-2"], [], "completed"),
        ([CompletedSession("infusion-1", datetime(2026, 1, 5, 9))], [], "completed"),
        ([], ["cbt-9"], "missed_or_cancelled"),
    ],
)
def test_replan_refuses_inconsistent_records(completed: list, missed: list, field: str) -> None:
    with pytest.raises(CoursePlanError) as info:
        replan(plan(date(2026, 1, 5)), completed, missed, date(2026, 1, 8))
    assert info.value.field == field


def test_replan_twice_accumulates_history() -> None:
    first = replan(
        plan(date(2026, 1, 5)), ["infusion-1", "cbt-1"], ["infusion-2"], date(2026, 1, 8)
    )
    second = replan(first, ["infusion-1", "cbt-1", "infusion-2"], ["cbt-2"], date(2026, 1, 10))
    check_invariants(second)
    assert second.revision == 2
    assert [m.key for m in second.missed] == ["infusion-2", "cbt-2"]


# --- property: any calendar, any start, the invariants hold ----------------------------------


@settings(max_examples=60, deadline=None)
@given(
    days=st.sets(st.integers(min_value=0, max_value=6), min_size=1),
    start=st.dates(min_value=date(2026, 2, 20), max_value=date(2026, 11, 10)),
    opens=st.integers(min_value=6, max_value=11),
    length=st.integers(min_value=3, max_value=12),
    closed_offsets=st.sets(st.integers(min_value=0, max_value=30), max_size=6),
)
def test_plans_always_satisfy_the_rules(
    days: set[int], start: date, opens: int, length: int, closed_offsets: set[int]
) -> None:
    closed = {start + timedelta(days=n) for n in closed_offsets}
    result = plan(
        start, days=days, closed=closed, hours=(time(opens), time(min(opens + length, 23)))
    )
    check_invariants(result)
    placed = len(result.infusion_sessions)
    unplaced = [w for w in result.warnings if w.code == "infusion_not_placed"]
    assert placed + len(unplaced) == 6
