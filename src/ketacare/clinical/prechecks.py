"""Pre-dose checks beside the blood-pressure gate: fasting, escort home, pregnancy status, the
interaction screen of the current medicines, the interval since the patient's previous dose,
open suicide-risk flags and a start refused earlier the same day. Pure: the answers, the screen
summary, times and flags are arguments; bands and texts come from
``knowledge/session_checks.yaml`` and ``knowledge/protocols.yaml``.

Each check lands in a band of the gate's scale (proceed < caution < hold < refuse); the worst
band of the gate and the checks decides what starting the session needs. A check that is not
answered takes the worst band its answers can have: not knowing is never "proceed".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ketacare.clinical.monitoring import Alert, MonitoringSettings, alerts
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.catalog import load_catalog
from ketacare.knowledge.instrument_defs import get_instrument
from ketacare.knowledge.protocol_defs import ProtocolDef, load_monitoring
from ketacare.knowledge.session_defs import PrecheckDef, load_session_checks
from ketacare.knowledge.therapy_defs import load_therapy

Band = Literal["proceed", "caution", "hold", "refuse"]
BAND_RANK: dict[str, int] = {"proceed": 0, "caution": 1, "hold": 2, "refuse": 3}
# What starting needs beyond the band: a written monitoring change (a label-named interaction),
# an acknowledgement that a start was refused earlier today.
Need = Literal["monitoring_plan", "acknowledge_refusal"]


def worst(*bands: str) -> Band:
    return max(bands, key=BAND_RANK.__getitem__)  # type: ignore[return-value]


def _when(at: datetime, tz: str) -> str:
    """A time as the clinic reads it: its own zone, weekday, date and clock."""
    return at.astimezone(ZoneInfo(tz)).strftime("%a %d %b %Y %H:%M %Z")


# --- interaction screen ----------------------------------------------------------------------


@dataclass(frozen=True)
class InteractionFinding:
    """One finding of the screen as the pre-checks need it: the rule and the ingredient."""

    rule_id: str
    severity: str
    ingredient: str
    title: str = ""


@dataclass(frozen=True)
class InteractionSummary:
    """What the interaction screen of the current list found (None: not screened)."""

    medicines: int
    highest_severity: str | None
    unrecognized: tuple[str, ...] = ()
    screen_id: int | None = None
    findings: tuple[InteractionFinding, ...] = ()

    @classmethod
    def of_findings(
        cls,
        medicines: int,
        findings: Sequence[Mapping[str, Any]],
        unrecognized: Sequence[str] = (),
        screen_id: int | None = None,
    ) -> InteractionSummary:
        """From the screen's findings (as stored: dicts with rule_id, severity, ingredient)."""
        items = tuple(
            InteractionFinding(
                str(f["rule_id"]), str(f["severity"]), str(f["ingredient"]), str(f.get("title", ""))
            )
            for f in findings
        )
        order = ("contraindicated", "major", "moderate", "minor")
        found = {f.severity for f in items}
        highest = next((s for s in order if s in found), None)
        return cls(medicines, highest, tuple(unrecognized), screen_id, items)


@dataclass(frozen=True)
class CheckResult:
    id: str
    label: str
    answer: str | None
    band: Band
    text: str
    sources: tuple[str, ...]
    needs: tuple[Need, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)
    # Checks worked out from the record: which of their outcomes (computed_bands) applied.
    outcome: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "answer": self.answer,
            "band": self.band,
            "text": self.text,
            "sources": list(self.sources),
        }
        if self.outcome:
            out["outcome"] = self.outcome
        if self.needs:
            out["needs"] = list(self.needs)
        if self.detail:
            out["detail"] = dict(self.detail)
        return out


@dataclass(frozen=True)
class PrecheckResult:
    band: Band
    checks: tuple[CheckResult, ...]
    knowledge_version: str

    def check(self, check_id: str) -> CheckResult:
        return next(c for c in self.checks if c.id == check_id)

    def needs(self, need: Need) -> bool:
        return any(need in c.needs for c in self.checks)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "checks": [c.to_json_dict() for c in self.checks],
            "knowledge_version": self.knowledge_version,
        }


