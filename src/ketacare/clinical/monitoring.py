"""Session monitoring: pre-session blood-pressure gate, in-session alerts, discharge check.

Pure: thresholds, texts and sources come from ``knowledge/monitoring.yaml`` (clinic settings
with cited defaults) and ``knowledge/protocols.yaml`` (observation time, REMS). Every decision
returns the settings in force and the knowledge version. Values that cannot be real (a
diastolic at or above the systolic, SpO2 above 100%) are refused with the field named, never
turned into an alert: an entry error must be corrected, not acted on.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketacare.knowledge import knowledge_version
from ketacare.knowledge.protocol_defs import (
    AlertRuleDef,
    DischargeCriterionDef,
    ProtocolDef,
    load_monitoring,
    load_protocols,
    require_ordered_alert_thresholds,
)

__all__ = [
    "Alert",
    "BpReading",
    "CriterionResult",
    "DischargeInputs",
    "DischargeResult",
    "Gate",
    "GateBand",
    "MonitoringSettings",
    "Reason",
    "VitalProblem",
    "VitalSignError",
    "VitalSigns",
    "alerts",
    "bp_gate",
    "discharge_check",
    "validate_vitals",
    "vital_sign_codes",
]

GateBand = Literal["proceed", "caution", "hold", "refuse"]
Status = Literal["met", "not_met", "unknown"]
VITAL_FIELDS = ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate")


class VitalSignError(ValueError):
    """A reading that cannot be real; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def require_rising_bp_bands(settings: object) -> None:
    """Blood-pressure bands (bp_caution_*, bp_hold_*, bp_refuse_*) must rise on both axes;
    shared by the screening and the pre-dose settings."""
    for axis in ("systolic", "diastolic"):
        caution, hold, refuse = (
            getattr(settings, f"bp_{band}_{axis}") for band in ("caution", "hold", "refuse")
        )
        if not caution < hold < refuse:
            raise ValueError(f"{axis} thresholds must rise: caution < hold < refuse")


