"""Treatment protocols (``protocols.yaml``) and session monitoring (``monitoring.yaml``).

Both files are validated when they load: limits must be ordered (minimum <= standard <=
maximum, caution < hold < refuse), every value must carry an evidence level and sources, and
every source id must exist in ``references.yaml``. A protocol that would dose or schedule
wrongly must never reach a clinician, so any inconsistency stops the load.
"""

from __future__ import annotations

import string
from functools import cache
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids

__all__ = [
    "Administration",
    "Cited",
    "CourseDef",
    "DischargeCriterionDef",
    "Evidence",
    "FlatDosing",
    "GateBandDef",
    "MonitoringDef",
    "OrderSettingsDef",
    "ProtocolDef",
    "ProtocolsDef",
    "TimingDef",
    "WeightDosing",
    "get_protocol",
    "load_monitoring",
    "load_protocols",
    "load_protocols_file",
    "protocol_ids",
    "require_ordered_alert_thresholds",
]

Evidence = Literal["V", "S", "M"]
Administration = Literal["infusion", "injection", "nasal_spray", "oral", "sublingual"]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]

T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cited(_Model, Generic[T]):
    """One value with the evidence behind it."""

    value: T
    evidence: Evidence
    sources: tuple[Slug, ...] = Field(min_length=1)
    note: str | None = None


class Note(_Model):
    topic: str = Field(min_length=1)
    text: str = Field(min_length=1)
    sources: tuple[Slug, ...] = Field(min_length=1)


# --- protocols.yaml --------------------------------------------------------------------------


class WeightDosing(_Model):
    """mg/kg dosing (racemic ketamine IV or IM)."""

    basis: Literal["weight"]
    standard_mg_per_kg: Cited[float]
    min_mg_per_kg: Cited[float]
    max_mg_per_kg: Cited[float]
    escalation_step_mg_per_kg: Cited[float]
    absolute_cap_mg: Cited[float]
    max_concentration_mg_per_ml: Cited[float]
    usual_max_bag_concentration_mg_per_ml: Cited[float] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        low, std, high = (
            self.min_mg_per_kg.value,
            self.standard_mg_per_kg.value,
            self.max_mg_per_kg.value,
        )
        if not 0 < low <= std <= high:
            raise ValueError(f"mg/kg must satisfy 0 < min {low} <= standard {std} <= max {high}")
        for name in ("escalation_step_mg_per_kg", "absolute_cap_mg", "max_concentration_mg_per_ml"):
            if getattr(self, name).value <= 0:
                raise ValueError(f"{name} must be positive")
        bag = self.usual_max_bag_concentration_mg_per_ml
        if bag is not None and not 0 < bag.value <= self.max_concentration_mg_per_ml.value:
            raise ValueError("usual_max_bag_concentration must be positive and <= the maximum")
        return self


class FlatDosing(_Model):
    """Fixed doses in whole devices (esketamine nasal spray)."""

    basis: Literal["flat"]
    device_mg: Cited[int]
    sprays_per_device: Cited[int]
    rest_between_devices_minutes: Cited[int]
    doses_mg: Cited[tuple[int, ...]]
    first_dose_mg: Cited[int]
    older_adult_min_age: Cited[int]
    older_adult_doses_mg: Cited[tuple[int, ...]]
    older_adult_first_dose_mg: Cited[int]

    @model_validator(mode="after")
    def _whole_devices(self) -> Self:
        unit = self.device_mg.value
        if unit <= 0 or self.sprays_per_device.value <= 0:
            raise ValueError("device_mg and sprays_per_device must be positive")
        if self.rest_between_devices_minutes.value < 0:
            raise ValueError("rest_between_devices_minutes must not be negative")
        for name, doses in (
            ("doses_mg", self.doses_mg.value),
            ("older_adult_doses_mg", self.older_adult_doses_mg.value),
        ):
            if not doses or list(doses) != sorted(set(doses)):
                raise ValueError(f"{name} must be non-empty, ascending and unique")
            if any(d <= 0 or d % unit for d in doses):
                raise ValueError(f"{name} must be whole multiples of {unit} mg")
        if self.first_dose_mg.value not in self.doses_mg.value:
            raise ValueError("first_dose_mg must be one of doses_mg")
        if self.older_adult_first_dose_mg.value not in self.older_adult_doses_mg.value:
            raise ValueError("older_adult_first_dose_mg must be one of older_adult_doses_mg")
        if not set(self.doses_mg.value) <= set(self.older_adult_doses_mg.value):
            raise ValueError("older_adult_doses_mg must include every adult dose")
        return self

    @property
    def max_dose_mg(self) -> int:
        return max(self.older_adult_doses_mg.value)