def _answered(check: PrecheckDef, answer: str | None, protocol: ProtocolDef) -> CheckResult:
    if answer is None:
        band = worst(*(a.band for a in check.answers))
        instruction = check.instructions.get(protocol.administration)
        text = f"Not answered: {check.question}" + (f" ({instruction})" if instruction else "")
        return CheckResult(check.id, check.label, None, band, text, check.sources)
    chosen = check.answer(answer)
    if chosen is None:
        allowed = ", ".join(a.value for a in check.answers)
        raise ValueError(f"{check.id}: answer {answer!r} is not one of {allowed}")
    return CheckResult(
        check.id, check.label, answer, chosen.band, " ".join(chosen.text.split()), check.sources
    )


def pregnancy_applies(sex: str, age_years: int | None, check: PrecheckDef) -> bool:
    """Female patients up to the configured age; unknown sex or age counts as applicable."""
    if sex == "male":
        return False
    if age_years is None or check.childbearing_age_max is None:
        return True
    return age_years <= check.childbearing_age_max


def _label_named(
    check: PrecheckDef, findings: Sequence[InteractionFinding]
) -> list[tuple[InteractionFinding, Any]]:
    """The findings a label names (Spravato section 7), each with its group."""
    classes = load_catalog().ingredient_classes
    out = []
    for f in findings:
        group = check.label_group(f.rule_id, classes.get(f.ingredient, frozenset()))
        if group is not None:
            out.append((f, group))
    return out


def _interactions(check: PrecheckDef, summary: InteractionSummary | None) -> CheckResult:
    def result(
        band: Band,
        text: str,
        needs: tuple[Need, ...] = (),
        detail: Mapping[str, Any] | None = None,
        sources: tuple[str, ...] = check.sources,
    ) -> CheckResult:
        return CheckResult(check.id, check.label, None, band, text, sources, needs, detail or {})

    assert check.unrecognized_band is not None and check.label_named_band is not None
    if summary is None:
        return result("hold", "The current medicines were not screened for interactions.")
    if summary.medicines == 0:
        return result(
            "caution",
            "No medicines recorded: confirm with the patient that they take none, including "
            "over-the-counter medicines and supplements.",
        )
    bands: list[Band] = ["proceed"]
    parts: list[str] = []
    needs: tuple[Need, ...] = ()
    sources = list(check.sources)
    named = _label_named(check, summary.findings)
    if summary.highest_severity is not None:
        bands.append(check.severity_bands[summary.highest_severity])  # type: ignore[index]
        # Each finding by its medicine and rule, not a bare severity: the nurse checks them.
        found = "; ".join(
            f"{f.ingredient}: {f.title or f.rule_id} ({f.severity})" for f in summary.findings
        )
        parts.append(f"Highest interaction severity: {summary.highest_severity} ({found}).")
    else:
        parts.append("No known interaction with the recorded medicines.")
    contraindicated = [f for f in summary.findings if f.severity == "contraindicated"]
    if contraindicated:
        which = "; ".join(f"{f.title or f.rule_id} ({f.ingredient})" for f in contraindicated)
        parts.append(
            f"Contraindicated: {which}. Do not dose; no override (the same finding makes the "
            "patient ineligible at intake)."
        )
    if named:
        bands.append(check.label_named_band)
        needs = ("monitoring_plan",)
        listed = "; ".join(
            f"{f.ingredient} ({g.label}): {' '.join(g.monitoring.split())}" for f, g in named
        )
        parts.append(
            f"Named in the Spravato label (section 7): {listed} Acknowledge, and write down the "
            "monitoring change for this session."
        )
        for _f, g in named:
            sources += [s for s in g.sources if s not in sources]
    if summary.unrecognized:
        bands.append(check.unrecognized_band)
        parts.append(
            f"Not recognised, so not screened: {', '.join(summary.unrecognized)}. Check them "
            "by hand."
        )
    detail = {
        "findings": [
            {
                "rule_id": f.rule_id,
                "severity": f.severity,
                "ingredient": f.ingredient,
                "classes": sorted(load_catalog().ingredient_classes.get(f.ingredient, ())),
            }
            for f in summary.findings
        ],
        "label_named": [{"rule_id": f.rule_id, "group": g.group} for f, g in named],
    }
    return result(worst(*bands), " ".join(parts), needs, detail, tuple(sources))


