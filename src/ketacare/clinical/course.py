"""Plan a treatment course: dosing sessions on open clinic days, a CBT session after each.

Pure: the calendar (open weekdays, hours, closed dates, time zone) and the start date are
arguments. Times are planned in the clinic's zone and carried in UTC too. All arithmetic and
comparison is done in UTC, because Python compares and subtracts two datetimes that share a
tzinfo by wall clock: across a daylight-saving change "Friday 09:00 to Sunday 09:00" is 47 or
49 hours, not 48. A minimum gap is elapsed time; "7 days" for the weekly cap is calendar days.

Nothing is dropped silently: a CBT session that cannot fit its window, an infusion that cannot
be placed, or a course longer than the protocol's span comes back as a planning warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ketacare.knowledge import knowledge_version
from ketacare.knowledge.protocol_defs import ProtocolDef, load_monitoring, load_protocols

__all__ = [
    "ClinicCalendar",
    "CompletedSession",
    "CoursePlan",
    "CoursePlanError",
    "MissedSession",
    "PlanWarning",
    "PlannedSession",
    "plan_course",
    "replan",
]

SessionKind = Literal["infusion", "cbt"]
HORIZON_DAYS = 366  # how far ahead the planner looks for an open slot before giving up
_CONVENTION = ("ketacare-clinic-convention",)


class CoursePlanError(ValueError):
    """Planning inputs that cannot be used; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ClinicCalendar:
    """When the clinic is open. ``days`` are weekday numbers, 0 = Monday ... 6 = Sunday."""

    days: frozenset[int]
    opens: time
    closes: time
    closed_dates: frozenset[date]
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def is_open(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.closed_dates

    def utc(self, day: date, wall: time) -> datetime | None:
        """The UTC instant of a local wall time, or None when the clock skips it (DST gap)."""
        local = datetime.combine(day, wall, tzinfo=self.zone)
        instant = local.astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) != local.replace(tzinfo=None):
            return None
        return instant

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "days": sorted(self.days),
            "opens": self.opens.isoformat(timespec="minutes"),
            "closes": self.closes.isoformat(timespec="minutes"),
            "closed_dates": [d.isoformat() for d in sorted(self.closed_dates)],
            "tz": self.tz,
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> ClinicCalendar:
        """The inverse of :meth:`to_json_dict` (a stored plan's calendar)."""
        return cls(
            days=frozenset(int(d) for d in data["days"]),
            opens=time.fromisoformat(data["opens"]),
            closes=time.fromisoformat(data["closes"]),
            closed_dates=frozenset(date.fromisoformat(d) for d in data["closed_dates"]),
            tz=data["tz"],
        )


@dataclass(frozen=True)
class PlannedSession:
    """One session. ``number`` is the infusion's number; a CBT session carries the number of the
    infusion it follows. ``end`` is the end of dosing (or of the CBT session)."""

    kind: SessionKind
    number: int
    start: datetime  # clinic zone
    end: datetime  # clinic zone
    observation_end: datetime | None  # infusions: end + observation
    summary: str
    status: Literal["planned", "completed"] = "planned"

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.number}"

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def busy_until_utc(self) -> datetime:
        """The chair and the patient are taken until observation ends."""
        return (self.observation_end or self.end).astimezone(UTC)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "number": self.number,
            "status": self.status,
            "summary": self.summary,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "observation_end": self.observation_end.isoformat() if self.observation_end else None,
            "start_utc": _z(self.start_utc),
            "end_utc": _z(self.end_utc),
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any], tz: str) -> PlannedSession:
        """The inverse of :meth:`to_json_dict`; times come back in the clinic's zone ``tz``."""
        zone = ZoneInfo(tz)
        observation_end = data.get("observation_end")
        return cls(
            kind=data["kind"],
            number=int(data["number"]),
            start=datetime.fromisoformat(data["start"]).astimezone(zone),
            end=datetime.fromisoformat(data["end"]).astimezone(zone),
            observation_end=(
                datetime.fromisoformat(observation_end).astimezone(zone)
                if observation_end
                else None
            ),
            summary=data["summary"],
            status=data.get("status", "planned"),
        )