class MonitoringSettings(BaseModel):
    """The clinic's monitoring values; defaults and sources in monitoring.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bp_caution_systolic: int = Field(ge=80, le=250)
    bp_caution_diastolic: int = Field(ge=40, le=150)
    bp_hold_systolic: int = Field(ge=80, le=250)
    bp_hold_diastolic: int = Field(ge=40, le=150)
    bp_refuse_systolic: int = Field(ge=80, le=250)
    bp_refuse_diastolic: int = Field(ge=40, le=150)
    alert_systolic_at_least: int = Field(ge=80, le=300)
    alert_diastolic_at_least: int = Field(ge=40, le=200)
    alert_systolic_rise_at_least: int = Field(ge=1, le=150)
    alert_diastolic_rise_at_least: int = Field(ge=1, le=150)
    alert_heart_rate_above: int = Field(ge=40, le=250)
    alert_heart_rate_below: int = Field(ge=20, le=120)
    alert_heart_rate_critical_above: int = Field(ge=60, le=250)
    alert_heart_rate_critical_below: int = Field(ge=20, le=100)
    alert_systolic_warning_below: int = Field(ge=50, le=150)
    alert_systolic_critical_below: int = Field(ge=50, le=150)
    alert_mean_arterial_pressure_below: int = Field(ge=30, le=120)
    alert_spo2_warning_below: int = Field(ge=50, le=100)
    alert_spo2_critical_below: int = Field(ge=50, le=100)
    alert_respiratory_rate_below: int = Field(ge=1, le=30)
    weight_freshness_days: int = Field(ge=1, le=365)
    cbt_window_start_hours: int = Field(ge=0, le=336)
    cbt_window_end_hours: int = Field(ge=1, le=336)
    cbt_session_minutes: int = Field(ge=1, le=480)
    discharge_bp_band_percent: int = Field(ge=0, le=100)
    discharge_systolic_at_least: int = Field(ge=60, le=140)
    discharge_heart_rate_band_percent: int = Field(ge=0, le=100)
    discharge_spo2_above: int = Field(ge=50, le=99)
    discharge_moaas: int = Field(ge=0, le=5)
    discharge_cadss_at_most: int = Field(ge=0, le=92)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        require_rising_bp_bands(self)
        require_ordered_alert_thresholds(functools.partial(getattr, self))
        if not self.cbt_window_start_hours < self.cbt_window_end_hours:
            raise ValueError("the CBT window must start before it ends")
        return self

    @classmethod
    def defaults(cls) -> MonitoringSettings:
        return _default_settings()

    def template_values(self) -> dict[str, Any]:
        return self.model_dump()


@cache
def _default_settings() -> MonitoringSettings:
    raw = {name: entry.value for name, entry in load_monitoring().settings.items()}
    return MonitoringSettings.model_validate({k: int(v) for k, v in raw.items()})


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    sources: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text, "sources": list(self.sources)}


# --- vital signs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VitalSigns:
    """One set of readings; any field may be missing (None)."""

    systolic: float | None = None
    diastolic: float | None = None
    heart_rate: float | None = None
    spo2: float | None = None
    respiratory_rate: float | None = None
    weight_kg: float | None = None
    height_cm: float | None = None

    @classmethod
    def coerce(cls, sample: VitalSigns | Mapping[str, Any] | None) -> VitalSigns:
        if sample is None:
            return cls()
        if isinstance(sample, VitalSigns):
            return sample
        if not _VITAL_FIELDS.issuperset(sample):
            unknown = sorted(set(sample) - _VITAL_FIELDS)
            raise VitalSignError(
                unknown[0], f"unknown vital sign; known: {', '.join(sorted(_VITAL_FIELDS))}"
            )
        return cls(**sample)

    @property
    def mean_arterial_pressure(self) -> float | None:
        """(systolic + 2 x diastolic) / 3, when both are read."""
        if self.systolic is None or self.diastolic is None:
            return None
        return (self.systolic + 2 * self.diastolic) / 3

    def to_json_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Read once: a device batch coerces every sample, and dataclasses.fields() is not free.
_VITAL_FIELDS = frozenset(f.name for f in fields(VitalSigns))


@dataclass(frozen=True)
class VitalProblem:
    field: str
    value: Any
    code: str  # not_a_number | out_of_range | diastolic_not_below_systolic
    text: str
    sources: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "value": self.value,
            "code": self.code,
            "text": self.text,
            "sources": list(self.sources),
        }


_LABEL = {
    "systolic": "Systolic",
    "diastolic": "Diastolic",
    "mean_arterial_pressure": "Mean arterial pressure",
    "heart_rate": "Heart rate",
    "spo2": "SpO2",
    "respiratory_rate": "Respiratory rate",
    "weight_kg": "Weight",
    "height_cm": "Height",
}


def _g(value: float) -> str:
    try:
        return f"{value:g}"
    except OverflowError:  # an integer beyond any float; only its size matters in the text
        return "-1e308 or less" if value < 0 else "1e308 or more"


def _minutes(value: float) -> str:
    """Elapsed minutes as a clinician reads them: whole minutes, never more than have passed."""
    if value < 1:
        return "less than 1 min"
    return f"{math.floor(value)} min"


def _with_unit(value: float, unit: str) -> str:
    return f"{_g(value)}{unit}" if unit == "%" else f"{_g(value)} {unit}"


def validate_vitals(sample: VitalSigns | Mapping[str, Any]) -> list[VitalProblem]:
    """Every value that cannot be real, with the field named; [] when all present values are
    plausible. Missing values are not problems here (the discharge check treats them as
    unknown)."""
    # Read straight from a mapping (a device batch checks every sample): building a
    # VitalSigns first would cost more than the checks.
    if sample is None or isinstance(sample, VitalSigns):
        vitals = VitalSigns.coerce(sample)
        read: Callable[[str], Any] = functools.partial(getattr, vitals)
    else:
        if not _VITAL_FIELDS.issuperset(sample):
            VitalSigns.coerce(sample)  # refuses it, naming the unknown field
        read = sample.get
    plausibility = load_monitoring().plausibility
    sources = plausibility.sources
    problems: list[VitalProblem] = []
    plausible: dict[str, float] = {}
    for name, limits in plausibility.ranges.items():
        value = read(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(
                VitalProblem(
                    name,
                    value,
                    "not_a_number",
                    f"{_LABEL[name]}: {value!r} is not a number.",
                    sources,
                )
            )
            continue
        if isinstance(value, float) and not math.isfinite(value):  # ints: always finite
            problems.append(
                VitalProblem(
                    name,
                    value,
                    "not_a_number",
                    f"{_LABEL[name]}: {value} is not a number.",
                    sources,
                )
            )
            continue
        if not limits.min <= value <= limits.max:
            problems.append(
                VitalProblem(
                    name,
                    value,
                    "out_of_range",
                    f"{_LABEL[name]} {_with_unit(value, limits.unit)} is outside the possible "
                    f"range {_g(limits.min)}-{_with_unit(limits.max, limits.unit)}: check the "
                    "entry.",
                    sources,
                )
            )
            continue
        plausible[name] = value
    both = "systolic" in plausible and "diastolic" in plausible
    if both and plausible["diastolic"] >= plausible["systolic"]:
        problems.append(
            VitalProblem(
                "diastolic",
                read("diastolic"),
                "diastolic_not_below_systolic",
                f"Diastolic {_g(plausible['diastolic'])} mmHg must be below systolic "
                f"{_g(plausible['systolic'])} mmHg: check for swapped values.",
                sources,
            )
        )
    return problems


def _require_valid(sample: VitalSigns, prefix: str = "") -> None:
    problems = validate_vitals(sample)
    if problems:
        first = problems[0]
        raise VitalSignError(prefix + first.field, first.text)


# --- pre-session gate ------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    band: GateBand
    systolic: float
    diastolic: float
    override_allowed: bool
    acknowledgement_required: bool
    reasons: tuple[Reason, ...]
    settings: Mapping[str, Any]
    knowledge_version: str

    @property
    def may_proceed(self) -> bool:
        """Without anyone's further action (caution needs an acknowledgement, hold an override)."""
        return self.band == "proceed"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "systolic": self.systolic,
            "diastolic": self.diastolic,
            "override_allowed": self.override_allowed,
            "acknowledgement_required": self.acknowledgement_required,
            "reasons": [r.to_json_dict() for r in self.reasons],
            "settings": dict(self.settings),
            "knowledge_version": self.knowledge_version,
        }