# --- interval since the previous dose ----------------------------------------------------------


@dataclass(frozen=True)
class IntervalCheck:
    """The protocol's minimum interval measured from the start of the patient's previous dose
    (any earlier dosed session, whatever its protocol) to the dose now planned."""

    outcome: Literal["ok", "too_soon_override", "too_soon"]
    at: datetime
    previous_dose_at: datetime | None
    earliest_at: datetime | None
    min_gap_hours: float
    override: Literal["prescriber", "none"]
    text: str
    sources: tuple[str, ...]

    @property
    def too_soon(self) -> bool:
        return self.outcome != "ok"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "at": self.at.isoformat(),
            "previous_dose_at": self.previous_dose_at.isoformat()
            if self.previous_dose_at
            else None,
            "earliest_at": self.earliest_at.isoformat() if self.earliest_at else None,
            "min_gap_hours": self.min_gap_hours,
            "override": self.override,
            "text": self.text,
            "sources": list(self.sources),
        }


def dose_interval(
    protocol: ProtocolDef, previous_dose_at: datetime | None, at: datetime, tz: str
) -> IntervalCheck:
    """Whether a dose at ``at`` keeps the protocol's minimum interval after the previous dose
    start (elapsed hours, so it holds across daylight-saving changes). Times in the text are in
    the clinic's zone ``tz``."""
    course = protocol.course
    if course is None:
        raise ValueError(f"{protocol.id}: the protocol plans no course, so it has no interval")
    gap = float(course.min_gap_hours.value)
    rule = course.interval_override
    override: Literal["prescriber", "none"] = rule.value if rule is not None else "none"
    sources = tuple(dict.fromkeys([*course.min_gap_hours.sources, *(rule.sources if rule else ())]))
    if previous_dose_at is None:
        return IntervalCheck(
            "ok", at, None, None, gap, override, "No earlier dose recorded.", sources
        )
    earliest = previous_dose_at + timedelta(hours=gap)
    if at >= earliest:
        hours = (at - previous_dose_at).total_seconds() / 3600
        text = (
            f"The previous dose started {_when(previous_dose_at, tz)}, {hours:.0f} h before: at "
            f"least the minimum of {gap:g} h."
        )
        return IntervalCheck("ok", at, previous_dose_at, earliest, gap, override, text, sources)
    hours = (at - previous_dose_at).total_seconds() / 3600
    text = (
        f"Too soon: the previous dose started {_when(previous_dose_at, tz)}, only {hours:.1f} h "
        f"before; this protocol's minimum interval is {gap:g} h, so the earliest next dose is "
        f"{_when(earliest, tz)}."
    )
    if override == "prescriber":
        text += " Reschedule, or a prescriber overrides with the reason."
        outcome: Literal["too_soon_override", "too_soon"] = "too_soon_override"
    else:
        text += " Reschedule: this protocol allows no override."
        outcome = "too_soon"
    return IntervalCheck(outcome, at, previous_dose_at, earliest, gap, override, text, sources)


def _interval(check: PrecheckDef, interval: IntervalCheck) -> CheckResult:
    return CheckResult(
        check.id,
        check.label,
        None,
        check.computed_bands[interval.outcome],
        interval.text,
        tuple(dict.fromkeys([*check.sources, *interval.sources])),
        detail=interval.to_json_dict(),
        outcome=interval.outcome,
    )