@dataclass(frozen=True)
class PlanWarning:
    code: str
    text: str
    session: str | None
    sources: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "text": self.text,
            "session": self.session,
            "sources": list(self.sources),
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> PlanWarning:
        return cls(
            code=data["code"],
            text=data["text"],
            session=data.get("session"),
            sources=tuple(data.get("sources") or ()),
        )


@dataclass(frozen=True)
class MissedSession:
    """A session that did not happen, kept in the plan's history."""

    key: str
    planned_start: datetime
    reason: str

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "planned_start": self.planned_start.isoformat(),
            "reason": self.reason,
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any], tz: str) -> MissedSession:
        return cls(
            key=data["key"],
            planned_start=datetime.fromisoformat(data["planned_start"]).astimezone(ZoneInfo(tz)),
            reason=data["reason"],
        )


@dataclass(frozen=True)
class CompletedSession:
    """A session that took place; ``start`` is when it actually started (None: as planned)."""

    key: str
    start: datetime | None = None


@dataclass(frozen=True)
class CoursePlan:
    protocol: str
    start: date
    calendar: ClinicCalendar
    infusions: int
    sessions: tuple[PlannedSession, ...]
    warnings: tuple[PlanWarning, ...]
    settings: Mapping[str, Any]
    missed: tuple[MissedSession, ...] = ()
    revision: int = 0
    knowledge_version: str = ""

    def session(self, key: str) -> PlannedSession:
        for session in self.sessions:
            if session.key == key:
                return session
        raise KeyError(key)

    @property
    def infusion_sessions(self) -> tuple[PlannedSession, ...]:
        return tuple(s for s in self.sessions if s.kind == "infusion")

    @property
    def cbt_sessions(self) -> tuple[PlannedSession, ...]:
        return tuple(s for s in self.sessions if s.kind == "cbt")

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "start": self.start.isoformat(),
            "infusions": self.infusions,
            "revision": self.revision,
            "calendar": self.calendar.to_json_dict(),
            "sessions": [s.to_json_dict() for s in self.sessions],
            "missed": [m.to_json_dict() for m in self.missed],
            "warnings": [w.to_json_dict() for w in self.warnings],
            "settings": dict(self.settings),
            "knowledge_version": self.knowledge_version,
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> CoursePlan:
        """Rebuild a stored plan (the inverse of :meth:`to_json_dict`) to re-plan or export it."""
        calendar = ClinicCalendar.from_json_dict(data["calendar"])
        return cls(
            protocol=data["protocol"],
            start=date.fromisoformat(data["start"]),
            calendar=calendar,
            infusions=int(data["infusions"]),
            sessions=tuple(PlannedSession.from_json_dict(s, calendar.tz) for s in data["sessions"]),
            warnings=tuple(PlanWarning.from_json_dict(w) for w in data.get("warnings") or ()),
            settings=dict(data["settings"]),
            missed=tuple(
                MissedSession.from_json_dict(m, calendar.tz) for m in data.get("missed") or ()
            ),
            revision=int(data.get("revision", 0)),
            knowledge_version=data.get("knowledge_version", ""),
        )