def bp_gate(systolic: float, diastolic: float, settings: MonitoringSettings | None = None) -> Gate:
    """proceed | caution | hold | refuse for a pre-session reading; the worse axis decides."""
    settings = settings or MonitoringSettings.defaults()
    if systolic is None or diastolic is None:
        raise VitalSignError(
            "systolic" if systolic is None else "diastolic", "a blood-pressure reading is needed"
        )
    _require_valid(VitalSigns(systolic=systolic, diastolic=diastolic))
    values = settings.template_values()
    chosen = None
    for band in load_monitoring().bp_gate:
        if band.band == "proceed":
            chosen = band
            break
        assert band.systolic_setting is not None and band.diastolic_setting is not None
        if systolic >= values[band.systolic_setting] or diastolic >= values[band.diastolic_setting]:
            chosen = band
            break
    assert chosen is not None
    text = " ".join(
        chosen.text.format(**values, systolic=_g(systolic), diastolic=_g(diastolic)).split()
    )
    return Gate(
        band=chosen.band,
        systolic=systolic,
        diastolic=diastolic,
        override_allowed=chosen.override_allowed,
        acknowledgement_required=chosen.acknowledgement_required,
        reasons=(Reason(f"bp_{chosen.band}", text, chosen.sources),),
        settings=values,
        knowledge_version=knowledge_version(),
    )


# --- in-session alerts -----------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    code: str
    severity: Literal["warning", "critical"]
    field: str
    value: float
    threshold: float
    text: str
    sources: tuple[str, ...]
    setting: str
    baseline: float | None = None
    knowledge_version: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "field": self.field,
            "value": self.value,
            "threshold": self.threshold,
            "baseline": self.baseline,
            "setting": self.setting,
            "text": self.text,
            "sources": list(self.sources),
        }


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "at_least": operator.ge,
    "above": operator.gt,
    "below": operator.lt,
}


def alerts(
    sample: VitalSigns | Mapping[str, Any],
    baseline: VitalSigns | Mapping[str, Any] | None = None,
    settings: MonitoringSettings | None = None,
) -> list[Alert]:
    """Alerts for one set of in-session readings, critical first.

    Rises are measured against ``baseline`` (the pre-dose readings); without a baseline value
    the rise rule for that field is not evaluated. The mean arterial pressure is computed when
    systolic and diastolic are both read. Of the rules of one group that fire on one reading
    (SpO2 below 92 and below 88; systolic below 90 and below 80 and a low mean pressure), only
    the most severe is returned.
    """
    return alerts_for_samples([sample], baseline, settings)[0]