# --- suicide-risk flags ------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskFlag:
    """An open suicide-risk flag in the words the patient gave, with what to do about it."""

    kind: Literal["assessment", "therapy"]
    ref_id: int
    at: datetime
    level: Literal["critical", "urgent"]
    words: str
    instruction: str
    origin: str
    sources: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ref_id}"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "ref_id": self.ref_id,
            "at": self.at.isoformat(),
            "level": self.level,
            "words": self.words,
            "instruction": self.instruction,
            "origin": self.origin,
            "sources": list(self.sources),
        }


def assessment_risk_flags(
    ref_id: int,
    instrument: str,
    answers: Sequence[int],
    flags: Sequence[Mapping[str, Any]],
    at: datetime,
    source: str,
) -> list[RiskFlag]:
    """The risk flags of one rating: each listed flag of its stored result, worded with the
    question the patient was asked and the answer they gave."""
    config = load_session_checks().risk_flags
    definition = get_instrument(instrument)
    labels = {o.value: o.label for o in definition.options}
    out = []
    for flag in flags:
        level = config.assessment_level(str(flag.get("code")))
        if level is None:
            continue
        item = flag.get("item")
        if isinstance(item, int) and 1 <= item <= len(answers):
            question = definition.items[item - 1].text
            answer = labels.get(answers[item - 1], str(answers[item - 1]))
            words = f'{definition.short_name} question {item}, "{question}": answered "{answer}"'
        else:
            words = f"{definition.short_name}: {flag.get('text', '')}"
        who = "self-report" if source == "self_report" else "asked by staff"
        out.append(
            RiskFlag(
                "assessment",
                ref_id,
                at,
                level,
                words,
                " ".join(str(flag.get("text", "")).split()),
                f"{definition.short_name} ({who})",
                tuple(config.sources),
            )
        )
    return out


def therapy_risk_flag(ref_id: int, result: str | None, at: datetime) -> RiskFlag | None:
    """The risk flag of a CBT note's risk check (None when nothing was found)."""
    if result is None or result == "none":
        return None
    config = load_session_checks().risk_flags
    found = load_therapy().risk_check.by_code().get(result)
    if found is not None and not found.urgent:
        return None
    words = found.label if found else f"a risk-check result no longer known ({result})"
    instruction = (
        " ".join((found.text or "").split())
        if found
        else "Review the note and follow the clinic's suicide-risk pathway (C-SSRS)."
    )
    return RiskFlag(
        "therapy",
        ref_id,
        at,
        config.therapy_level(result),
        f"CBT risk check: {words}",
        instruction,
        "CBT note",
        tuple(dict.fromkeys([*(found.sources if found else ()), *config.sources])),
    )


def ordered_flags(flags: Sequence[RiskFlag]) -> tuple[RiskFlag, ...]:
    """Critical first, then the newest."""
    return tuple(sorted(flags, key=lambda f: (f.level != "critical", -f.at.timestamp(), f.key)))


@dataclass(frozen=True)
class RiskDecisionBrief:
    """A prescriber's decision on risk flags, as recorded for this session."""

    decision: Literal["proceed", "defer"]
    reason: str
    at: datetime
    by: str
    flag_keys: tuple[str, ...]


def _risk(
    check: PrecheckDef,
    flags: Sequence[RiskFlag],
    decisions: Sequence[RiskDecisionBrief],
    tz: str,
) -> CheckResult:
    shown = ordered_flags(flags)
    detail: dict[str, Any] = {
        "flags": [f.to_json_dict() for f in shown],
        "decisions": [
            {
                "decision": d.decision,
                "reason": d.reason,
                "at": d.at.isoformat(),
                "by": d.by,
                "flags": list(d.flag_keys),
            }
            for d in decisions
        ],
    }

    def result(outcome: str, text: str) -> CheckResult:
        band = check.computed_bands[outcome]
        return CheckResult(
            check.id, check.label, None, band, text, check.sources, (), detail, outcome
        )

    if not shown:
        proceeded = [d for d in decisions if d.decision == "proceed"]
        if proceeded:
            last = proceeded[-1]
            return result(
                "decided_proceed",
                f"Risk flags reviewed: {last.by} decided to proceed ({_when(last.at, tz)}): "
                f"“{last.reason}”.",
            )
        return result("none", "No open risk flag.")
    listed = " ".join(
        f"{n}) {f.level.upper()}, {f.origin} {_when(f.at, tz)}: {f.words}."
        for n, f in enumerate(shown, start=1)
    )
    open_keys = {f.key for f in shown}
    deferred = [d for d in decisions if d.decision == "defer" and open_keys <= set(d.flag_keys)]
    if deferred:
        last = deferred[-1]
        return result(
            "deferred",
            f"{last.by} deferred dosing ({_when(last.at, tz)}): “{last.reason}”. Open risk "
            f"flags: {listed} A prescriber's decision to proceed is needed before any dose.",
        )
    return result(
        "open",
        f"Open risk flags (critical first): {listed} Do not dose until a prescriber records a "
        "decision on them (proceed, with the reason, or defer).",
    )