class TimingDef(_Model):
    """Time taken by dosing itself (infusion length; time reserved for nasal devices)."""

    standard_minutes: Cited[int]
    min_minutes: Cited[int]
    max_minutes: Cited[int]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        low, std, high = self.min_minutes.value, self.standard_minutes.value, self.max_minutes.value
        if not 0 < low <= std <= high:
            raise ValueError(f"minutes must satisfy 0 < min {low} <= standard {std} <= max {high}")
        return self


class PhaseDef(_Model):
    name: str
    weeks: str
    frequency: str
    doses: str
    sources: tuple[Slug, ...] = Field(min_length=1)


class CourseDef(_Model):
    induction_sessions: Cited[int]
    span_days_max: Cited[int]
    min_gap_hours: Cited[float]
    # Who may dose inside min_gap_hours: a prescriber with the reason, or nobody. Not stated:
    # nobody (a missing rule never loosens a limit).
    interval_override: Cited[Literal["prescriber", "none"]] | None = None
    max_sessions_per_7_days: Cited[int]
    futility_after_sessions: Cited[int]
    phases: tuple[PhaseDef, ...] = ()

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.induction_sessions.value < 1:
            raise ValueError("induction_sessions must be at least 1")
        if self.min_gap_hours.value < 0:
            raise ValueError("min_gap_hours must not be negative")
        if self.max_sessions_per_7_days.value < 1 or self.span_days_max.value < 1:
            raise ValueError("max_sessions_per_7_days and span_days_max must be at least 1")
        return self


class ProtocolMonitoring(_Model):
    observation_minutes: Cited[int]
    rems_required: bool
    # A blood-pressure reading is due this many minutes after the dose started (the expected
    # peak), give or take the window; discharge needs one.
    bp_reassessment_minutes: Cited[int]
    bp_reassessment_window_minutes: Cited[int]
    notes: tuple[Note, ...] = ()

    @model_validator(mode="after")
    def _non_negative(self) -> Self:
        if self.observation_minutes.value < 0:
            raise ValueError("observation_minutes must not be negative")
        due, window = self.bp_reassessment_minutes.value, self.bp_reassessment_window_minutes.value
        if not 0 < window < due:
            raise ValueError(
                f"bp_reassessment_window_minutes ({window}) must be positive and below "
                f"bp_reassessment_minutes ({due}): the window cannot reach back to the dose start"
            )
        return self