def alerts_for_samples(
    samples: Sequence[VitalSigns | Mapping[str, Any]],
    baseline: VitalSigns | Mapping[str, Any] | None = None,
    settings: MonitoringSettings | None = None,
    *,
    checked: bool = False,
) -> list[list[Alert]]:
    """:func:`alerts` for each sample of a batch, in order (the baseline and the settings are
    read once for the whole batch). ``checked``: the caller has already refused every sample
    :func:`validate_vitals` finds a problem in (a device batch is checked sample by sample
    before it is stored), so they are not checked twice."""
    settings = settings or MonitoringSettings.defaults()
    before = VitalSigns.coerce(baseline)
    _require_valid(before, "baseline.")
    values = settings.template_values()
    version = knowledge_version()
    # Each rule's threshold, comparison and baseline are read once for the whole batch; a rise
    # rule without a baseline value is not evaluated.
    rules = [
        (rule, values[rule.setting], _COMPARE[rule.comparison], start)
        for rule in load_monitoring().alerts
        for start in [getattr(before, rule.field) if rule.kind == "rise" else None]
        if rule.kind != "rise" or start is not None
    ]
    out = []
    for sample in samples:
        vitals = VitalSigns.coerce(sample)
        if not checked:
            _require_valid(vitals)
        out.append(_alerts(vitals, rules, values, version))
    return out


_Compiled = tuple[AlertRuleDef, float, Callable[[float, float], bool], float | None]


def _alerts(
    vitals: VitalSigns, rules: list[_Compiled], values: Mapping[str, Any], version: str
) -> list[Alert]:
    raised: list[tuple[AlertRuleDef, Alert]] = []
    for rule, threshold, fires, start in rules:
        value = getattr(vitals, rule.field)
        if value is None:
            continue
        measured = value if start is None else value - start
        if not fires(measured, threshold):
            continue
        if rule.field == "mean_arterial_pressure":
            value = round(value, 1)  # a derived value, shown to one decimal
        text = rule.text.format(
            **values,
            value=_g(value),
            threshold=_g(threshold),
            baseline=_g(start) if start is not None else "",
            rise=_g(measured),
            systolic=_g(vitals.systolic) if vitals.systolic is not None else "",
            diastolic=_g(vitals.diastolic) if vitals.diastolic is not None else "",
        )
        alert = Alert(
            code=rule.code,
            severity=rule.severity,
            field=rule.field,
            value=value,
            threshold=threshold,
            text=" ".join(text.split()),
            sources=rule.sources,
            setting=rule.setting,
            baseline=start,
            knowledge_version=version,
        )
        raised.append((rule, alert))
    if not raised:
        return []
    worst: dict[str, Alert] = {}
    for rule, alert in raised:
        key = rule.group_key
        if key not in worst or (alert.severity == "critical" and worst[key].severity == "warning"):
            worst[key] = alert
    kept = [alert for rule, alert in raised if worst[rule.group_key] is alert]
    return sorted(kept, key=lambda a: a.severity != "critical")


# --- discharge -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BpReading:
    """A blood-pressure reading taken after the dose started, in minutes from the dose start.
    ``after_end``: taken at or after the end of dosing."""

    minutes_after_start: float
    systolic: float
    diastolic: float
    after_end: bool

    def text(self) -> str:
        return f"{_g(self.systolic)}/{_g(self.diastolic)} mmHg"


@dataclass(frozen=True)
class DischargeInputs:
    """What is known at the discharge check; None means not recorded (never counts as met).

    ``bp_readings``: every blood-pressure reading since the dose started, in time order; the
    discharge reading is the latest, when it was taken after dosing ended. ``heart_rate`` and
    ``spo2``: the latest of each since dosing ended."""

    minutes_since_end: float | None = None
    minutes_since_start: float | None = None
    bp_readings: tuple[BpReading, ...] = ()
    heart_rate: float | None = None
    baseline_systolic: float | None = None
    baseline_diastolic: float | None = None
    baseline_heart_rate: float | None = None
    spo2: float | None = None
    on_room_air: bool | None = None
    moaas: int | None = None
    oriented: bool | None = None
    ambulating: bool | None = None
    dissociation_resolved: bool | None = None
    cadss_total: int | None = None
    cadss_baseline: int | None = None
    escort_confirmed: bool | None = None
    driving_counselling_documented: bool | None = None
    rems_form_queued: bool | None = None

    @property
    def discharge_bp(self) -> BpReading | None:
        """The blood pressure discharge rests on: the latest reading, if taken after dosing."""
        if self.bp_readings and self.bp_readings[-1].after_end:
            return self.bp_readings[-1]
        return None


@dataclass(frozen=True)
class CriterionResult:
    id: str
    label: str
    status: Status
    required: bool
    reason: str
    sources: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "status": self.status,
            "required": self.required,
            "reason": self.reason,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class DischargeResult:
    protocol: str
    allowed: bool
    criteria: tuple[CriterionResult, ...]
    observation_minutes: int
    settings: Mapping[str, Any]
    knowledge_version: str

    @property
    def not_met(self) -> tuple[CriterionResult, ...]:
        return tuple(c for c in self.criteria if c.status == "not_met")

    @property
    def unknown(self) -> tuple[CriterionResult, ...]:
        return tuple(c for c in self.criteria if c.status == "unknown")

    def criterion(self, criterion_id: str) -> CriterionResult:
        return next(c for c in self.criteria if c.id == criterion_id)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "allowed": self.allowed,
            "criteria": [c.to_json_dict() for c in self.criteria],
            "observation_minutes": self.observation_minutes,
            "settings": dict(self.settings),
            "knowledge_version": self.knowledge_version,
        }


