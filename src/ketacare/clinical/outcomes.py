"""Outcome trajectories of the rating scales and the flags a clinician reviews: response,
remission, non-response after N dosing sessions, worsening and a new PHQ-9 item 9 answer.

Pure: the definitions and thresholds come from ``knowledge/outcomes.yaml``; times, dose
counts and the time zone are arguments. Nothing here reads a clock, a database or the network.
Every result carries the knowledge version and the thresholds it was computed with.

These are conventions for following one patient, never efficacy claims: ASRS change is
exploratory (no trial of ketamine for ADHD exists). Missing or too few data give "unknown",
never a flag of success; a small baseline gives "not applicable", never a divided small number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ketacare.knowledge import knowledge_version
from ketacare.knowledge.instrument_defs import get_instrument
from ketacare.knowledge.outcome_defs import (
    DefinitionDef,
    Evidence,
    OutcomeInstrumentDef,
    OutcomesDef,
    SettingDef,
    load_outcomes,
    weakest,
)
from ketacare.knowledge.protocol_defs import get_protocol

__all__ = [
    "FLAG_CODES",
    "InstrumentOutcome",
    "OutcomeDataError",
    "OutcomeFlag",
    "PatientOutcomes",
    "TrajectoryPoint",
    "WeeklyPoint",
    "fall_at_least",
    "futility_checkpoint",
    "instrument_outcome",
    "patient_outcomes",
    "percent_change",
    "rise_at_least",
]

FlagStatus = Literal["met", "not_met", "unknown", "not_applicable"]
Role = Literal["pre_baseline", "baseline", "follow_up"]
FLAG_CODES: tuple[str, ...] = ("response", "remission", "non_response", "worsening", "item9_new")


class OutcomeDataError(ValueError):
    """Input that cannot be followed. ``field`` names what is wrong ("points[2].total")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- arithmetic ------------------------------------------------------------------------------
# Exact fractions: a fall of exactly 50% must be a response, whatever floating point says.


def _exact(value: float | int) -> Fraction:
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def percent_change(baseline: int, value: int) -> float:
    """(value - baseline) as a percent of baseline, to one decimal; negative is a fall.
    The caller makes sure the baseline is large enough to mean something."""
    if baseline <= 0:
        raise ValueError("a percent change needs a baseline above 0")
    return round(float(Fraction(value - baseline) * 100 / baseline), 1)


def fall_at_least(baseline: int, value: int, percent: float) -> bool:
    """True when ``value`` is at least ``percent``% below ``baseline`` (exactly at counts)."""
    if baseline <= 0:
        raise ValueError("a fall needs a baseline above 0")
    return Fraction(baseline - value) * 100 >= _exact(percent) * baseline


def rise_at_least(reference: int, value: int, percent: float) -> bool:
    """True when ``value`` is at least ``percent``% above ``reference`` (exactly at counts)."""
    if reference <= 0:
        raise ValueError("a rise needs a reference above 0")
    return Fraction(value - reference) * 100 >= _exact(percent) * reference


def _g(value: float | int) -> str:
    return f"{value:g}"


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrajectoryPoint:
    """One administration on the trajectory, with its change from the baseline."""

    administered_at: datetime
    total: int
    role: Role
    change: int | None = None
    percent_change: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "administered_at": self.administered_at.isoformat(),
            "total": self.total,
            "role": self.role,
            "change": self.change,
            "percent_change": self.percent_change,
        }


@dataclass(frozen=True)
class WeeklyPoint:
    """The last administration of an ISO week (in the clinic's zone)."""

    iso_year: int
    iso_week: int
    week_start: date
    administered_at: datetime
    total: int
    measurements: int
    change: int | None = None
    percent_change: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "iso_year": self.iso_year,
            "iso_week": self.iso_week,
            "week_start": self.week_start.isoformat(),
            "administered_at": self.administered_at.isoformat(),
            "total": self.total,
            "measurements": self.measurements,
            "change": self.change,
            "percent_change": self.percent_change,
        }


@dataclass(frozen=True)
class SessionPoint:
    """The last rating after dosing session ``session`` and before the next one started."""

    session: int
    dose_started_at: datetime
    administered_at: datetime
    total: int
    measurements: int
    change: int | None = None
    percent_change: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "dose_started_at": self.dose_started_at.isoformat(),
            "administered_at": self.administered_at.isoformat(),
            "total": self.total,
            "measurements": self.measurements,
            "change": self.change,
            "percent_change": self.percent_change,
        }