class ProtocolDef(_Model):
    id: Slug
    name: str = Field(min_length=1)
    agent: Literal["ketamine", "esketamine"]
    route: Literal["iv", "im", "intranasal", "oral", "sublingual"]
    administration: Administration
    label_status: str = Field(min_length=1)
    label_status_sources: tuple[Slug, ...] = Field(min_length=1)
    plannable: bool
    not_plannable_reason: str | None = None
    not_plannable_sources: tuple[Slug, ...] = ()
    session_label: str = Field(min_length=1)
    session_noun: str = Field(min_length=1)
    dosing: Annotated[WeightDosing | FlatDosing, Field(discriminator="basis")] | None = None
    timing: TimingDef | None = None
    course: CourseDef | None = None
    monitoring: ProtocolMonitoring | None = None
    sources: tuple[Slug, ...] = Field(min_length=1)
    notes: tuple[Note, ...] = ()

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not self.plannable:
            if not self.not_plannable_reason or not self.not_plannable_sources:
                raise ValueError("a protocol that is not plannable needs a reason and sources")
            return self
        if self.not_plannable_reason is not None:
            raise ValueError("not_plannable_reason is only for protocols that are not plannable")
        if (
            self.dosing is None
            or self.timing is None
            or self.course is None
            or self.monitoring is None
        ):
            raise ValueError("a plannable protocol needs dosing, timing, course and monitoring")
        if self.administration == "nasal_spray" and not isinstance(self.dosing, FlatDosing):
            raise ValueError("nasal spray protocols use flat dosing")
        if self.administration in ("infusion", "injection") and not isinstance(
            self.dosing, WeightDosing
        ):
            raise ValueError("infusion and injection protocols use weight-based dosing")
        return self

    @property
    def weight_based(self) -> bool:
        return isinstance(self.dosing, WeightDosing)

    @property
    def is_infusion(self) -> bool:
        return self.administration == "infusion"

    def all_source_ids(self) -> set[str]:
        ids = set(self.sources) | set(self.label_status_sources) | set(self.not_plannable_sources)
        for note in self.notes:
            ids |= set(note.sources)
        for section in (self.dosing, self.timing, self.course, self.monitoring):
            if section is not None:
                ids |= _cited_sources(section)
        return ids


class OrderSettingsDef(_Model):
    """Defaults for every weight-based order: dosing weight policy and rounding steps."""

    policy: Cited[Literal["actual", "ideal", "adjusted"]]
    bmi_threshold: Cited[float]
    ideal_weight_formula: Cited[Literal["devine"]]
    adjusted_fraction: Cited[float]
    dose_step_mg: Cited[float]
    volume_step_ml: Cited[float]
    pump_rate_step_ml_per_h: Cited[float]

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        if not 18 <= self.bmi_threshold.value <= 60:
            raise ValueError("bmi_threshold must be between 18 and 60")
        if not 0 <= self.adjusted_fraction.value <= 1:
            raise ValueError("adjusted_fraction must be between 0 and 1")
        for name in ("dose_step_mg", "volume_step_ml", "pump_rate_step_ml_per_h"):
            if not 0 < getattr(self, name).value <= 10:
                raise ValueError(f"{name} must be positive and at most 10")
        return self


class ProtocolsDef(_Model):
    order_settings: OrderSettingsDef
    protocols: tuple[ProtocolDef, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [p.id for p in self.protocols]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"protocol ids repeated: {repeated}")
        return self


# --- monitoring.yaml -------------------------------------------------------------------------


class SettingDefault(_Model):
    value: float
    evidence: Evidence
    sources: tuple[Slug, ...] = Field(min_length=1)
    note: str | None = None


class GateBandDef(_Model):
    band: Literal["refuse", "hold", "caution", "proceed"]
    systolic_setting: str | None
    diastolic_setting: str | None
    override_allowed: bool
    acknowledgement_required: bool
    text: str = Field(min_length=1)
    sources: tuple[Slug, ...] = Field(min_length=1)


# Alert fields: the readings, and the mean arterial pressure derived from systolic and
# diastolic when both are present.
AlertField = Literal[
    "systolic", "diastolic", "mean_arterial_pressure", "heart_rate", "spo2", "respiratory_rate"
]


class AlertRuleDef(_Model):
    code: Code
    field: AlertField
    kind: Literal["absolute", "rise"]
    comparison: Literal["at_least", "above", "below"]
    setting: str
    severity: Literal["warning", "critical"]
    text: str = Field(min_length=1)
    sources: tuple[Slug, ...] = Field(min_length=1)
    # Of the rules of one group that fire on one reading, only the most severe is raised.
    # Default: the rules of the same field and kind (SpO2 below 92 and below 88).
    group: Code | None = None

    @property
    def group_key(self) -> str:
        return self.group or f"{self.field}.{self.kind}"


class Range(_Model):
    min: float
    max: float
    unit: str

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.min < self.max:
            raise ValueError(f"range min {self.min} must be below max {self.max}")
        return self