def _z(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- validation ------------------------------------------------------------------------------


def _plannable(protocol_id: str) -> ProtocolDef:
    protocols = load_protocols()
    if protocol_id not in protocols:
        raise CoursePlanError(
            "protocol", f"unknown protocol {protocol_id!r}; known: {', '.join(protocols)}"
        )
    protocol = protocols[protocol_id]
    if not protocol.plannable:
        reason = " ".join((protocol.not_plannable_reason or "").split())
        raise CoursePlanError("protocol", f"{protocol.name} is not planned by KetaCare. {reason}")
    return protocol


def _calendar(
    clinic_days: Iterable[int],
    clinic_hours: tuple[time, time],
    closed_dates: Iterable[date],
    tz: str,
) -> ClinicCalendar:
    days = frozenset(clinic_days)
    if not days:
        raise CoursePlanError("clinic_days", "give at least one open weekday (0 = Monday)")
    for day in days:
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
            raise CoursePlanError(
                "clinic_days", f"{day!r} is not a weekday number 0 (Monday) to 6 (Sunday)"
            )
    try:
        opens, closes = clinic_hours
    except (TypeError, ValueError):
        raise CoursePlanError("clinic_hours", "give (opening time, closing time)") from None
    if not isinstance(opens, time) or not isinstance(closes, time):
        raise CoursePlanError("clinic_hours", "opening and closing must be times of day")
    if opens.tzinfo is not None or closes.tzinfo is not None:
        raise CoursePlanError("clinic_hours", "give local wall times without a time zone")
    if not opens < closes:
        raise CoursePlanError("clinic_hours", f"opening {opens} must be before closing {closes}")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise CoursePlanError("tz", f"unknown time zone {tz!r}") from None
    return ClinicCalendar(days, opens, closes, frozenset(closed_dates), tz)


@dataclass(frozen=True)
class _Rules:
    infusions: int
    min_gap: timedelta
    max_per_7_days: int
    dosing: timedelta
    observation: timedelta
    cbt: bool
    cbt_window: tuple[timedelta, timedelta]
    cbt_length: timedelta
    slot: timedelta
    span_days_max: int

    def as_settings(self) -> dict[str, Any]:
        hours = 3600
        return {
            "infusions": self.infusions,
            "min_gap_hours": self.min_gap.total_seconds() / hours,
            "max_sessions_per_7_days": self.max_per_7_days,
            "infusion_minutes": int(self.dosing.total_seconds() // 60),
            "observation_minutes": int(self.observation.total_seconds() // 60),
            "cbt": self.cbt,
            "cbt_window_hours": [w.total_seconds() / hours for w in self.cbt_window],
            "cbt_minutes": int(self.cbt_length.total_seconds() // 60),
            "slot_minutes": int(self.slot.total_seconds() // 60),
            "span_days_max": self.span_days_max,
        }


def _positive_int(name: str, value: object, low: int = 1, high: int = 10_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CoursePlanError(name, f"expected a whole number {low}-{high}, got {value!r}")
    return value


def _rules(
    protocol: ProtocolDef,
    *,
    infusions: int | None,
    min_gap_hours: float | None,
    max_per_7_days: int | None,
    infusion_minutes: int | None,
    observation_minutes: int | None,
    cbt: bool,
    cbt_window_hours: tuple[float, float] | None,
    cbt_minutes: int | None,
    slot_minutes: int,
) -> _Rules:
    course, timing, monitoring = protocol.course, protocol.timing, protocol.monitoring
    assert course is not None and timing is not None and monitoring is not None
    mon = load_monitoring()
    count = _positive_int(
        "infusions", course.induction_sessions.value if infusions is None else infusions, 1, 100
    )
    gap = course.min_gap_hours.value if min_gap_hours is None else min_gap_hours
    if isinstance(gap, bool) or not isinstance(gap, int | float) or gap < 0:
        raise CoursePlanError("min_gap_hours", f"expected hours >= 0, got {gap!r}")
    if gap < course.min_gap_hours.value:
        raise CoursePlanError(
            "min_gap_hours",
            f"{gap} h is shorter than this protocol's minimum of {course.min_gap_hours.value} h",
        )
    weekly_default = course.max_sessions_per_7_days.value
    weekly = _positive_int(
        "max_per_7_days", weekly_default if max_per_7_days is None else max_per_7_days, 1, 7
    )
    if weekly > weekly_default:
        raise CoursePlanError(
            "max_per_7_days",
            f"{weekly} exceeds this protocol's maximum of {weekly_default} in 7 days",
        )
    dosing = _positive_int(
        "infusion_minutes",
        timing.standard_minutes.value if infusion_minutes is None else infusion_minutes,
    )
    if not timing.min_minutes.value <= dosing <= timing.max_minutes.value:
        raise CoursePlanError(
            "infusion_minutes",
            f"{dosing} min is outside this protocol's {timing.min_minutes.value}-"
            f"{timing.max_minutes.value} min",
        )
    minimum_obs = monitoring.observation_minutes.value
    observation = minimum_obs if observation_minutes is None else observation_minutes
    observation = _positive_int("observation_minutes", observation, 0, 24 * 60)
    if observation < minimum_obs:
        raise CoursePlanError(
            "observation_minutes",
            f"{observation} min is shorter than this protocol's minimum of {minimum_obs} min",
        )
    if cbt_window_hours is None:
        window = (mon.value("cbt_window_start_hours"), mon.value("cbt_window_end_hours"))
    else:
        try:
            window = (float(cbt_window_hours[0]), float(cbt_window_hours[1]))
        except (TypeError, ValueError, IndexError):
            raise CoursePlanError("cbt_window_hours", "give (from hours, to hours)") from None
    if not 0 <= window[0] < window[1] <= 24 * 14:
        raise CoursePlanError(
            "cbt_window_hours", f"the window must satisfy 0 <= from < to <= 336 h, got {window}"
        )
    default_length = int(mon.value("cbt_session_minutes"))
    length = _positive_int(
        "cbt_minutes", default_length if cbt_minutes is None else cbt_minutes, 1, 24 * 60
    )
    slot = _positive_int("slot_minutes", slot_minutes, 1, 240)
    return _Rules(
        infusions=count,
        min_gap=timedelta(hours=gap),
        max_per_7_days=weekly,
        dosing=timedelta(minutes=dosing),
        observation=timedelta(minutes=observation),
        cbt=cbt,
        cbt_window=(timedelta(hours=window[0]), timedelta(hours=window[1])),
        cbt_length=timedelta(minutes=length),
        slot=timedelta(minutes=slot),
        span_days_max=course.span_days_max.value,
    )


# --- the scheduler ---------------------------------------------------------------------------


@dataclass
class _Scheduler:
    protocol: ProtocolDef
    calendar: ClinicCalendar
    rules: _Rules
    total: int
    sessions: list[PlannedSession]
    warnings: list[PlanWarning]

    def summary(self, kind: SessionKind, number: int) -> str:
        if kind == "infusion":
            return f"{self.protocol.session_label} {number} of {self.total}"
        return f"CBT session after {self.protocol.session_noun} {number}"

    def _busy(self, start: datetime, end: datetime, extra: Sequence[PlannedSession] = ()) -> bool:
        for other in (*self.sessions, *extra):
            if start < other.busy_until_utc and other.start_utc < end:
                return True
        return False

    def _slots(self, day: date, not_before: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(start, closing) in UTC for each slot of an open day, from ``not_before`` on."""
        close = self.calendar.utc(day, self.calendar.closes)
        if close is None:
            return
        wall = datetime.combine(day, self.calendar.opens)
        end_of_day = datetime.combine(day, self.calendar.closes)
        while wall < end_of_day:
            start = self.calendar.utc(day, wall.time())
            if start is not None and start >= not_before:
                yield start, close
            wall += self.rules.slot

    def _days(self, first: datetime) -> Iterator[date]:
        day = self.calendar.local(first).date()
        for offset in range(HORIZON_DAYS):
            current = day + timedelta(days=offset)
            if self.calendar.is_open(current):
                yield current

    def _weekly_count(self, day: date) -> int:
        # "At most N in any 7 consecutive calendar days", counted in the clinic's dates.
        return sum(
            1
            for s in self.sessions
            if s.kind == "infusion" and 0 <= (day - s.start.date()).days < 7
        )

    def _infusion(self, number: int, start: datetime) -> PlannedSession:
        end = start + self.rules.dosing
        return PlannedSession(
            kind="infusion",
            number=number,
            start=self.calendar.local(start),
            end=self.calendar.local(end),
            observation_end=self.calendar.local(end + self.rules.observation),
            summary=self.summary("infusion", number),
        )

    def find_cbt(
        self, infusion: PlannedSession, not_before: datetime, extra: Sequence[PlannedSession] = ()
    ) -> PlannedSession | None:
        low = infusion.end_utc + self.rules.cbt_window[0]
        high = infusion.end_utc + self.rules.cbt_window[1]
        first = max(low, not_before)
        for day in self._days(first):
            for start, close in self._slots(day, first):
                end = start + self.rules.cbt_length
                if end > high:
                    return None  # every later slot ends later still
                if end > close:
                    break
                if self._busy(start, end, (*extra, infusion)):
                    continue
                return PlannedSession(
                    kind="cbt",
                    number=infusion.number,
                    start=self.calendar.local(start),
                    end=self.calendar.local(end),
                    observation_end=None,
                    summary=self.summary("cbt", infusion.number),
                )
        return None

    def place_infusion(self, number: int, not_before: datetime) -> bool:
        """Place one infusion (and its CBT session) at the earliest feasible time."""
        previous = [s.start_utc for s in self.sessions if s.kind == "infusion"]
        earliest = max([not_before, *(p + self.rules.min_gap for p in previous)])
        session_length = self.rules.dosing + self.rules.observation
        for day in self._days(earliest):
            if self._weekly_count(day) >= self.rules.max_per_7_days:
                continue
            fallback: PlannedSession | None = None
            for start, close in self._slots(day, earliest):
                if start + session_length > close:
                    break
                if self._busy(start, start + session_length):
                    continue
                infusion = self._infusion(number, start)
                if not self.rules.cbt:
                    self.sessions.append(infusion)
                    return True
                cbt = self.find_cbt(infusion, infusion.end_utc)
                if cbt is not None:
                    self.sessions += [infusion, cbt]
                    return True
                # Keep the earliest slot of the day in case no slot that day leaves room for
                # the CBT session; a later day would delay the whole course.
                if fallback is None:
                    fallback = infusion
            if fallback is not None:
                self.sessions.append(fallback)
                self.warn_cbt_impossible(fallback)
                return True
        self.warnings.append(
            PlanWarning(
                "infusion_not_placed",
                f"{self.summary('infusion', number)} could not be placed within {HORIZON_DAYS} "
                "days: check the opening days, hours and closed dates.",
                f"infusion-{number}",
                _CONVENTION,
            )
        )
        return False

    def warn_cbt_impossible(self, infusion: PlannedSession, reason: str = "") -> None:
        low, high = (int(w.total_seconds() // 3600) for w in self.rules.cbt_window)
        sources = load_monitoring().settings["cbt_window_start_hours"].sources
        self.warnings.append(
            PlanWarning(
                "cbt_window_impossible",
                f"No CBT session fits {low}-{high} h after {infusion.summary.lower()} "
                f"({infusion.end.strftime('%a %d %b %H:%M')}) on an open day{reason}: "
                "arrange it by hand or adjust the calendar.",
                f"cbt-{infusion.number}",
                sources,
            )
        )

    def check_span(self) -> None:
        infusions = [s for s in self.sessions if s.kind == "infusion"]
        if len(infusions) < 2:
            return
        first = min(s.start.date() for s in infusions)
        last = max(s.start.date() for s in infusions)
        span = (last - first).days + 1
        course = self.protocol.course
        assert course is not None
        if span > self.rules.span_days_max:
            self.warnings.append(
                PlanWarning(
                    "course_longer_than_protocol",
                    f"The {len(infusions)} {self.protocol.session_noun}s span {span} days, longer "
                    f"than this protocol's {self.rules.span_days_max} days.",
                    None,
                    course.span_days_max.sources,
                )
            )


def plan_course(
    protocol_id: str,
    start: date,
    clinic_days: set[int] | frozenset[int],
    clinic_hours: tuple[time, time],
    closed_dates: set[date] | frozenset[date],
    tz: str,
    *,
    infusions: int | None = None,
    min_gap_hours: float | None = None,
    cbt_window_hours: tuple[float, float] | None = None,
    infusion_minutes: int | None = None,
    observation_minutes: int | None = None,
    cbt_minutes: int | None = None,
    cbt: bool = True,
    max_per_7_days: int | None = None,
    slot_minutes: int = 15,
) -> CoursePlan:
    """Plan a course from ``start`` (a local date in ``tz``).

    Defaults come from the protocol (number of infusions, minimum gap, dosing and observation
    time, sessions per 7 days) and from monitoring.yaml (CBT window 24-72 h after the end of
    each infusion, CBT session length). Overrides may be stricter than the protocol, never
    looser. Sessions start on ``slot_minutes`` boundaries from opening time, and an infusion
    is placed only where dosing and observation end before closing.
    """
    protocol = _plannable(protocol_id)
    if not isinstance(start, date) or isinstance(start, datetime):
        raise CoursePlanError("start", "expected a date")
    calendar = _calendar(clinic_days, clinic_hours, closed_dates, tz)
    rules = _rules(
        protocol,
        infusions=infusions,
        min_gap_hours=min_gap_hours,
        max_per_7_days=max_per_7_days,
        infusion_minutes=infusion_minutes,
        observation_minutes=observation_minutes,
        cbt=cbt,
        cbt_window_hours=cbt_window_hours,
        cbt_minutes=cbt_minutes,
        slot_minutes=slot_minutes,
    )
    _check_day_fits(calendar, rules)
    scheduler = _Scheduler(protocol, calendar, rules, rules.infusions, [], [])
    not_before = _opening(calendar, start)
    for number in range(1, rules.infusions + 1):
        if not scheduler.place_infusion(number, not_before):
            _warn_unplaced(scheduler, range(number + 1, rules.infusions + 1))
            break
    scheduler.check_span()
    return _plan(protocol_id, start, calendar, rules, scheduler, (), 0)


def _opening(calendar: ClinicCalendar, day: date) -> datetime:
    # The first instant of the day in the clinic's zone (midnight may not exist on a DST day).
    return datetime.combine(day, time(0), tzinfo=calendar.zone).astimezone(UTC)


def _check_day_fits(calendar: ClinicCalendar, rules: _Rules) -> None:
    today = date(2000, 1, 3)  # any ordinary day: only the length of the opening hours matters
    hours = datetime.combine(today, calendar.closes) - datetime.combine(today, calendar.opens)
    if rules.dosing + rules.observation > hours:
        raise CoursePlanError(
            "clinic_hours",
            f"dosing ({rules.dosing}) and observation ({rules.observation}) do not fit in the "
            f"opening hours {calendar.opens}-{calendar.closes}",
        )
    if rules.cbt and rules.cbt_length > hours:
        raise CoursePlanError("clinic_hours", "a CBT session does not fit in the opening hours")


def _warn_unplaced(scheduler: _Scheduler, numbers: Iterable[int]) -> None:
    for number in numbers:
        scheduler.warnings.append(
            PlanWarning(
                "infusion_not_placed",
                f"{scheduler.summary('infusion', number)} was not planned because an earlier "
                f"{scheduler.protocol.session_noun} could not be placed.",
                f"infusion-{number}",
                _CONVENTION,
            )
        )


def _plan(
    protocol_id: str,
    start: date,
    calendar: ClinicCalendar,
    rules: _Rules,
    scheduler: _Scheduler,
    missed: tuple[MissedSession, ...],
    revision: int,
) -> CoursePlan:
    order = {"infusion": 0, "cbt": 1}
    sessions = sorted(scheduler.sessions, key=lambda s: (s.start_utc, order[s.kind], s.number))
    return CoursePlan(
        protocol=protocol_id,
        start=start,
        calendar=calendar,
        infusions=rules.infusions,
        sessions=tuple(sessions),
        warnings=tuple(scheduler.warnings),
        settings=rules.as_settings(),
        missed=missed,
        revision=revision,
        knowledge_version=knowledge_version(),
    )


# --- re-planning -----------------------------------------------------------------------------


def _rules_of(plan: CoursePlan, protocol: ProtocolDef) -> _Rules:
    s = plan.settings
    return _rules(
        protocol,
        infusions=s["infusions"],
        min_gap_hours=s["min_gap_hours"],
        max_per_7_days=s["max_sessions_per_7_days"],
        infusion_minutes=s["infusion_minutes"],
        observation_minutes=s["observation_minutes"],
        cbt=s["cbt"],
        cbt_window_hours=tuple(s["cbt_window_hours"]),  # type: ignore[arg-type]
        cbt_minutes=s["cbt_minutes"],
        slot_minutes=s["slot_minutes"],
    )


def _completed(
    plan: CoursePlan, items: Sequence[str | CompletedSession]
) -> dict[str, PlannedSession]:
    done: dict[str, PlannedSession] = {}
    for item in items:
        record = CompletedSession(item) if isinstance(item, str) else item
        try:
            planned = plan.session(record.key)
        except KeyError:
            raise CoursePlanError("completed", f"no session {record.key!r} in the plan") from None
        session = replace(planned, status="completed")
        if record.start is not None:
            if record.start.tzinfo is None:
                raise CoursePlanError("completed", f"{record.key}: give an aware start time")
            shift = record.start.astimezone(UTC) - planned.start_utc
            session = replace(
                session,
                start=plan.calendar.local(planned.start_utc + shift),
                end=plan.calendar.local(planned.end_utc + shift),
                observation_end=(
                    plan.calendar.local(planned.busy_until_utc + shift)
                    if planned.observation_end is not None
                    else None
                ),
            )
        done[record.key] = session
    for key, session in done.items():
        if session.kind == "cbt" and f"infusion-{session.number}" not in done:
            raise CoursePlanError(
                "completed", f"{key} is completed but infusion {session.number} is not"
            )
    return done


def replan(
    plan: CoursePlan,
    completed: Sequence[str | CompletedSession],
    missed_or_cancelled: Sequence[str],
    from_date: date,
) -> CoursePlan:
    """Re-plan every session not completed, from ``from_date`` on, keeping completed ones.

    ``completed``: session keys ("infusion-2", "cbt-2"), or CompletedSession with the actual
    start. ``missed_or_cancelled``: keys of sessions that did not happen; they are kept in the
    plan's history and planned again (a missed infusion keeps its number). A session dated
    before ``from_date`` that is in neither list is planned again with a warning.
    """
    protocol = _plannable(plan.protocol)
    rules = _rules_of(plan, protocol)
    done = _completed(plan, completed)
    missed_keys = list(dict.fromkeys(missed_or_cancelled))
    for key in missed_keys:
        if key in done:
            raise CoursePlanError("missed_or_cancelled", f"{key} is also recorded as completed")
        try:
            plan.session(key)
        except KeyError:
            raise CoursePlanError(
                "missed_or_cancelled", f"no session {key!r} in the plan"
            ) from None

    scheduler = _Scheduler(protocol, plan.calendar, rules, plan.infusions, list(done.values()), [])
    history = list(plan.missed)
    for key in missed_keys:
        history.append(MissedSession(key, plan.session(key).start, "missed or cancelled"))
    for session in plan.sessions:
        if session.key in done or session.key in missed_keys:
            continue
        if session.start.date() < from_date:
            scheduler.warnings.append(
                PlanWarning(
                    "session_not_reported",
                    f"{session.summary} ({session.start.strftime('%a %d %b')}) was neither "
                    "recorded as completed nor as missed: it has been planned again.",
                    session.key,
                    _CONVENTION,
                )
            )
            history.append(MissedSession(session.key, session.start, "not reported"))

    not_before = max(
        [_opening(plan.calendar, from_date), *(s.busy_until_utc for s in done.values())]
    )
    # CBT for completed infusions whose CBT has not taken place: place it if its window allows.
    if rules.cbt:
        for session in sorted(done.values(), key=lambda s: s.start_utc):
            if session.kind != "infusion" or f"cbt-{session.number}" in done:
                continue
            cbt = scheduler.find_cbt(session, not_before)
            if cbt is None:
                scheduler.warn_cbt_impossible(session, " from the re-planning date")
            else:
                scheduler.sessions.append(cbt)

    done_numbers = {s.number for s in done.values() if s.kind == "infusion"}
    remaining = [n for n in range(1, plan.infusions + 1) if n not in done_numbers]
    if done_numbers and remaining and min(remaining) < max(done_numbers):
        scheduler.warnings.append(
            PlanWarning(
                "out_of_order",
                f"Infusion {min(remaining)} is planned after infusion {max(done_numbers)} "
                "took place; numbers follow the original plan.",
                f"infusion-{min(remaining)}",
                _CONVENTION,
            )
        )
    for index, number in enumerate(remaining):
        if not scheduler.place_infusion(number, not_before):
            _warn_unplaced(scheduler, remaining[index + 1 :])
            break
    scheduler.check_span()
    return _plan(
        plan.protocol,
        plan.start,
        plan.calendar,
        rules,
        scheduler,
        tuple(history),
        plan.revision + 1,
    )