@dataclass(frozen=True)
class OutcomeFlag:
    """One outcome definition applied to the patient. ``status``: met | not_met | unknown |
    not_applicable. ``text`` says what was found for this patient; ``definition`` is the rule
    as written for clinicians, with the thresholds in force."""

    code: str
    label: str
    status: FlagStatus
    text: str
    definition: str
    evidence: Evidence
    sources: tuple[str, ...]
    at: datetime | None = None

    @property
    def raised(self) -> bool:
        return self.status == "met"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "label": self.label,
            "status": self.status,
            "text": self.text,
            "definition": self.definition,
            "evidence": self.evidence,
            "sources": list(self.sources),
            "at": self.at.isoformat() if self.at else None,
        }


@dataclass(frozen=True)
class InstrumentOutcome:
    """One scale's course: baseline, latest, change, trajectory, flags, and what they used."""

    instrument: str
    short_name: str
    label: str
    max_total: int
    exploratory: bool
    exploratory_text: str | None
    baseline: TrajectoryPoint | None
    baseline_reason: str | None
    latest: TrajectoryPoint | None
    change: int | None
    percent_change: float | None
    percent_change_reason: str | None
    trajectory: tuple[TrajectoryPoint, ...]
    weekly: tuple[WeeklyPoint, ...]
    flags: tuple[OutcomeFlag, ...]
    baseline_definition: str
    percent_change_definition: str
    dosed_sessions: int
    first_dose_at: datetime | None
    thresholds: dict[str, int | float]
    sources: tuple[str, ...]
    tz: str
    knowledge_version: str
    # Known only when the dose start times were given (not just their count).
    per_session: tuple[SessionPoint, ...] = ()

    def flag(self, code: str) -> OutcomeFlag:
        return next(f for f in self.flags if f.code == code)

    @property
    def raised(self) -> tuple[OutcomeFlag, ...]:
        return tuple(f for f in self.flags if f.raised)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "short_name": self.short_name,
            "label": self.label,
            "max_total": self.max_total,
            "exploratory": self.exploratory,
            "exploratory_text": self.exploratory_text,
            "baseline": self.baseline.to_json_dict() if self.baseline else None,
            "baseline_reason": self.baseline_reason,
            "latest": self.latest.to_json_dict() if self.latest else None,
            "change": self.change,
            "percent_change": self.percent_change,
            "percent_change_reason": self.percent_change_reason,
            "trajectory": [p.to_json_dict() for p in self.trajectory],
            "weekly": [w.to_json_dict() for w in self.weekly],
            "per_session": [p.to_json_dict() for p in self.per_session],
            "flags": [f.to_json_dict() for f in self.flags],
            "baseline_definition": self.baseline_definition,
            "percent_change_definition": self.percent_change_definition,
            "dosed_sessions": self.dosed_sessions,
            "first_dose_at": self.first_dose_at.isoformat() if self.first_dose_at else None,
            "thresholds": dict(self.thresholds),
            "sources": list(self.sources),
            "tz": self.tz,
            "knowledge_version": self.knowledge_version,
        }


@dataclass(frozen=True)
class PatientOutcomes:
    """Every outcome scale of one patient (in the knowledge file's order, also those without
    any rating), the reminder of what the evidence does and does not show, and the
    thresholds used."""

    instruments: tuple[InstrumentOutcome, ...]
    dosed_sessions: int
    first_dose_at: datetime | None
    notice: str
    notice_sources: tuple[str, ...]
    note: str
    thresholds: dict[str, int | float]
    overridden: tuple[str, ...]
    excluded: dict[str, int] = field(default_factory=dict)
    tz: str = "UTC"
    knowledge_version: str = ""

    def instrument(self, instrument_id: str) -> InstrumentOutcome:
        return next(i for i in self.instruments if i.instrument == instrument_id)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "instruments": [i.to_json_dict() for i in self.instruments],
            "dosed_sessions": self.dosed_sessions,
            "first_dose_at": self.first_dose_at.isoformat() if self.first_dose_at else None,
            "notice": self.notice,
            "notice_sources": list(self.notice_sources),
            "note": self.note,
            "thresholds": dict(self.thresholds),
            "overridden": list(self.overridden),
            "excluded": dict(self.excluded),
            "tz": self.tz,
            "knowledge_version": self.knowledge_version,
        }