class Plausibility(_Model):
    sources: tuple[Slug, ...] = Field(min_length=1)
    note: str | None = None
    ranges: dict[
        Literal[
            "systolic",
            "diastolic",
            "heart_rate",
            "spo2",
            "respiratory_rate",
            "weight_kg",
            "height_cm",
        ],
        Range,
    ]


class DischargeCriterionDef(_Model):
    id: Code
    label: str = Field(min_length=1)
    applies_to: Literal["all", "rems"]
    required: bool
    sources: tuple[Slug, ...] = Field(min_length=1)
    note: str | None = None


class VitalSignCode(_Model):
    key: Code
    loinc: Annotated[str, StringConstraints(pattern=r"^\d{1,7}-\d$")]
    display: str
    ucum: str | None
    unit_evidence: Evidence
    also: tuple[str, ...] = ()


class VitalSignCodes(_Model):
    sources: tuple[Slug, ...] = Field(min_length=1)
    codes: tuple[VitalSignCode, ...] = Field(min_length=1)


# The discharge criteria the code evaluates; the knowledge file must list exactly these.
DISCHARGE_CRITERIA: tuple[str, ...] = (
    "observation_time",
    "bp_no_alert_band",
    "bp_hypotension_floor",
    "bp_at_baseline_or_falling",
    "bp_within_baseline_band",
    "bp_reassessment",
    "heart_rate",
    "spo2",
    "sedation",
    "oriented_ambulating",
    "dissociation",
    "escort",
    "driving_counselling",
    "rems_form",
)


class MonitoringDef(_Model):
    settings: dict[str, SettingDefault]
    bp_gate: tuple[GateBandDef, ...]
    alerts: tuple[AlertRuleDef, ...] = Field(min_length=1)
    plausibility: Plausibility
    discharge: tuple[DischargeCriterionDef, ...]
    vital_sign_codes: VitalSignCodes

    def value(self, name: str) -> float:
        return self.settings[name].value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        known = set(self.settings)
        bands = [b.band for b in self.bp_gate]
        if bands != ["refuse", "hold", "caution", "proceed"]:
            raise ValueError(f"bp_gate bands must be refuse, hold, caution, proceed; got {bands}")
        for band in self.bp_gate:
            for name in (band.systolic_setting, band.diastolic_setting):
                if band.band == "proceed":
                    if name is not None:
                        raise ValueError("the proceed band takes no thresholds")
                elif name not in known:
                    raise ValueError(f"bp_gate {band.band}: unknown setting {name}")
            _check_placeholders(
                f"bp_gate {band.band}", band.text, known | {"systolic", "diastolic"}
            )
        for axis in ("systolic", "diastolic"):
            limits = [self.value(f"bp_{b}_{axis}") for b in ("caution", "hold", "refuse")]
            if not limits[0] < limits[1] < limits[2]:
                raise ValueError(f"{axis} gate thresholds must rise: caution < hold < refuse")
        codes = [a.code for a in self.alerts]
        if len(set(codes)) != len(codes):
            raise ValueError("alert codes must be unique")
        for alert in self.alerts:
            if alert.setting not in known:
                raise ValueError(f"alert {alert.code}: unknown setting {alert.setting}")
            if alert.kind == "rise" and alert.comparison != "at_least":
                raise ValueError(f"alert {alert.code}: a rise is compared with at_least")
            if alert.field == "mean_arterial_pressure" and alert.kind == "rise":
                raise ValueError(f"alert {alert.code}: the mean arterial pressure has no rise rule")
            _check_placeholders(
                f"alert {alert.code}",
                alert.text,
                {"value", "threshold", "baseline", "rise", "systolic", "diastolic"} | known,
            )
        require_ordered_alert_thresholds(self.value)
        if not 0 <= self.value("cbt_window_start_hours") < self.value("cbt_window_end_hours"):
            raise ValueError("the CBT window must start before it ends")
        ids = tuple(c.id for c in self.discharge)
        if ids != DISCHARGE_CRITERIA:
            raise ValueError(f"discharge criteria must be, in order: {DISCHARGE_CRITERIA}")
        missing = {"systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate"} - set(
            self.plausibility.ranges
        )
        if missing or {"weight_kg", "height_cm"} - set(self.plausibility.ranges):
            raise ValueError("plausibility ranges must cover every vital sign, weight and height")
        keys = [c.key for c in self.vital_sign_codes.codes]
        if len(set(keys)) != len(keys):
            raise ValueError("vital sign code keys must be unique")
        return self

    def all_source_ids(self) -> set[str]:
        ids: set[str] = set(self.plausibility.sources) | set(self.vital_sign_codes.sources)
        for group in (self.settings.values(), self.bp_gate, self.alerts, self.discharge):
            for entry in group:
                ids |= set(entry.sources)
        return ids