# --- a start refused earlier the same day -------------------------------------------------------


@dataclass(frozen=True)
class EarlierRefusal:
    """A start of this patient's dose refused earlier the same day."""

    at: datetime
    code: str
    text: str
    bp_refused: bool


def _earlier(check: PrecheckDef, refusals: Sequence[EarlierRefusal], tz: str) -> CheckResult:
    if not refusals:
        band = check.computed_bands["none"]
        return CheckResult(
            check.id, check.label, None, band, "None today.", check.sources, outcome="none"
        )
    listed = " ".join(f"{_when(r.at, tz)}: {r.text}" for r in refusals)
    bp = any(r.bp_refused for r in refusals)
    outcome = "bp_refused_today" if bp else "refused_today"
    text = f"Refused earlier today. {listed} "
    text += (
        "The gate said do not dose today: only a prescriber may decide otherwise, with the "
        "reason, on a repeated reading; acknowledge the earlier refusal."
        if bp
        else "Acknowledge the earlier refusal; the checks above are a repeat."
    )
    return CheckResult(
        check.id,
        check.label,
        None,
        check.computed_bands[outcome],
        text,
        check.sources,
        ("acknowledge_refusal",),
        {"refusals": [{"at": r.at.isoformat(), "code": r.code} for r in refusals]},
        outcome,
    )


# --- the other pre-dose readings ----------------------------------------------------------------

# Signs a pre-dose set of readings must carry beside the blood pressure (not recorded is unknown).
EXPECTED_READINGS = {
    "heart_rate": "heart rate",
    "spo2": "SpO2",
    "respiratory_rate": "respiratory rate",
}


def _graded_by_the_gate(alert: Alert) -> bool:
    """High blood pressure is the gate's (its bands are the pre-dose thresholds); rises need a
    baseline, which the pre-dose reading is."""
    rule = next(r for r in load_monitoring().alerts if r.code == alert.code)
    return rule.kind == "rise" or (
        rule.field in ("systolic", "diastolic") and rule.comparison != "below"
    )


def _readings(
    check: PrecheckDef, readings: Mapping[str, float | None], monitoring: MonitoringSettings
) -> CheckResult:
    found = [a for a in alerts(dict(readings), None, monitoring) if not _graded_by_the_gate(a)]
    missing = [label for name, label in EXPECTED_READINGS.items() if readings.get(name) is None]
    parts = [a.text for a in found]
    if missing:
        parts.append(f"Not recorded: {', '.join(missing)}; take them before the dose.")
    if any(a.severity == "critical" for a in found):
        outcome = "critical"
        parts.append("A prescriber decides whether to dose today, with the reason.")
    elif found:
        outcome = "warning"
    elif missing:
        outcome = "not_recorded"
    else:
        outcome = "ok"
        parts.append("Heart rate, SpO2, breathing and blood pressure in no alert band.")
    return CheckResult(
        check.id,
        check.label,
        None,
        check.computed_bands[outcome],
        " ".join(parts),
        check.sources,
        detail={"alerts": [a.code for a in found], "not_recorded": missing},
        outcome=outcome,
    )