# --- input -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Point:
    administered_at: datetime
    total: int
    answers: tuple[int, ...] | None
    order: int


def _get(obj: Any, name: str, index: int) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    if isinstance(obj, tuple | list):
        return obj[index] if len(obj) > index else None
    return getattr(obj, name, None)


def _aware(value: Any, where: str) -> datetime:
    if not isinstance(value, datetime):
        raise OutcomeDataError(where, f"a time is needed, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise OutcomeDataError(where, f"{value.isoformat()} has no time zone")
    return value


def _points(instrument_id: str, points: Iterable[Any]) -> list[_Point]:
    """(administered_at, total, answers) tuples, mappings or objects, checked and in time
    order (the given order breaks ties)."""
    definition = get_instrument(instrument_id)
    out: list[_Point] = []
    for n, raw in enumerate(points):
        at = _aware(_get(raw, "administered_at", 0), f"points[{n}].administered_at")
        total = _get(raw, "total", 1)
        if isinstance(total, bool) or not isinstance(total, int):
            raise OutcomeDataError(f"points[{n}].total", f"{total!r} is not a whole number")
        if not 0 <= total <= definition.scoring.max:
            raise OutcomeDataError(
                f"points[{n}].total", f"{total} is outside 0-{definition.scoring.max}"
            )
        answers = _get(raw, "answers", 2)
        clean: tuple[int, ...] | None = None
        if answers is not None:
            values = tuple(answers)
            # Answers that do not fit the form are not used (item 9 is then unknown).
            if len(values) == definition.item_count and all(
                isinstance(v, int) and not isinstance(v, bool) for v in values
            ):
                clean = values
        out.append(_Point(at, total, clean, n))
    out.sort(key=lambda p: (p.administered_at, p.order))
    return out


def _dose_times(
    dosed_sessions: int | Sequence[datetime], first_dose_at: datetime | None
) -> tuple[int, list[datetime] | None, datetime | None]:
    if isinstance(dosed_sessions, bool):
        raise OutcomeDataError("dosed_sessions", "give a count or the dose start times")
    if isinstance(dosed_sessions, int):
        if dosed_sessions < 0:
            raise OutcomeDataError("dosed_sessions", "must not be negative")
        if dosed_sessions and first_dose_at is None:
            raise OutcomeDataError(
                "first_dose_at", "with doses given, the first dose's start time is needed"
            )
        times = None
        count = dosed_sessions
    else:
        times = sorted(_aware(t, f"dosed_sessions[{i}]") for i, t in enumerate(dosed_sessions))
        count = len(times)
        if first_dose_at is None and times:
            first_dose_at = times[0]
    if first_dose_at is not None:
        _aware(first_dose_at, "first_dose_at")
    if count == 0 and first_dose_at is not None:
        raise OutcomeDataError("first_dose_at", "a first dose time was given with no dose")
    return count, times, first_dose_at


# --- the checkpoint of the protocol dosed ----------------------------------------------------

CHECKPOINT = "non_response_after_sessions"


def futility_checkpoint(
    protocol_ids: Iterable[str], definitions: OutcomesDef | None = None
) -> OutcomesDef:
    """The outcome definitions with the non-response checkpoint of the protocols dosed: each
    protocol's ``futility_after_sessions`` (IV ketamine after 4 infusions; esketamine at the
    end of induction, after 8 sessions), with its evidence and sources. With several protocols
    the earliest checkpoint applies (a flag is a prompt to look). A clinic's own override of
    the checkpoint wins; unknown protocols, or none, leave outcomes.yaml's default."""
    defs = definitions or load_outcomes()
    if defs.setting(CHECKPOINT).overridden:
        return defs
    found = []
    for protocol_id in dict.fromkeys(protocol_ids):
        try:
            protocol = get_protocol(protocol_id)
        except KeyError:
            continue
        if protocol.course is not None:
            found.append((protocol.course.futility_after_sessions, protocol))
    if not found:
        return defs
    cited, protocol = min(found, key=lambda pair: pair[0].value)
    others = [p.name for _, p in found if p.id != protocol.id]
    note = " ".join((cited.note or "").split())
    if others:
        note = f"{note} The earliest checkpoint of the protocols dosed ({', '.join(others)})."
    setting = SettingDef(
        value=cited.value,
        evidence=cited.evidence,
        sources=cited.sources,
        note=note.strip() or None,
        origin=protocol.name,
    )
    return defs.model_copy(update={"settings": {**defs.settings, CHECKPOINT: setting}})


# --- the rules -------------------------------------------------------------------------------


class _Filled(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "(none set)"


@dataclass(frozen=True)
class _Ctx:
    scale: OutcomeInstrumentDef
    short_name: str
    defs: OutcomesDef
    zone: ZoneInfo
    values: dict[str, int | float]  # this scale's thresholds, by their text placeholders
    all: dict[str, int | float]  # every setting, by its name

    def fill(self, definition: DefinitionDef) -> str:
        values = {k: _g(v) for k, v in self.values.items()}
        # A scale without a threshold (the ASRS has no remission cut-off) says so in the text.
        return " ".join(definition.text.split()).format_map(
            _Filled(instrument=self.short_name, **values)
        )

    def day(self, at: datetime) -> str:
        return at.astimezone(self.zone).date().isoformat()

    def flag(
        self,
        code: str,
        status: FlagStatus,
        text: str,
        *,
        settings: Sequence[str | None] = (),
        at: datetime | None = None,
        definition_text: str | None = None,
        cited: tuple[Evidence, Sequence[str]] | None = None,
    ) -> OutcomeFlag:
        """A flag whose evidence is the weakest of its definition and the settings used, and
        whose sources are all of theirs; ``cited`` replaces both (a scale's own reason)."""
        definition = self.defs.definition(code)
        used = [self.defs.setting(s) for s in settings if s is not None]
        evidence = weakest(definition.evidence, *(s.evidence for s in used))
        sources: list[str] = list(definition.sources)
        for setting in used:
            sources.extend(setting.sources)
        if cited is not None:
            evidence, sources = cited[0], list(cited[1])
        return OutcomeFlag(
            code=code,
            label=definition.label,
            status=status,
            text=text,
            definition=definition_text or self.fill(definition),
            evidence=evidence,
            sources=tuple(dict.fromkeys(sources)),
            at=at,
        )


def _baseline(
    points: list[_Point], dose_count: int, first_dose_at: datetime | None, ctx: _Ctx
) -> tuple[_Point | None, str | None]:
    if not points:
        return None, f"No {ctx.short_name} rating yet."
    if dose_count == 0 or first_dose_at is None:
        return points[0], None
    before = [p for p in points if p.administered_at <= first_dose_at]
    if not before:
        return None, (
            f"No {ctx.short_name} rating on or before the first dose "
            f"({ctx.day(first_dose_at)}): the baseline is unknown, and so is every change."
        )
    return before[-1], None


def _response(
    ctx: _Ctx, base: _Point | None, base_reason: str | None, latest: _Point | None
) -> OutcomeFlag:
    scale, v = ctx.scale, ctx.all
    settings = (scale.response_setting,)
    percent = v[scale.response_setting]
    minimum = int(v[scale.min_baseline_setting])
    if base is None:
        return ctx.flag("response", "unknown", base_reason or "", settings=settings)
    if base.total < minimum:
        # Decided by the minimum baseline: that value's evidence and sources.
        return ctx.flag(
            "response",
            "not_applicable",
            f"Baseline {base.total} is below {minimum}: a response cannot be judged.",
            settings=(scale.min_baseline_setting,),
        )
    if latest is None:
        return ctx.flag(
            "response",
            "unknown",
            f"No {ctx.short_name} rating after the baseline ({ctx.day(base.administered_at)}).",
            settings=settings,
        )
    change = percent_change(base.total, latest.total)
    summary = f"{ctx.short_name} {base.total} → {latest.total} ({change:+g}%)"
    if fall_at_least(base.total, latest.total, percent):
        return ctx.flag(
            "response",
            "met",
            f"{summary}: at least {_g(percent)}% below the baseline.",
            settings=settings,
            at=latest.administered_at,
        )
    return ctx.flag(
        "response",
        "not_met",
        f"{summary}: less than a {_g(percent)}% fall.",
        settings=settings,
        at=latest.administered_at,
    )


def _remission(
    ctx: _Ctx, base: _Point | None, base_reason: str | None, latest: _Point | None
) -> OutcomeFlag:
    scale, v = ctx.scale, ctx.all
    if scale.remission_setting is None:
        reason = scale.no_remission
        assert reason is not None  # the loader requires it without a cut-off
        text = " ".join(reason.text.split())
        return ctx.flag(
            "remission",
            "not_applicable",
            text,
            definition_text=text,
            cited=(reason.evidence, reason.sources),
        )
    settings = (scale.remission_setting,)
    below = int(v[scale.remission_setting])
    minimum = int(v[scale.min_baseline_setting])
    if base is None:
        return ctx.flag("remission", "unknown", base_reason or "", settings=settings)
    if base.total < minimum:
        return ctx.flag(
            "remission",
            "not_applicable",
            f"Baseline {base.total} is below {minimum}: remission cannot be judged.",
            settings=(scale.min_baseline_setting,),
        )
    if latest is None:
        return ctx.flag(
            "remission",
            "unknown",
            f"No {ctx.short_name} rating after the baseline.",
            settings=settings,
        )
    if latest.total < below:
        return ctx.flag(
            "remission",
            "met",
            f"Latest {ctx.short_name} total {latest.total} ({ctx.day(latest.administered_at)}) "
            f"is below {below}.",
            settings=settings,
            at=latest.administered_at,
        )
    return ctx.flag(
        "remission",
        "not_met",
        f"Latest {ctx.short_name} total {latest.total} is not below {below}.",
        settings=settings,
        at=latest.administered_at,
    )


def _non_response(
    ctx: _Ctx,
    response: OutcomeFlag,
    base: _Point | None,
    follow_ups: list[_Point],
    dose_count: int,
    dose_times: list[datetime] | None,
) -> OutcomeFlag:
    scale, v = ctx.scale, ctx.all
    after = int(v[CHECKPOINT])
    settings = (CHECKPOINT, scale.response_setting)
    origin = ctx.defs.setting(CHECKPOINT).origin
    checkpoint = f" (the checkpoint of {origin})" if origin else ""
    if response.status == "not_applicable":
        return ctx.flag(
            "non_response",
            "not_applicable",
            response.text,
            settings=(scale.min_baseline_setting,),
        )
    if base is None:
        return ctx.flag("non_response", "unknown", response.text, settings=settings)
    if dose_count < after:
        return ctx.flag(
            "non_response",
            "not_met",
            f"{dose_count} of {after} dosing sessions so far{checkpoint}: too early to call "
            "non-response.",
            settings=settings,
        )
    judged = follow_ups
    if dose_times is not None:
        nth = dose_times[after - 1]
        judged = [p for p in follow_ups if p.administered_at >= nth]
        if not judged:
            return ctx.flag(
                "non_response",
                "unknown",
                f"{dose_count} dosing sessions given, but no {ctx.short_name} rating since "
                f"dosing session {after} ({ctx.day(nth)}): rate now to decide.",
                settings=settings,
            )
    if not judged:
        return ctx.flag("non_response", "unknown", response.text, settings=settings)
    last = judged[-1]
    percent = v[scale.response_setting]
    change = percent_change(base.total, last.total)
    if fall_at_least(base.total, last.total, percent):
        return ctx.flag(
            "non_response",
            "not_met",
            f"Responding after {dose_count} dosing sessions ({change:+g}% from baseline).",
            settings=settings,
            at=last.administered_at,
        )
    return ctx.flag(
        "non_response",
        "met",
        f"No response after {dose_count} dosing sessions{checkpoint}: {ctx.short_name} "
        f"{base.total} → {last.total} ({change:+g}%, a fall of {_g(percent)}% is needed). "
        "Reconsider the plan.",
        settings=settings,
        at=last.administered_at,
    )


def _worsening(
    ctx: _Ctx, base: _Point | None, base_reason: str | None, follow_ups: list[_Point]
) -> OutcomeFlag:
    scale, v = ctx.scale, ctx.all
    settings: tuple[str, ...] = ("worsening_rise_percent", "worsening_consecutive_measurements")
    if base is None:
        return ctx.flag("worsening", "unknown", base_reason or "", settings=settings)
    percent = v["worsening_rise_percent"]
    needed = int(v["worsening_consecutive_measurements"])
    minimum = int(v[scale.min_baseline_setting])
    reference = max(base.total, minimum)
    if reference != base.total:
        settings = (*settings, scale.min_baseline_setting)
    measured_from = (
        f"baseline {base.total}"
        if reference == base.total
        else f"{reference} (baseline {base.total} is below {minimum})"
    )
    run: list[_Point] = []
    confirmed: list[_Point] | None = None
    for point in follow_ups:
        if rise_at_least(reference, point.total, percent):
            run.append(point)
            if len(run) >= needed:
                confirmed = list(run[-needed:])
        else:
            run = []
    if confirmed is not None:
        last = confirmed[-1]
        totals = ", ".join(str(p.total) for p in confirmed)
        return ctx.flag(
            "worsening",
            "met",
            f"{ctx.short_name} at least {_g(percent)}% above {measured_from} at {needed} "
            f"consecutive measurements ({totals}), the last on {ctx.day(last.administered_at)}.",
            settings=settings,
            at=last.administered_at,
        )
    if len(follow_ups) < needed:
        pending = (
            f" The latest ({follow_ups[-1].total}) is at least {_g(percent)}% above "
            f"{measured_from}; another such rating confirms worsening."
            if run
            else ""
        )
        return ctx.flag(
            "worsening",
            "unknown",
            f"{len(follow_ups)} {ctx.short_name} rating(s) after the baseline; {needed} in a row "
            f"are needed to judge worsening.{pending}",
            settings=settings,
        )
    pending = (
        f" The latest ({run[-1].total}) is at least {_g(percent)}% above {measured_from}: "
        "watch the next rating."
        if run
        else ""
    )
    return ctx.flag(
        "worsening",
        "not_met",
        f"No {needed} consecutive ratings at least {_g(percent)}% above {measured_from}.{pending}",
        settings=settings,
    )


def _item9(ctx: _Ctx, points: list[_Point]) -> OutcomeFlag:
    item = ctx.scale.item9_item
    if item is None:
        return ctx.flag("item9_new", "not_applicable", f"{ctx.short_name} has no item 9 to follow.")
    answered = [p for p in points if p.answers is not None]
    if len(answered) < 2:
        return ctx.flag(
            "item9_new",
            "unknown",
            f"{len(answered)} {ctx.short_name} administration(s) with every answer recorded; "
            "a new answer needs an earlier one to compare with.",
        )
    newest: _Point | None = None
    for previous, current in pairwise(answered):
        if (
            previous.answers is not None
            and current.answers is not None
            and previous.answers[item - 1] == 0
            and current.answers[item - 1] > 0
        ):
            newest = current
    if newest is not None and newest.answers is not None:
        return ctx.flag(
            "item9_new",
            "met",
            f"Item {item} answered {newest.answers[item - 1]} on "
            f"{ctx.day(newest.administered_at)} after an answer of 0: follow up with a "
            "suicide-risk screen.",
            at=newest.administered_at,
        )
    return ctx.flag(
        "item9_new",
        "not_met",
        f"No new non-zero item {item} answer across {len(answered)} administrations.",
    )


def _weekly(
    trajectory: list[TrajectoryPoint], counts: dict[tuple[int, int], int], zone: ZoneInfo
) -> tuple[WeeklyPoint, ...]:
    last: dict[tuple[int, int], TrajectoryPoint] = {}
    for point in trajectory:
        local = point.administered_at.astimezone(zone).date()
        year, week, _ = local.isocalendar()
        last[(year, week)] = point  # trajectory is in time order: the last one wins
    out = []
    for (year, week), point in sorted(last.items()):
        out.append(
            WeeklyPoint(
                iso_year=year,
                iso_week=week,
                week_start=date.fromisocalendar(year, week, 1),
                administered_at=point.administered_at,
                total=point.total,
                measurements=counts[(year, week)],
                change=point.change,
                percent_change=point.percent_change,
            )
        )
    return tuple(out)


def _per_session(
    trajectory: list[TrajectoryPoint], times: list[datetime] | None
) -> tuple[SessionPoint, ...]:
    """Per dosing session, the last rating after its dose started and before the next dose
    started; a session with no rating in that interval has no point."""
    if not times:
        return ()
    out = []
    for number, started in enumerate(times, start=1):
        until = times[number] if number < len(times) else None
        between = [
            p
            for p in trajectory
            if p.administered_at > started and (until is None or p.administered_at <= until)
        ]
        if between:
            last = between[-1]
            out.append(
                SessionPoint(
                    session=number,
                    dose_started_at=started,
                    administered_at=last.administered_at,
                    total=last.total,
                    measurements=len(between),
                    change=last.change,
                    percent_change=last.percent_change,
                )
            )
    return tuple(out)


def _instrument_values(scale: OutcomeInstrumentDef, defs: OutcomesDef) -> dict[str, int | float]:
    values = defs.values()
    out: dict[str, int | float] = {
        "response_fall_percent": values[scale.response_setting],
        "min_baseline": values[scale.min_baseline_setting],
        "non_response_after_sessions": values[CHECKPOINT],
        "worsening_rise_percent": values["worsening_rise_percent"],
        "worsening_consecutive_measurements": values["worsening_consecutive_measurements"],
    }
    if scale.remission_setting is not None:
        out["remission_below"] = values[scale.remission_setting]
    return out


def instrument_outcome(
    instrument: str,
    points: Iterable[Any],
    *,
    dosed_sessions: int | Sequence[datetime],
    first_dose_at: datetime | None = None,
    definitions: OutcomesDef | None = None,
    tz: str = "UTC",
    protocol_ids: Sequence[str] = (),
) -> InstrumentOutcome:
    """One outcome scale of one patient.

    ``points``: the scale's administrations, in any order, as ``(administered_at, total,
    answers)`` tuples or objects/mappings with those names (answers may be None: item 9 is
    then unknown). Leave out in-session ratings. ``dosed_sessions``: the dose start times of
    the patient's dosing sessions (preferred: non-response is then judged on a rating taken
    after the Nth), or their count with ``first_dose_at``. ``definitions``: the outcome
    definitions with a clinic's overrides (default: ``outcomes.yaml``). ``tz``: the clinic's
    zone, for ISO weeks and dates in texts. ``protocol_ids``: the protocols of the dosing
    sessions, whose own checkpoint judges non-response (``futility_checkpoint``). Raises
    ``OutcomeDataError`` naming the field for data that cannot be followed (an unknown or
    excluded scale, a total out of range, a time without a zone).
    """
    defs = futility_checkpoint(protocol_ids, definitions)
    try:
        scale = defs.instrument(instrument)
    except KeyError:
        excluded = {e.id: e.reason for e in defs.excluded_instruments}
        reason = excluded.get(instrument) or f"known: {', '.join(defs.instrument_ids)}"
        raise OutcomeDataError(
            "instrument", f"{instrument!r} is not an outcome scale ({reason})"
        ) from None
    try:
        zone = ZoneInfo(tz)
    except Exception:
        raise OutcomeDataError("tz", f"unknown time zone {tz!r}") from None
    definition = get_instrument(instrument)
    values = _instrument_values(scale, defs)
    ctx = _Ctx(scale, definition.short_name, defs, zone, values, defs.values())
    ordered = _points(instrument, points)
    count, times, first_dose = _dose_times(dosed_sessions, first_dose_at)

    base, base_reason = _baseline(ordered, count, first_dose, ctx)
    minimum = int(values["min_baseline"])
    percent_ok = base is not None and base.total >= minimum

    trajectory: list[TrajectoryPoint] = []
    follow_ups: list[_Point] = []
    week_counts: dict[tuple[int, int], int] = {}
    seen_base = False
    for point in ordered:
        if base is not None and point is base:
            role: Role = "baseline"
            seen_base = True
        elif (base is not None and not seen_base) or (
            base is None and (first_dose is None or point.administered_at <= first_dose)
        ):
            role = "pre_baseline"
        else:
            role = "follow_up"
            if base is not None:
                follow_ups.append(point)
        change = point.total - base.total if base is not None else None
        pct = percent_change(base.total, point.total) if base is not None and percent_ok else None
        trajectory.append(TrajectoryPoint(point.administered_at, point.total, role, change, pct))
        year, week, _ = point.administered_at.astimezone(zone).date().isocalendar()
        week_counts[(year, week)] = week_counts.get((year, week), 0) + 1

    latest = follow_ups[-1] if follow_ups else None
    baseline_point = next((t for t in trajectory if t.role == "baseline"), None)
    latest_point = (
        next(t for t in reversed(trajectory) if t.role == "follow_up") if latest else None
    )
    if base is None:
        percent_reason: str | None = base_reason
    elif not percent_ok:
        percent_reason = (
            f"Not applicable: the baseline {base.total} is below {minimum}; a percent of a "
            "small baseline is not meaningful."
        )
    elif latest is None:
        percent_reason = f"No {definition.short_name} rating after the baseline yet."
    else:
        percent_reason = None

    response = _response(ctx, base, base_reason, latest)
    flags = (
        response,
        _remission(ctx, base, base_reason, latest),
        _non_response(ctx, response, base, follow_ups, count, times),
        _worsening(ctx, base, base_reason, follow_ups),
        _item9(ctx, ordered),
    )
    return InstrumentOutcome(
        instrument=instrument,
        short_name=definition.short_name,
        label=scale.label,
        max_total=definition.scoring.max,
        exploratory=scale.exploratory,
        exploratory_text=" ".join(scale.exploratory_text.split())
        if scale.exploratory_text
        else None,
        baseline=baseline_point,
        baseline_reason=base_reason,
        latest=latest_point,
        change=latest_point.change if latest_point else None,
        percent_change=latest_point.percent_change if latest_point else None,
        percent_change_reason=percent_reason,
        trajectory=tuple(trajectory),
        weekly=_weekly(trajectory, week_counts, zone),
        per_session=_per_session(trajectory, times),
        flags=flags,
        baseline_definition=ctx.fill(defs.definition("baseline")),
        percent_change_definition=ctx.fill(defs.definition("percent_change")),
        dosed_sessions=count,
        first_dose_at=first_dose,
        thresholds=values,
        sources=tuple(dict.fromkeys((*scale.sources, *scale.exploratory_sources))),
        tz=tz,
        knowledge_version=knowledge_version(),
    )


def patient_outcomes(
    assessments: Iterable[Any],
    *,
    dosed_sessions: int | Sequence[datetime],
    first_dose_at: datetime | None = None,
    definitions: OutcomesDef | None = None,
    tz: str = "UTC",
    protocol_ids: Sequence[str] = (),
) -> PatientOutcomes:
    """Every outcome scale of one patient from all their administrations.

    ``assessments``: ``(instrument, administered_at, total, answers)`` tuples or
    objects/mappings with those names, in any order. In-session scales (CADSS, MOAA/S) and the
    C-SSRS are not outcomes: they are counted in ``excluded`` and otherwise left out. Every
    outcome scale appears, rated or not (an unrated one is "unknown" throughout).
    ``protocol_ids``: the protocols of the dosing sessions; non-response is judged at their
    own checkpoint (``futility_checkpoint``).
    """
    defs = futility_checkpoint(protocol_ids, definitions)
    grouped: dict[str, list[tuple[Any, Any, Any]]] = {i: [] for i in defs.instrument_ids}
    excluded: dict[str, int] = {}
    for n, row in enumerate(assessments):
        if isinstance(row, tuple | list):
            name, at, total, answers = (list(row) + [None] * 4)[:4]
        else:
            name = _get(row, "instrument", 0)
            at = _get(row, "administered_at", 1)
            total = _get(row, "total", 2)
            answers = _get(row, "answers", 3)
        if name in grouped:
            grouped[name].append((at, total, answers))
        elif name in defs.excluded_ids:
            excluded[name] = excluded.get(name, 0) + 1
        else:
            raise OutcomeDataError(f"assessments[{n}].instrument", f"unknown scale {name!r}")
    count, times, first_dose = _dose_times(dosed_sessions, first_dose_at)
    doses: int | Sequence[datetime] = times if times is not None else count
    outcomes = tuple(
        instrument_outcome(
            name,
            rows,
            dosed_sessions=doses,
            first_dose_at=first_dose,
            definitions=defs,
            tz=tz,
        )
        for name, rows in grouped.items()
    )
    return PatientOutcomes(
        instruments=outcomes,
        dosed_sessions=count,
        first_dose_at=first_dose,
        notice=" ".join(defs.notice.text.split()),
        notice_sources=defs.notice.sources,
        note=" ".join(defs.note.split()),
        thresholds=defs.values(),
        overridden=tuple(name for name, s in defs.settings.items() if s.overridden),
        excluded=excluded,
        tz=tz,
        knowledge_version=knowledge_version(),
    )