def require_ordered_alert_thresholds(value: Any) -> None:
    """Alert thresholds that contradict each other are refused, naming the settings:
    ``value(name)`` gives a setting's value (the file's defaults or a clinic's values)."""
    checks = (
        (
            "alert_spo2_critical_below",
            "alert_spo2_warning_below",
            "the SpO2 critical threshold must be below the warning threshold",
        ),
        (
            "alert_systolic_critical_below",
            "alert_systolic_warning_below",
            "the critical low systolic threshold must be below the warning one",
        ),
        (
            "alert_systolic_warning_below",
            "alert_systolic_at_least",
            "the low systolic alert threshold must be below the high one",
        ),
        (
            "alert_heart_rate_critical_below",
            "alert_heart_rate_below",
            "the critical low heart-rate threshold must be below the warning one",
        ),
        (
            "alert_heart_rate_below",
            "alert_heart_rate_above",
            "the low heart-rate threshold must be below the high one",
        ),
        (
            "alert_heart_rate_above",
            "alert_heart_rate_critical_above",
            "the critical high heart-rate threshold must be above the warning one",
        ),
    )
    for low, high, message in checks:
        if not value(low) < value(high):
            raise ValueError(f"{message} ({low} {value(low):g}, {high} {value(high):g})")


# --- loading ---------------------------------------------------------------------------------


def _cited_sources(model: BaseModel) -> set[str]:
    """Every source id anywhere inside a model (Cited values, notes, phases)."""
    ids: set[str] = set()
    for name in type(model).model_fields:
        value: Any = getattr(model, name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, BaseModel):
                ids |= _cited_sources(item)
        if name == "sources" and isinstance(value, tuple):
            ids |= set(value)
    return ids


def _check_placeholders(where: str, text: str, allowed: set[str]) -> None:
    names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
    unknown = sorted(names - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown placeholders {unknown}")


def _check_sources(where: str, ids: set[str], known: set[str]) -> None:
    missing = sorted(ids - known)
    if missing:
        raise ValueError(f"{where}: sources not in references.yaml: {missing}")


@cache
def load_protocols_file() -> ProtocolsDef:
    """protocols.yaml, validated (cached for the process)."""
    data = ProtocolsDef.model_validate(load_yaml("protocols.yaml"))
    known = reference_ids()
    _check_sources("protocols.yaml order_settings", _cited_sources(data.order_settings), known)
    for protocol in data.protocols:
        _check_sources(f"protocol {protocol.id}", protocol.all_source_ids(), known)
    return data


def load_protocols() -> dict[str, ProtocolDef]:
    """Every protocol, by id, in file order."""
    return {p.id: p for p in load_protocols_file().protocols}


def protocol_ids() -> tuple[str, ...]:
    return tuple(load_protocols())


def get_protocol(protocol_id: str) -> ProtocolDef:
    """One protocol; ``KeyError`` for an unknown id."""
    return load_protocols()[protocol_id]


@cache
def load_monitoring() -> MonitoringDef:
    """monitoring.yaml, validated (cached for the process)."""
    data = MonitoringDef.model_validate(load_yaml("monitoring.yaml"))
    _check_sources("monitoring.yaml", data.all_source_ids(), reference_ids())
    return data