def _within(value: float, baseline: float, percent: int) -> bool:
    # |value - baseline| <= percent% of baseline, in exact arithmetic for whole readings.
    return abs(value - baseline) * 100 <= baseline * percent


def _flag(value: bool | None, yes: str, no: str, missing: str) -> tuple[Status, str]:
    if value is None:
        return "unknown", missing
    return ("met", yes) if value else ("not_met", no)


def _check_inputs(inputs: DischargeInputs) -> None:
    _require_valid(VitalSigns(heart_rate=inputs.heart_rate, spo2=inputs.spo2))
    _require_valid(
        VitalSigns(
            systolic=inputs.baseline_systolic,
            diastolic=inputs.baseline_diastolic,
            heart_rate=inputs.baseline_heart_rate,
        ),
        "baseline_",
    )
    for name in ("minutes_since_end", "minutes_since_start"):
        value = getattr(inputs, name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise VitalSignError(name, "must be zero or more minutes")
    if (
        inputs.minutes_since_end is not None
        and inputs.minutes_since_start is not None
        and inputs.minutes_since_end > inputs.minutes_since_start
    ):
        raise VitalSignError("minutes_since_end", "dosing cannot end before it started")
    _check_bp_readings(inputs.bp_readings)
    if inputs.moaas is not None and (
        isinstance(inputs.moaas, bool) or inputs.moaas not in range(6)
    ):
        raise VitalSignError("moaas", f"MOAA/S is a whole number 0-5, got {inputs.moaas!r}")
    for name in ("cadss_total", "cadss_baseline"):
        value = getattr(inputs, name)
        if value is not None and (isinstance(value, bool) or value not in range(93)):
            raise VitalSignError(name, f"CADSS (23 items) totals 0-92, got {value!r}")


def _check_bp_readings(readings: Sequence[BpReading]) -> None:
    previous: BpReading | None = None
    for n, reading in enumerate(readings):
        where = f"bp_readings[{n}]"
        if reading.systolic is None or reading.diastolic is None:
            raise VitalSignError(where, "a blood-pressure reading needs systolic and diastolic")
        _require_valid(
            VitalSigns(systolic=reading.systolic, diastolic=reading.diastolic), f"{where}."
        )
        minutes = reading.minutes_after_start
        if not (math.isfinite(minutes) and minutes >= 0):
            raise VitalSignError(f"{where}.minutes_after_start", "must be zero or more minutes")
        if previous is not None:
            if minutes < previous.minutes_after_start:
                raise VitalSignError(
                    f"{where}.minutes_after_start", "readings must be in time order"
                )
            if previous.after_end and not reading.after_end:
                raise VitalSignError(
                    f"{where}.after_end", "a reading during dosing cannot follow one after it"
                )
        previous = reading


def _protocol(protocol: str | ProtocolDef) -> ProtocolDef:
    if isinstance(protocol, ProtocolDef):
        definition = protocol
    else:
        protocols = load_protocols()
        if protocol not in protocols:
            raise VitalSignError("protocol", f"unknown protocol {protocol!r}")
        definition = protocols[protocol]
    if definition.monitoring is None:
        raise VitalSignError("protocol", f"{definition.name} is not given in the clinic")
    return definition


def discharge_check(
    inputs: DischargeInputs,
    protocol: str | ProtocolDef,
    settings: MonitoringSettings | None = None,
) -> DischargeResult:
    """Evaluate every discharge criterion; discharge is allowed only when all required ones are
    met. A criterion whose inputs are missing is unknown, which never counts as met."""
    settings = settings or MonitoringSettings.defaults()
    definition = _protocol(protocol)
    assert definition.monitoring is not None
    _check_inputs(inputs)
    observation = definition.monitoring.observation_minutes.value
    results: list[CriterionResult] = []
    for criterion in load_monitoring().discharge:
        if criterion.applies_to == "rems" and not definition.monitoring.rems_required:
            continue
        status, reason = _evaluate(criterion, inputs, settings, observation, definition)
        results.append(
            CriterionResult(
                criterion.id, criterion.label, status, criterion.required, reason, criterion.sources
            )
        )
    allowed = all(r.status == "met" for r in results if r.required)
    return DischargeResult(
        protocol=definition.id,
        allowed=allowed,
        criteria=tuple(results),
        observation_minutes=observation,
        settings=settings.template_values(),
        knowledge_version=knowledge_version(),
    )


def _evaluate(
    criterion: DischargeCriterionDef,
    i: DischargeInputs,
    s: MonitoringSettings,
    observation: int,
    protocol: ProtocolDef,
) -> tuple[Status, str]:
    cid = criterion.id
    if cid == "observation_time":
        if i.minutes_since_end is None:
            return "unknown", "Dosing has not ended: observation counts from its end."
        if i.minutes_since_end >= observation:
            return (
                "met",
                f"{_minutes(i.minutes_since_end)} since the end of dosing "
                f"(at least {observation} min).",
            )
        wait = observation - i.minutes_since_end
        return "not_met", (
            f"{_minutes(i.minutes_since_end)} since the end of dosing; {protocol.name} needs at "
            f"least {observation} min ({math.ceil(wait)} min to go)."
        )
    if cid in _BP_CRITERIA:
        return _BP_CRITERIA[cid](i, s, protocol)
    if cid == "heart_rate":
        if i.heart_rate is None:
            return "unknown", "No heart-rate reading since dosing ended."
        # A rate in an alert band never passes, however close to a slow or fast baseline.
        found = alerts(VitalSigns(heart_rate=i.heart_rate), None, s)
        if found:
            phrases = "; ".join(_band_phrase(a) for a in found)
            return "not_met", (
                f"Heart rate {_g(i.heart_rate)}/min is in an alert band: {phrases}. Keep "
                "monitoring and act on the alert."
            )
        if i.baseline_heart_rate is None:
            return "unknown", "Baseline heart rate not recorded."
        band = s.discharge_heart_rate_band_percent
        if _within(i.heart_rate, i.baseline_heart_rate, band):
            return (
                "met",
                f"Heart rate {_g(i.heart_rate)}/min within {band}% of baseline "
                f"{_g(i.baseline_heart_rate)}/min.",
            )
        return "not_met", (
            f"Heart rate {_g(i.heart_rate)}/min is more than {band}% from baseline "
            f"{_g(i.baseline_heart_rate)}/min."
        )
    if cid == "spo2":
        if i.spo2 is None:
            return "unknown", "No SpO2 reading since dosing ended."
        if i.on_room_air is None:
            return "unknown", "Not recorded whether SpO2 was measured on room air."
        if not i.on_room_air:
            return "not_met", "Still needs oxygen: SpO2 must be measured on room air."
        if i.spo2 > s.discharge_spo2_above:
            return "met", f"SpO2 {_g(i.spo2)}% on room air (above {s.discharge_spo2_above}%)."
        return "not_met", f"SpO2 {_g(i.spo2)}% on room air is not above {s.discharge_spo2_above}%."
    if cid == "sedation":
        if i.moaas is None:
            return "unknown", "MOAA/S not recorded."
        if i.moaas >= s.discharge_moaas:
            return "met", f"MOAA/S {i.moaas}: responds readily to name spoken in normal tone."
        return "not_met", f"MOAA/S {i.moaas}: still sedated (needs {s.discharge_moaas})."
    if cid == "oriented_ambulating":
        if i.oriented is False or i.ambulating is False:
            missing = [
                n
                for n, v in (("oriented", i.oriented), ("walking steadily", i.ambulating))
                if v is False
            ]
            return "not_met", f"Not {' and not '.join(missing)}."
        if i.oriented is None or i.ambulating is None:
            return "unknown", "Orientation and gait not both recorded."
        return "met", "Oriented and walking steadily."
    if cid == "dissociation":
        return _dissociation_status(i, s)
    if cid == "escort":
        return _flag(
            i.escort_confirmed,
            "Responsible adult escort confirmed.",
            "No responsible adult escort: the patient must not leave alone.",
            "Escort not confirmed.",
        )
    if cid == "driving_counselling":
        return _flag(
            i.driving_counselling_documented,
            "Driving and hazardous-activity counselling documented.",
            "Driving counselling not given.",
            "Driving counselling not documented.",
        )
    if cid == "rems_form":
        return _flag(
            i.rems_form_queued,
            "REMS Patient Monitoring Form queued.",
            "REMS Patient Monitoring Form not queued.",
            "REMS Patient Monitoring Form status not recorded.",
        )
    raise AssertionError(f"unhandled discharge criterion {cid}")


# --- discharge blood pressure: five criteria, every one needed ------------------------------

_Verdict = tuple[Status, str]
_AXES = ("systolic", "diastolic")
_COMPARISON_WORDS = {"at_least": "at or above", "above": "above", "below": "below"}


def _baseline_text(i: DischargeInputs) -> str:
    return f"{_g(i.baseline_systolic)}/{_g(i.baseline_diastolic)}"  # type: ignore[arg-type]


def _no_discharge_bp(i: DischargeInputs) -> str:
    """Why there is no blood pressure to discharge on, precisely."""
    if i.minutes_since_end is None:
        return "Dosing has not ended: discharge needs a blood pressure taken after it."
    if i.bp_readings:
        last = i.bp_readings[-1]
        return (
            f"No blood-pressure reading since dosing ended (the latest, {last.text()} "
            f"{_minutes(last.minutes_after_start)} after the dose started, was during dosing): "
            "take one."
        )
    return "No blood-pressure reading since dosing ended: take one."


def _when(reading: BpReading) -> str:
    return f"{_minutes(reading.minutes_after_start)} after the dose started"


def _band_phrase(alert: Alert) -> str:
    rule = next(r for r in load_monitoring().alerts if r.code == alert.code)
    label = _LABEL[alert.field].lower()
    if alert.baseline is not None:
        return (
            f"{label} {_g(alert.value - alert.baseline)} mmHg over the pre-dose "
            f"{_g(alert.baseline)} (alert from +{_g(alert.threshold)}, {alert.severity})"
        )
    return (
        f"{label} {_g(alert.value)} {_COMPARISON_WORDS[rule.comparison]} "
        f"{_g(alert.threshold)} ({alert.severity})"
    )


def _bp_no_alert_band(i: DischargeInputs, s: MonitoringSettings, _p: ProtocolDef) -> _Verdict:
    """The discharge reading raises no blood-pressure alert of the rules in force (high, rise
    over the pre-dose reading, low systolic, low mean pressure). Earlier alerts were raised and
    acknowledged in their time; whether the pressure has settled since is the next criteria's
    question."""
    latest = i.discharge_bp
    if latest is None:
        return "unknown", _no_discharge_bp(i)
    baseline = VitalSigns(systolic=i.baseline_systolic, diastolic=i.baseline_diastolic)
    found = alerts(VitalSigns(systolic=latest.systolic, diastolic=latest.diastolic), baseline, s)
    reading = f"Blood pressure {latest.text()} ({_when(latest)})"
    if found:
        phrases = "; ".join(_band_phrase(a) for a in found)
        return "not_met", (
            f"{reading} is in an alert band: {phrases}. Keep monitoring and act on the alert."
        )
    if i.baseline_systolic is None or i.baseline_diastolic is None:
        return "unknown", (
            f"{reading} is in no absolute alert band, but the pre-dose blood pressure is not "
            "recorded: the rise alerts cannot be checked."
        )
    return "met", f"{reading} raises no alert (high, rise over the pre-dose reading, or low)."


def _bp_hypotension_floor(i: DischargeInputs, s: MonitoringSettings, _p: ProtocolDef) -> _Verdict:
    latest = i.discharge_bp
    if latest is None:
        return "unknown", _no_discharge_bp(i)
    floor = s.discharge_systolic_at_least
    if latest.systolic >= floor:
        return "met", f"Systolic {_g(latest.systolic)} mmHg is at or above {floor}."
    return "not_met", (
        f"Systolic {_g(latest.systolic)} mmHg is below {floor}: hypotension. Keep the patient "
        "lying down and monitored, and tell the prescriber."
    )


def _bp_at_baseline_or_falling(
    i: DischargeInputs, _s: MonitoringSettings, _p: ProtocolDef
) -> _Verdict:
    """At or below the pre-dose reading on both axes, or falling: on each axis still above
    its pre-dose value, lower than the previous post-dose reading (and so below the post-dose
    peak). Equal to the previous reading is not falling."""
    latest = i.discharge_bp
    if latest is None:
        return "unknown", _no_discharge_bp(i)
    reading = f"Blood pressure {latest.text()}"
    if i.baseline_systolic is None or i.baseline_diastolic is None:
        return "unknown", f"{reading}: the pre-dose blood pressure is not recorded to compare."
    base = {"systolic": i.baseline_systolic, "diastolic": i.baseline_diastolic}
    above = [axis for axis in _AXES if getattr(latest, axis) > base[axis]]
    if not above:
        return "met", f"{reading} is at or below the pre-dose {_baseline_text(i)}."
    where = f"{reading} is above the pre-dose {_baseline_text(i)} ({' and '.join(above)})"
    if len(i.bp_readings) < 2:
        return "unknown", (
            f"{where}, and there is no earlier post-dose reading to tell whether it is "
            "falling: repeat the reading."
        )
    previous = i.bp_readings[-2]
    peak = "/".join(_g(max(getattr(r, axis) for r in i.bp_readings)) for axis in _AXES)
    trend = "; ".join(
        f"{axis} {_g(getattr(latest, axis))} after {_g(getattr(previous, axis))}" for axis in above
    )
    if all(getattr(latest, axis) < getattr(previous, axis) for axis in above):
        return "met", f"{where}, but falling: {trend} (post-dose peak {peak})."
    return "not_met", (
        f"{where} and not falling: {trend} (post-dose peak {peak}). Keep monitoring until it "
        "declines."
    )


def _bp_within_baseline_band(
    i: DischargeInputs, s: MonitoringSettings, _p: ProtocolDef
) -> _Verdict:
    latest = i.discharge_bp
    if latest is None:
        return "unknown", _no_discharge_bp(i)
    if i.baseline_systolic is None or i.baseline_diastolic is None:
        return "unknown", "The pre-dose blood pressure is not recorded to compare."
    band = s.discharge_bp_band_percent
    inside = _within(latest.systolic, i.baseline_systolic, band) and _within(
        latest.diastolic, i.baseline_diastolic, band
    )
    if inside:
        return "met", (
            f"Blood pressure {latest.text()} is within {band}% of the pre-dose {_baseline_text(i)}."
        )
    return "not_met", (
        f"Blood pressure {latest.text()} is more than {band}% from the pre-dose "
        f"{_baseline_text(i)}: keep monitoring."
    )


def _bp_reassessment(i: DischargeInputs, _s: MonitoringSettings, p: ProtocolDef) -> _Verdict:
    """A reading in the protocol's window around its reassessment time (esketamine: about
    40 minutes after dosing). A window that has passed without one is a missed step."""
    assert p.monitoring is not None
    due = p.monitoring.bp_reassessment_minutes.value
    window = p.monitoring.bp_reassessment_window_minutes.value
    start, end = due - window, due + window
    span = f"{start}-{end} min after the dose started, due at about {due} min"
    inside = [r for r in i.bp_readings if start <= r.minutes_after_start <= end]
    if inside:
        closest = min(inside, key=lambda r: abs(r.minutes_after_start - due))
        return "met", f"Blood pressure {closest.text()} read {_when(closest)} (window {span})."
    if i.minutes_since_start is not None and i.minutes_since_start > end:
        return "not_met", (
            f"No blood-pressure reading {span}: the reassessment was missed. Keep monitoring; "
            "a prescriber signs with the reason."
        )
    return "unknown", f"Blood pressure to be read {span}; no reading yet."


_BP_CRITERIA: dict[str, Callable[[DischargeInputs, MonitoringSettings, ProtocolDef], _Verdict]] = {
    "bp_no_alert_band": _bp_no_alert_band,
    "bp_hypotension_floor": _bp_hypotension_floor,
    "bp_at_baseline_or_falling": _bp_at_baseline_or_falling,
    "bp_within_baseline_band": _bp_within_baseline_band,
    "bp_reassessment": _bp_reassessment,
}


def _dissociation_status(i: DischargeInputs, s: MonitoringSettings) -> tuple[Status, str]:
    if i.dissociation_resolved is not None:
        return _flag(
            i.dissociation_resolved,
            "Dissociation resolved (clinician's assessment).",
            "Dissociation not resolved.",
            "",
        )
    if i.cadss_total is None:
        return "unknown", "Dissociation not assessed."
    if i.cadss_total <= s.discharge_cadss_at_most:
        return "met", f"CADSS {i.cadss_total} (at most {s.discharge_cadss_at_most})."
    if i.cadss_baseline is not None and i.cadss_total <= i.cadss_baseline:
        return "met", f"CADSS {i.cadss_total}, back to baseline {i.cadss_baseline}."
    return "not_met", (
        f"CADSS {i.cadss_total} is above {s.discharge_cadss_at_most} and above baseline: "
        "dissociation not resolved."
    )


def vital_sign_codes() -> dict[str, dict[str, Any]]:
    """LOINC code and UCUM unit per vital sign (for FHIR Observation.code)."""
    return {
        c.key: {"loinc": c.loinc, "display": c.display, "ucum": c.ucum, "also": list(c.also)}
        for c in load_monitoring().vital_sign_codes.codes
    }