# --- signed eligibility and consent -------------------------------------------------------------


@dataclass(frozen=True)
class ProgrammeStatus:
    """The patient's latest signed eligibility decision and latest consent status (None: no
    record), read at the moment of the dose."""

    review: str | None
    consent: str | None


def _programme(check: PrecheckDef, status: ProgrammeStatus) -> CheckResult:
    problems: list[tuple[str, str]] = []
    if status.review is None:
        problems.append(
            ("no_review", "No signed eligibility review: a prescriber signs it as eligible first.")
        )
    elif status.review != "eligible":
        decision = status.review.replace("_", " ")
        problems.append(
            (
                "not_eligible",
                f"The latest signed eligibility review says {decision}: no dose until a review "
                "signed as eligible.",
            )
        )
    if status.consent is None:
        problems.append(("no_consent", "No informed consent recorded: record it before a dose."))
    elif status.consent != "given":
        problems.append(
            (
                "consent_withdrawn",
                "Consent was withdrawn: no dose unless the patient gives consent again.",
            )
        )
    if not problems:
        return CheckResult(
            check.id,
            check.label,
            None,
            check.computed_bands["ok"],
            "Signed as eligible; consent given.",
            check.sources,
            outcome="ok",
        )
    outcome = problems[0][0]
    return CheckResult(
        check.id,
        check.label,
        None,
        check.computed_bands[outcome],
        " ".join(text for _code, text in problems),
        check.sources,
        detail={"problems": [code for code, _text in problems]},
        outcome=outcome,
    )


# --- all together ------------------------------------------------------------------------------


def assess_prechecks(
    protocol: ProtocolDef,
    *,
    fasting: str | None,
    escort: str | None,
    pregnancy: str | None,
    sex: str,
    age_years: int | None,
    interactions: InteractionSummary | None,
    interval: IntervalCheck | None = None,
    risk_flags: Sequence[RiskFlag] | None = None,
    risk_decisions: Sequence[RiskDecisionBrief] = (),
    refusals_today: Sequence[EarlierRefusal] | None = None,
    programme: ProgrammeStatus | None = None,
    readings: Mapping[str, float | None] | None = None,
    monitoring: MonitoringSettings | None = None,
    tz: str = "UTC",
) -> PrecheckResult:
    """Every pre-dose check with its band and text, and the worst band among them. The checks
    worked out from the record (interval, risk flags, earlier refusals) are part of it when the
    caller gives their inputs; the clinic's start always does."""
    checks = load_session_checks()
    results = [
        _answered(checks.precheck("fasting"), fasting, protocol),
        _answered(checks.precheck("escort"), escort, protocol),
    ]
    pregnancy_check = checks.precheck("pregnancy")
    if pregnancy_applies(sex, age_years, pregnancy_check):
        results.append(_answered(pregnancy_check, pregnancy, protocol))
    elif pregnancy is not None and pregnancy != "not_pregnant":
        # Recorded anyway: a stated pregnancy is never ignored.
        results.append(_answered(pregnancy_check, pregnancy, protocol))
    results.append(_interactions(checks.precheck("interactions"), interactions))
    if interval is not None:
        results.append(_interval(checks.precheck("dose_interval"), interval))
    if risk_flags is not None:
        results.append(_risk(checks.precheck("risk_flags"), risk_flags, risk_decisions, tz))
    if refusals_today is not None:
        results.append(_earlier(checks.precheck("earlier_refusal"), refusals_today, tz))
    if programme is not None:
        results.append(_programme(checks.precheck("programme"), programme))
    if readings is not None:
        settings = monitoring or MonitoringSettings.defaults()
        results.append(_readings(checks.precheck("readings"), readings, settings))
    return PrecheckResult(
        band=worst(*(r.band for r in results)),
        checks=tuple(results),
        knowledge_version=knowledge_version(),
    )


def answers_of(result: PrecheckResult) -> Mapping[str, str | None]:
    return {c.id: c.answer for c in result.checks}
