"""Dose orders: weight-based ketamine (dose, volume, pump rate) and flat-dose esketamine.

Pure: limits and texts come from ``knowledge/protocols.yaml`` and ``knowledge/monitoring.yaml``;
dates are arguments (no clock). Arithmetic is decimal with ROUND_HALF_UP, so 5.25 mL/h becomes
5.3 mL/h exactly as a clinician would round it by hand.

An order is either given with its numbers, or refused: a refusal (hard stop) blanks the dose,
volume and rate so that nothing on a refused order can be given. Warnings mark values that are
allowed but unusual. Every warning and refusal names its field and sources, and every order
carries the settings and knowledge version in force.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketacare.knowledge import knowledge_version
from ketacare.knowledge.protocol_defs import (
    FlatDosing,
    ProtocolDef,
    WeightDosing,
    load_monitoring,
    load_protocols,
    load_protocols_file,
)

__all__ = [
    "DEFAULT_PROTOCOL",
    "REFUSAL_CODES",
    "DoseIssue",
    "DosingInputError",
    "DosingSettings",
    "EsketamineOrder",
    "Order",
    "bmi",
    "calculate_order",
    "esketamine_order",
    "ideal_body_weight_kg",
]

DEFAULT_PROTOCOL = "iv-ketamine"
# Every hard stop an order can carry. The calculator refuses only with one of these codes, and
# the safety case reads them from here, so a new hard stop is named by a hazard or a test fails.
RefusalCode = Literal[
    # input the calculator cannot use
    "not_a_number",
    "not_positive",
    "protocol_not_plannable",
    "protocol_flat_dose",
    # weight and height
    "weight_unknown",
    "weight_implausible",
    "weight_date_in_future",
    "weight_stale",
    "height_implausible",
    "height_missing",
    "sex_missing",
    # weight-based dose, time and volume
    "mg_per_kg_missing",
    "mg_per_kg_below_min",
    "mg_per_kg_above_max",
    "escalation_too_large",
    "dose_above_cap",
    "minutes_missing",
    "minutes_below_min",
    "minutes_above_max",
    "volume_basis",
    "bag_not_applicable",
    "concentration_missing",
    "concentration_too_high",
    # flat-dose esketamine
    "not_for_children",
    "dose_missing",
    "not_whole_devices",
    "above_label_max",
    "dose_not_in_label",
    "first_dose",
]
REFUSAL_CODES: tuple[RefusalCode, ...] = get_args(RefusalCode)
WeightPolicy = Literal["actual", "ideal", "adjusted"]
Sex = Literal["female", "male"]
Number = int | float | Decimal

_CONVENTION = ("ketacare-clinic-convention",)
# Devine: 2.3 kg per inch over 60 inches (see devine-1974).
_CM_PER_INCH = Decimal("2.54")
_DEVINE_BASE_KG = {"male": Decimal("50"), "female": Decimal("45.5")}
_DEVINE_KG_PER_INCH = Decimal("2.3")
_DEVINE_FROM_INCHES = Decimal("60")


class DosingInputError(ValueError):
    """Arguments the calculator cannot work with at all; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class DoseIssue:
    """A warning (allowed but unusual) or a refusal (hard stop) on an order."""

    code: str
    field: str
    text: str
    sources: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "field": self.field,
            "text": self.text,
            "sources": list(self.sources),
        }


class DosingSettings(BaseModel):
    """The clinic's dosing values for one weight-based protocol; returned with every order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: str
    weight_freshness_days: int = Field(ge=1, le=365)
    standard_mg_per_kg: float = Field(gt=0)
    min_mg_per_kg: float = Field(gt=0)
    max_mg_per_kg: float = Field(gt=0)
    escalation_step_mg_per_kg: float = Field(gt=0)
    absolute_cap_mg: float = Field(gt=0)
    min_minutes: int | None = Field(None, gt=0)
    max_minutes: int | None = Field(None, gt=0)
    max_concentration_mg_per_ml: float = Field(gt=0)
    usual_max_bag_concentration_mg_per_ml: float | None = Field(None, gt=0)
    dosing_weight_policy: WeightPolicy
    obesity_bmi_threshold: float = Field(ge=18, le=60)
    adjusted_weight_fraction: float = Field(ge=0, le=1)
    dose_step_mg: float = Field(gt=0, le=10)
    volume_step_ml: float = Field(gt=0, le=10)
    pump_rate_step_ml_per_h: float = Field(gt=0, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.min_mg_per_kg <= self.standard_mg_per_kg <= self.max_mg_per_kg:
            raise ValueError("mg/kg must satisfy min <= standard <= max")
        if (self.min_minutes is None) != (self.max_minutes is None):
            raise ValueError("give both min_minutes and max_minutes, or neither")
        if (
            self.min_minutes is not None
            and self.max_minutes is not None
            and self.min_minutes > self.max_minutes
        ):
            raise ValueError("min_minutes must not exceed max_minutes")
        return self

    @classmethod
    def defaults(cls, protocol_id: str = DEFAULT_PROTOCOL) -> DosingSettings:
        """The cited defaults of a weight-based protocol (see protocols.yaml)."""
        return _default_settings(protocol_id)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


@cache
def _default_settings(protocol_id: str) -> DosingSettings:
    protocol = _protocol(protocol_id)
    dosing = protocol.dosing
    if not isinstance(dosing, WeightDosing):
        raise DosingInputError("protocol", f"{protocol_id} is not dosed by weight")
    common = load_protocols_file().order_settings
    timing = protocol.timing
    bag = dosing.usual_max_bag_concentration_mg_per_ml
    return DosingSettings(
        protocol=protocol_id,
        weight_freshness_days=int(load_monitoring().value("weight_freshness_days")),
        standard_mg_per_kg=dosing.standard_mg_per_kg.value,
        min_mg_per_kg=dosing.min_mg_per_kg.value,
        max_mg_per_kg=dosing.max_mg_per_kg.value,
        escalation_step_mg_per_kg=dosing.escalation_step_mg_per_kg.value,
        absolute_cap_mg=dosing.absolute_cap_mg.value,
        # Only an infusion has a dosing time to check; an injection's time is a schedule reserve.
        min_minutes=timing.min_minutes.value if timing and protocol.is_infusion else None,
        max_minutes=timing.max_minutes.value if timing and protocol.is_infusion else None,
        max_concentration_mg_per_ml=dosing.max_concentration_mg_per_ml.value,
        usual_max_bag_concentration_mg_per_ml=bag.value if bag else None,
        dosing_weight_policy=common.policy.value,
        obesity_bmi_threshold=common.bmi_threshold.value,
        adjusted_weight_fraction=common.adjusted_fraction.value,
        dose_step_mg=common.dose_step_mg.value,
        volume_step_ml=common.volume_step_ml.value,
        pump_rate_step_ml_per_h=common.pump_rate_step_ml_per_h.value,
    )


@dataclass(frozen=True)
class Order:
    """A weight-based order. When refused, dose, volume and rates are None."""

    protocol: str
    dose_mg: Decimal | None
    volume_ml: Decimal | None
    concentration_mg_per_ml: Decimal | None
    rate_ml_per_h: Decimal | None
    rate_mg_per_h: Decimal | None
    mg_per_kg: Decimal | None
    minutes: int | Decimal | None
    weight_kg: Decimal | None
    dosing_weight_kg: Decimal | None
    dosing_weight_basis: WeightPolicy | None
    bmi: Decimal | None
    observation_minutes: int | None
    steps: tuple[str, ...]
    warnings: tuple[DoseIssue, ...]
    refusals: tuple[DoseIssue, ...]
    settings: Mapping[str, Any]
    knowledge_version: str

    @property
    def refused(self) -> bool:
        return bool(self.refusals)

    @property
    def status(self) -> str:
        return "refused" if self.refusals else "ordered"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "status": self.status,
            "dose_mg": _json_number(self.dose_mg),
            "volume_ml": _json_number(self.volume_ml),
            "concentration_mg_per_ml": _json_number(self.concentration_mg_per_ml),
            "rate_ml_per_h": _json_number(self.rate_ml_per_h),
            "rate_mg_per_h": _json_number(self.rate_mg_per_h),
            "mg_per_kg": _json_number(self.mg_per_kg),
            "minutes": _json_number(self.minutes),
            "weight_kg": _json_number(self.weight_kg),
            "dosing_weight_kg": _json_number(self.dosing_weight_kg),
            "dosing_weight_basis": self.dosing_weight_basis,
            "bmi": _json_number(self.bmi),
            "observation_minutes": self.observation_minutes,
            "steps": list(self.steps),
            "warnings": [w.to_json_dict() for w in self.warnings],
            "refusals": [r.to_json_dict() for r in self.refusals],
            "settings": dict(self.settings),
            "knowledge_version": self.knowledge_version,
        }


@dataclass(frozen=True)
class EsketamineOrder:
    """A flat-dose esketamine order in whole 28 mg devices."""

    protocol: str
    session_number: int
    dose_mg: int | None
    devices: int | None
    sprays: int | None
    rest_between_devices_minutes: int
    dosing_minutes: int | None
    observation_minutes: int
    steps: tuple[str, ...]
    warnings: tuple[DoseIssue, ...]
    refusals: tuple[DoseIssue, ...]
    settings: Mapping[str, Any]
    knowledge_version: str

    @property
    def refused(self) -> bool:
        return bool(self.refusals)

    @property
    def status(self) -> str:
        return "refused" if self.refusals else "ordered"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "status": self.status,
            "session_number": self.session_number,
            "dose_mg": self.dose_mg,
            "devices": self.devices,
            "sprays": self.sprays,
            "rest_between_devices_minutes": self.rest_between_devices_minutes,
            "dosing_minutes": self.dosing_minutes,
            "observation_minutes": self.observation_minutes,
            "steps": list(self.steps),
            "warnings": [w.to_json_dict() for w in self.warnings],
            "refusals": [r.to_json_dict() for r in self.refusals],
            "settings": dict(self.settings),
            "knowledge_version": self.knowledge_version,
        }


# --- helpers ---------------------------------------------------------------------------------


def _json_number(value: Decimal | int | None) -> float | int | None:
    if value is None or isinstance(value, int):
        return value
    return float(value)


def _fmt(value: Decimal | int | float) -> str:
    """Plain decimal text without trailing zeros: 35.0 -> "35", 0.350 -> "0.35"."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return format(number.normalize(), "f")


def _round(value: Decimal, step: float) -> Decimal:
    """Round half up to a multiple of ``step`` (0.1 -> 5.25 becomes 5.3)."""
    quantum = Decimal(str(step))
    return (value / quantum).quantize(Decimal(1), rounding=ROUND_HALF_UP) * quantum


def _protocol(protocol_id: str) -> ProtocolDef:
    protocols = load_protocols()
    if protocol_id not in protocols:
        raise DosingInputError(
            "protocol", f"unknown protocol {protocol_id!r}; known: {', '.join(protocols)}"
        )
    return protocols[protocol_id]


class _Issues:
    def __init__(self) -> None:
        self.warnings: list[DoseIssue] = []
        self.refusals: list[DoseIssue] = []
        self.steps: list[str] = []

    def refuse(self, code: RefusalCode, field: str, text: str, sources: tuple[str, ...]) -> None:
        self.refusals.append(DoseIssue(code, field, text, sources))

    def warn(self, code: str, field: str, text: str, sources: tuple[str, ...]) -> None:
        self.warnings.append(DoseIssue(code, field, text, sources))

    def refused(self, field: str) -> bool:
        return any(r.field == field for r in self.refusals)


_LABELS = {
    "weight_kg": "Weight (kg)",
    "height_cm": "Height (cm)",
    "mg_per_kg": "Dose (mg/kg)",
    "previous_mg_per_kg": "Previous dose (mg/kg)",
    "minutes": "Infusion time (min)",
    "concentration_mg_per_ml": "Concentration (mg/mL)",
    "bag_volume_ml": "Bag volume (mL)",
}


def _number(value: object, name: str, issues: _Issues) -> Decimal | None:
    """A finite, positive decimal, or None after recording why it cannot be used."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise DosingInputError(name, f"expected a number, got {value!r}")
    label = _LABELS.get(name, name)
    number = None if isinstance(value, float) and not math.isfinite(value) else value
    if number is not None and not isinstance(number, Decimal):
        number = Decimal(str(number))
    if number is None or not number.is_finite():
        issues.refuse("not_a_number", name, f"{label} is {value}: enter a number.", _CONVENTION)
        return None
    if number <= 0:
        issues.refuse(
            "not_positive",
            name,
            f"{label} must be greater than zero (got {_fmt(number)}).",
            _CONVENTION,
        )
        return None
    return number


def bmi(weight_kg: Decimal, height_cm: Decimal) -> Decimal:
    """Body-mass index, kg/m2, to one decimal."""
    metres = height_cm / 100
    return (weight_kg / (metres * metres)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def ideal_body_weight_kg(height_cm: Decimal, sex: Sex) -> Decimal:
    """Devine ideal weight (devine-1974): men 50 kg, women 45.5 kg, + 2.3 kg per inch over 5 ft."""
    inches = height_cm / _CM_PER_INCH
    ibw = _DEVINE_BASE_KG[sex] + _DEVINE_KG_PER_INCH * (inches - _DEVINE_FROM_INCHES)
    return ibw.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


# --- weight-based orders ---------------------------------------------------------------------


def calculate_order(
    protocol_id: str,
    weight_kg: Number | None,
    mg_per_kg: Number | None,
    minutes: Number | None,
    *,
    concentration_mg_per_ml: Number | None = None,
    bag_volume_ml: Number | None = None,
    weight_measured_on: date | None = None,
    today: date | None = None,
    previous_mg_per_kg: Number | None = None,
    height_cm: Number | None = None,
    sex: Sex | None = None,
    settings: DosingSettings | None = None,
) -> Order:
    """Calculate a weight-based order, or refuse it with every reason.

    ``concentration_mg_per_ml``: the dose is drawn from a solution of this strength (volume =
    dose / concentration). ``bag_volume_ml``: the dose is diluted into a bag of this volume and
    the whole bag is infused. Exactly one of the two applies to an infusion; an IM injection
    takes a concentration only and no minutes.
    """
    protocol = _protocol(protocol_id)
    issues = _Issues()
    observation = protocol.monitoring.observation_minutes.value if protocol.monitoring else None
    if not protocol.plannable:
        issues.refuse(
            "protocol_not_plannable",
            "protocol",
            f"{protocol.name}: {' '.join((protocol.not_plannable_reason or '').split())}",
            protocol.not_plannable_sources,
        )
        return _refused_early(protocol_id, issues)
    if not isinstance(protocol.dosing, WeightDosing):
        issues.refuse(
            "protocol_flat_dose",
            "protocol",
            f"{protocol.name} is given in flat doses, not mg/kg: use the esketamine order "
            "(28 mg devices).",
            protocol.dosing.device_mg.sources if isinstance(protocol.dosing, FlatDosing) else (),
        )
        return _refused_early(protocol_id, issues)
    settings = settings or DosingSettings.defaults(protocol_id)
    if settings.protocol != protocol_id:
        raise DosingInputError(
            "settings", f"settings are for {settings.protocol}, the order is for {protocol_id}"
        )
    dosing = protocol.dosing

    weight = _check_weight(weight_kg, weight_measured_on, today, settings, issues)
    height = _check_height(height_cm, issues)
    dose_per_kg = _check_mg_per_kg(mg_per_kg, previous_mg_per_kg, settings, dosing, issues)
    infusion_minutes = _check_minutes(minutes, protocol, settings, issues)
    concentration, bag = _check_volume_basis(
        concentration_mg_per_ml, bag_volume_ml, protocol, settings, dosing, issues
    )

    dosing_weight, basis, body_mass_index = _dosing_weight(weight, height, sex, settings, issues)
    if weight is not None:
        line = f"Weight {_fmt(weight)} kg"
        if weight_measured_on is not None:
            line += f", measured {weight_measured_on.isoformat()}"
        if body_mass_index is not None:
            line += f"; BMI {_fmt(body_mass_index)}"
        issues.steps.append(line)
    if dosing_weight is not None and weight is not None and dosing_weight != weight:
        issues.steps.append(f"Dosing weight {_fmt(dosing_weight)} kg ({basis} body weight)")

    dose = volume = final_concentration = rate = rate_mg = None
    if dosing_weight is not None and dose_per_kg is not None:
        exact = dosing_weight * dose_per_kg
        dose = _round(exact, settings.dose_step_mg)
        issues.steps.append(
            f"Dose = {_fmt(dosing_weight)} kg × {_fmt(dose_per_kg)} mg/kg = {_fmt(dose)} mg"
        )
        cap = Decimal(str(settings.absolute_cap_mg))
        if dose > cap:
            issues.refuse(
                "dose_above_cap",
                "mg_per_kg",
                f"Dose {_fmt(dose)} mg is above the absolute cap of {_fmt(cap)} mg per "
                f"{protocol.session_noun}.",
                dosing.absolute_cap_mg.sources,
            )
        if concentration is not None:
            volume = _round(dose / concentration, settings.volume_step_ml)
            final_concentration = concentration
            issues.steps.append(
                f"Volume = {_fmt(dose)} mg ÷ {_fmt(concentration)} mg/mL = {_fmt(volume)} mL"
            )
        elif bag is not None:
            volume = bag
            final_concentration = (dose / bag).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
            issues.steps.append(
                f"Concentration = {_fmt(dose)} mg ÷ {_fmt(bag)} mL = "
                f"{_fmt(final_concentration)} mg/mL"
            )
            _check_bag_concentration(dose / bag, settings, dosing, issues)
        if volume is not None and infusion_minutes is not None:
            exact_rate = volume * 60 / infusion_minutes
            rate = _round(exact_rate, settings.pump_rate_step_ml_per_h)
            line = f"Pump rate = {_fmt(volume)} mL × 60 ÷ {_fmt(infusion_minutes)} min = "
            if rate == exact_rate:
                line += f"{rate} mL/h"
            else:
                shown = exact_rate.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
                step = _fmt(settings.pump_rate_step_ml_per_h)
                line += f"{_fmt(shown)} mL/h → {rate} mL/h (pump precision {step} mL/h, half up)"
            issues.steps.append(line)
            rate_mg = (dose * 60 / infusion_minutes).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
            per_kg_h = (dose_per_kg * 60 / infusion_minutes).quantize(
                Decimal("0.001"), rounding=ROUND_HALF_UP
            )
            issues.steps.append(
                f"Delivery = {_fmt(rate_mg)} mg/h ({_fmt(per_kg_h)} mg/kg/h) over "
                f"{_fmt(infusion_minutes)} min"
            )
    if observation is not None and not issues.refusals:
        issues.steps.append(
            f"Observe at least {observation} min after the {protocol.session_noun} ends, "
            "until the discharge criteria are met"
        )

    refused = bool(issues.refusals)
    minutes_out: int | Decimal | None = None
    if infusion_minutes is not None:
        minutes_out = (
            int(infusion_minutes)
            if infusion_minutes == infusion_minutes.to_integral_value()
            else infusion_minutes
        )
    return Order(
        protocol=protocol_id,
        dose_mg=None if refused else dose,
        volume_ml=None if refused else volume,
        concentration_mg_per_ml=None if refused else final_concentration,
        rate_ml_per_h=None if refused else rate,
        rate_mg_per_h=None if refused else rate_mg,
        mg_per_kg=dose_per_kg,
        minutes=minutes_out,
        weight_kg=weight,
        dosing_weight_kg=dosing_weight,
        dosing_weight_basis=basis,
        bmi=body_mass_index,
        observation_minutes=observation,
        steps=tuple(issues.steps),
        warnings=tuple(issues.warnings),
        refusals=tuple(issues.refusals),
        settings=settings.as_dict(),
        knowledge_version=knowledge_version(),
    )


def _refused_early(protocol_id: str, issues: _Issues) -> Order:
    return Order(
        protocol=protocol_id,
        dose_mg=None,
        volume_ml=None,
        concentration_mg_per_ml=None,
        rate_ml_per_h=None,
        rate_mg_per_h=None,
        mg_per_kg=None,
        minutes=None,
        weight_kg=None,
        dosing_weight_kg=None,
        dosing_weight_basis=None,
        bmi=None,
        observation_minutes=None,
        steps=(),
        warnings=(),
        refusals=tuple(issues.refusals),
        settings={"protocol": protocol_id},
        knowledge_version=knowledge_version(),
    )


def _check_weight(
    weight_kg: object,
    measured_on: date | None,
    today: date | None,
    settings: DosingSettings,
    issues: _Issues,
) -> Decimal | None:
    if weight_kg is None:
        issues.refuse(
            "weight_unknown",
            "weight_kg",
            "Unknown weight: weigh the patient. A dose is never calculated from an assumed weight.",
            _CONVENTION,
        )
        return None
    weight = _number(weight_kg, "weight_kg", issues)
    if weight is None:
        return None
    limits = load_monitoring().plausibility
    low, high = (
        Decimal(str(v)) for v in (limits.ranges["weight_kg"].min, limits.ranges["weight_kg"].max)
    )
    if not low <= weight <= high:
        issues.refuse(
            "weight_implausible",
            "weight_kg",
            f"Weight {_fmt(weight)} kg is outside the plausible range {_fmt(low)}-{_fmt(high)} kg: "
            "check the entry (kg, not lb).",
            limits.sources,
        )
        return None
    freshness_sources = load_monitoring().settings["weight_freshness_days"].sources
    if measured_on is None:
        issues.warn(
            "weight_date_unknown",
            "weight_measured_on",
            f"The date of the weight was not given: confirm it was measured within the last "
            f"{settings.weight_freshness_days} days.",
            freshness_sources,
        )
        return weight
    if today is None:
        raise DosingInputError("today", "needed to check how old the weight is")
    age_days = (today - measured_on).days
    if age_days < 0:
        issues.refuse(
            "weight_date_in_future",
            "weight_measured_on",
            f"The weight is dated {measured_on.isoformat()}, after today ({today.isoformat()}): "
            "check the date.",
            _CONVENTION,
        )
        return None
    if age_days > settings.weight_freshness_days:
        issues.refuse(
            "weight_stale",
            "weight_measured_on",
            f"The weight was measured {age_days} days ago ({measured_on.isoformat()}), more than "
            f"{settings.weight_freshness_days} days: weigh the patient again.",
            freshness_sources,
        )
        return None
    return weight


def _check_height(height_cm: object, issues: _Issues) -> Decimal | None:
    height = _number(height_cm, "height_cm", issues)
    if height is None:
        return None
    limits = load_monitoring().plausibility
    low, high = (
        Decimal(str(v)) for v in (limits.ranges["height_cm"].min, limits.ranges["height_cm"].max)
    )
    if not low <= height <= high:
        issues.refuse(
            "height_implausible",
            "height_cm",
            f"Height {_fmt(height)} cm is outside the plausible range {_fmt(low)}-{_fmt(high)} cm: "
            "check the entry.",
            limits.sources,
        )
        return None
    return height


def _check_mg_per_kg(
    mg_per_kg: object,
    previous: object,
    settings: DosingSettings,
    dosing: WeightDosing,
    issues: _Issues,
) -> Decimal | None:
    if mg_per_kg is None:
        issues.refuse("mg_per_kg_missing", "mg_per_kg", "No dose in mg/kg was given.", _CONVENTION)
        return None
    dose = _number(mg_per_kg, "mg_per_kg", issues)
    if dose is None:
        return None
    low, std, high = (
        Decimal(str(v))
        for v in (settings.min_mg_per_kg, settings.standard_mg_per_kg, settings.max_mg_per_kg)
    )
    if dose < low:
        issues.refuse(
            "mg_per_kg_below_min",
            "mg_per_kg",
            f"{_fmt(dose)} mg/kg is below this protocol's minimum of {_fmt(low)} mg/kg.",
            dosing.min_mg_per_kg.sources,
        )
    elif dose > high:
        issues.refuse(
            "mg_per_kg_above_max",
            "mg_per_kg",
            f"{_fmt(dose)} mg/kg is above this protocol's maximum of {_fmt(high)} mg/kg.",
            dosing.max_mg_per_kg.sources,
        )
    elif dose > std:
        issues.warn(
            "mg_per_kg_above_standard",
            "mg_per_kg",
            f"{_fmt(dose)} mg/kg is above the standard {_fmt(std)} mg/kg used in most of the "
            "literature: confirm the escalation is intended.",
            dosing.standard_mg_per_kg.sources,
        )
    step = Decimal(str(settings.escalation_step_mg_per_kg))
    before = _number(previous, "previous_mg_per_kg", issues)
    if before is not None:
        rise = dose - before
        if rise > step:
            issues.refuse(
                "escalation_too_large",
                "mg_per_kg",
                f"{_fmt(dose)} mg/kg is {_fmt(rise)} mg/kg above the previous "
                f"{_fmt(before)} mg/kg; escalate by at most {_fmt(step)} mg/kg per session.",
                dosing.escalation_step_mg_per_kg.sources,
            )
    elif previous is None and dose > std:
        issues.warn(
            "escalation_unchecked",
            "previous_mg_per_kg",
            f"No previous dose was given, so the escalation limit ({_fmt(step)} mg/kg per session) "
            "could not be checked.",
            dosing.escalation_step_mg_per_kg.sources,
        )
    return dose


def _check_minutes(
    minutes: object, protocol: ProtocolDef, settings: DosingSettings, issues: _Issues
) -> Decimal | None:
    if not protocol.is_infusion:
        if minutes is not None:
            issues.warn(
                "minutes_not_applicable",
                "minutes",
                f"{protocol.name} is a single injection: the infusion time was ignored.",
                protocol.sources,
            )
        return None
    if minutes is None:
        issues.refuse("minutes_missing", "minutes", "No infusion time was given.", _CONVENTION)
        return None
    value = _number(minutes, "minutes", issues)
    if value is None:
        return None
    timing = protocol.timing
    assert timing is not None and settings.min_minutes is not None
    assert settings.max_minutes is not None
    if value < settings.min_minutes:
        issues.refuse(
            "minutes_below_min",
            "minutes",
            f"An infusion over {_fmt(value)} min is faster than this protocol's minimum of "
            f"{settings.min_minutes} min; rapid administration can cause respiratory depression.",
            timing.min_minutes.sources,
        )
    elif value > settings.max_minutes:
        issues.refuse(
            "minutes_above_max",
            "minutes",
            f"An infusion over {_fmt(value)} min is longer than this protocol's maximum of "
            f"{settings.max_minutes} min.",
            timing.max_minutes.sources,
        )
    return value


def _check_volume_basis(
    concentration_mg_per_ml: object,
    bag_volume_ml: object,
    protocol: ProtocolDef,
    settings: DosingSettings,
    dosing: WeightDosing,
    issues: _Issues,
) -> tuple[Decimal | None, Decimal | None]:
    if not protocol.is_infusion:
        if bag_volume_ml is not None:
            issues.refuse(
                "bag_not_applicable",
                "bag_volume_ml",
                f"{protocol.name} is drawn up from the vial: give the vial concentration, not a "
                "bag volume.",
                dosing.max_concentration_mg_per_ml.sources,
            )
        if concentration_mg_per_ml is None:
            issues.refuse(
                "concentration_missing",
                "concentration_mg_per_ml",
                "Give the concentration of the vial (mg/mL) to calculate the volume to draw up.",
                dosing.max_concentration_mg_per_ml.sources,
            )
    elif (concentration_mg_per_ml is None) == (bag_volume_ml is None):
        given = "both were given" if concentration_mg_per_ml is not None else "neither was given"
        issues.refuse(
            "volume_basis",
            "concentration_mg_per_ml|bag_volume_ml",
            f"Give exactly one of the concentration (mg/mL) or the bag volume (mL); {given}.",
            _CONVENTION,
        )
        return None, None
    concentration = _number(concentration_mg_per_ml, "concentration_mg_per_ml", issues)
    bag = _number(bag_volume_ml, "bag_volume_ml", issues)
    if concentration is not None:
        top = Decimal(str(settings.max_concentration_mg_per_ml))
        if concentration > top:
            issues.refuse(
                "concentration_too_high",
                "concentration_mg_per_ml",
                f"{_fmt(concentration)} mg/mL is above {_fmt(top)} mg/mL for this route: "
                "the 100 mg/mL strength must be diluted before IV use.",
                dosing.max_concentration_mg_per_ml.sources,
            )
            concentration = None
    if not protocol.is_infusion:
        bag = None
    return concentration, bag


def _check_bag_concentration(
    concentration: Decimal, settings: DosingSettings, dosing: WeightDosing, issues: _Issues
) -> None:
    top = Decimal(str(settings.max_concentration_mg_per_ml))
    shown = concentration.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    if concentration > top:
        issues.refuse(
            "concentration_too_high",
            "bag_volume_ml",
            f"The bag would hold {_fmt(shown)} mg/mL, above {_fmt(top)} mg/mL: use a larger "
            "volume.",
            dosing.max_concentration_mg_per_ml.sources,
        )
        return
    usual = settings.usual_max_bag_concentration_mg_per_ml
    bag_def = dosing.usual_max_bag_concentration_mg_per_ml
    if usual is not None and bag_def is not None and concentration > Decimal(str(usual)):
        issues.warn(
            "bag_concentration_unusual",
            "bag_volume_ml",
            f"The bag would hold {_fmt(shown)} mg/mL; infusions are usually prepared at 1 mg/mL "
            f"(up to {_fmt(Decimal(str(usual)))} mg/mL if fluid-restricted).",
            bag_def.sources,
        )


def _dosing_weight(
    weight: Decimal | None,
    height: Decimal | None,
    sex: Sex | None,
    settings: DosingSettings,
    issues: _Issues,
) -> tuple[Decimal | None, WeightPolicy | None, Decimal | None]:
    """The weight the dose is calculated on, which kind it is, and the BMI when known."""
    if weight is None:
        return None, None, None
    common = load_protocols_file().order_settings
    body_mass_index = bmi(weight, height) if height is not None else None
    threshold = Decimal(str(settings.obesity_bmi_threshold))
    policy = settings.dosing_weight_policy
    if policy == "actual":
        if body_mass_index is not None and body_mass_index >= threshold:
            issues.warn(
                "obesity_actual_weight",
                "weight_kg",
                f"BMI {_fmt(body_mass_index)} is {_fmt(threshold)} or more and the dose uses "
                "actual body weight (clinic policy); the best dosing weight in obesity is "
                "unresolved.",
                common.policy.sources,
            )
        return weight, "actual", body_mass_index
    if issues.refused("height_cm"):
        return None, None, None
    if body_mass_index is None:
        issues.refuse(
            "height_missing",
            "height_cm",
            f"The clinic doses on {policy} body weight at BMI {_fmt(threshold)} or more: record "
            "the height so the BMI can be calculated.",
            common.policy.sources,
        )
        return None, None, None
    if body_mass_index < threshold:
        return weight, "actual", body_mass_index
    if sex not in ("female", "male"):
        issues.refuse(
            "sex_missing",
            "sex",
            f"The {policy} body weight (Devine formula) needs the sex recorded as female or male.",
            common.ideal_weight_formula.sources,
        )
        return None, None, body_mass_index
    assert height is not None
    ideal = min(ideal_body_weight_kg(height, sex), weight)
    if height < _DEVINE_FROM_INCHES * _CM_PER_INCH:
        issues.warn(
            "ideal_weight_short_stature",
            "height_cm",
            "The Devine formula is defined from 152.4 cm (5 ft); below that it underestimates "
            "ideal weight. Review the dosing weight.",
            common.ideal_weight_formula.sources,
        )
    if policy == "ideal":
        return ideal, "ideal", body_mass_index
    fraction = Decimal(str(settings.adjusted_weight_fraction))
    adjusted = (ideal + fraction * (weight - ideal)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    return adjusted, "adjusted", body_mass_index


# --- esketamine --------------------------------------------------------------------------------


def esketamine_order(
    dose_mg: int | None,
    session_number: int,
    *,
    age_years: int | None = None,
    protocol_id: str = "intranasal-esketamine",
) -> EsketamineOrder:
    """Validate a flat esketamine dose: whole 28 mg devices, label doses, day-1 dose.

    ``session_number`` 1 is the first dose of the course (the label's day 1).
    """
    protocol = _protocol(protocol_id)
    dosing = protocol.dosing
    if not isinstance(dosing, FlatDosing) or protocol.monitoring is None:
        raise DosingInputError("protocol", f"{protocol_id} is not a flat-dose protocol")
    if isinstance(session_number, bool) or not isinstance(session_number, int):
        raise DosingInputError("session_number", f"expected a whole number, got {session_number!r}")
    if dose_mg is not None and (isinstance(dose_mg, bool) or not isinstance(dose_mg, int)):
        raise DosingInputError("dose_mg", f"expected whole milligrams, got {dose_mg!r}")
    if age_years is not None and (isinstance(age_years, bool) or not isinstance(age_years, int)):
        raise DosingInputError("age_years", f"expected whole years, got {age_years!r}")
    issues = _Issues()
    unit = dosing.device_mg.value
    rest = dosing.rest_between_devices_minutes.value
    observation = protocol.monitoring.observation_minutes.value
    older = age_years is not None and age_years >= dosing.older_adult_min_age.value
    allowed = dosing.older_adult_doses_mg.value if older else dosing.doses_mg.value
    first = dosing.older_adult_first_dose_mg.value if older else dosing.first_dose_mg.value
    label = dosing.doses_mg.sources
    settings = {
        "protocol": protocol_id,
        "device_mg": unit,
        "sprays_per_device": dosing.sprays_per_device.value,
        "rest_between_devices_minutes": rest,
        "doses_mg": list(dosing.doses_mg.value),
        "first_dose_mg": dosing.first_dose_mg.value,
        "older_adult_min_age": dosing.older_adult_min_age.value,
        "older_adult_doses_mg": list(dosing.older_adult_doses_mg.value),
        "older_adult_first_dose_mg": dosing.older_adult_first_dose_mg.value,
        "observation_minutes": observation,
    }

    if session_number < 1:
        issues.refuse(
            "not_positive",
            "session_number",
            f"session_number must be 1 or more (got {session_number}).",
            _CONVENTION,
        )
    if age_years is not None and age_years < 18:
        issues.refuse(
            "not_for_children",
            "age_years",
            f"Age {age_years}: esketamine is not approved in children, and the programme is for "
            "adults.",
            ("spravato-us-pi-indications", "seed-002-candidates"),
        )
    if dose_mg is None:
        issues.refuse("dose_missing", "dose_mg", "No dose was given.", _CONVENTION)
    elif dose_mg <= 0:
        issues.refuse(
            "not_positive",
            "dose_mg",
            f"dose_mg must be greater than zero (got {dose_mg}).",
            _CONVENTION,
        )
    elif dose_mg % unit:
        issues.refuse(
            "not_whole_devices",
            "dose_mg",
            f"{dose_mg} mg is not a whole number of {unit} mg devices "
            f"({', '.join(f'{d} mg' for d in allowed)}).",
            dosing.device_mg.sources,
        )
    elif dose_mg > dosing.max_dose_mg:
        issues.refuse(
            "above_label_max",
            "dose_mg",
            f"{dose_mg} mg is above the label's highest dose of {dosing.max_dose_mg} mg.",
            label,
        )
    elif dose_mg not in allowed:
        who = "unknown age" if age_years is None else f"age {age_years}"
        issues.refuse(
            "dose_not_in_label",
            "dose_mg",
            f"{dose_mg} mg is not a label dose for this patient ({who}); allowed: "
            f"{', '.join(f'{d} mg' for d in allowed)}. 28 mg is a starting dose only at "
            f"{dosing.older_adult_min_age.value} and over (HK label).",
            label + dosing.older_adult_doses_mg.sources,
        )
    elif session_number == 1 and dose_mg > dosing.first_dose_mg.value:
        issues.refuse(
            "first_dose",
            "dose_mg",
            f"Day 1 (session 1) starts at {dosing.first_dose_mg.value} mg; {dose_mg} mg only "
            f"after an initial {dosing.first_dose_mg.value} mg dose.",
            dosing.first_dose_mg.sources,
        )
    if older and not issues.refusals and dose_mg is not None:
        if session_number == 1 and dose_mg != first:
            issues.warn(
                "older_adult_start",
                "dose_mg",
                f"Age {age_years}: the HK label starts at {first} mg at "
                f"{dosing.older_adult_min_age.value} and over; the US starting dose at this age "
                "is not verified.",
                dosing.older_adult_first_dose_mg.sources,
            )
        elif dose_mg not in dosing.doses_mg.value:
            issues.warn(
                "older_adult_dose",
                "dose_mg",
                f"{dose_mg} mg follows the HK label for patients "
                f"{dosing.older_adult_min_age.value} and over; it is not a US label dose.",
                dosing.older_adult_doses_mg.sources,
            )

    if issues.refusals or dose_mg is None:
        return EsketamineOrder(
            protocol=protocol_id,
            session_number=session_number,
            dose_mg=None,
            devices=None,
            sprays=None,
            rest_between_devices_minutes=rest,
            dosing_minutes=None,
            observation_minutes=observation,
            steps=(),
            warnings=tuple(issues.warnings),
            refusals=tuple(issues.refusals),
            settings=settings,
            knowledge_version=knowledge_version(),
        )
    devices = dose_mg // unit
    sprays_each = dosing.sprays_per_device.value
    steps = [
        f"Dose {dose_mg} mg = {devices} device(s) of {unit} mg ({devices * sprays_each} sprays)"
    ]
    for number in range(1, devices + 1):
        line = f"Device {number} of {devices}: one spray in each nostril"
        if number < devices:
            line += f", then rest {rest} min"
        steps.append(line)
    steps.append(
        f"Monitor at least {observation} min after dosing, until sedation, dissociation and "
        "respiratory depression have resolved"
    )
    return EsketamineOrder(
        protocol=protocol_id,
        session_number=session_number,
        dose_mg=dose_mg,
        devices=devices,
        sprays=devices * sprays_each,
        rest_between_devices_minutes=rest,
        dosing_minutes=(devices - 1) * rest,
        observation_minutes=observation,
        steps=tuple(steps),
        warnings=tuple(issues.warnings),
        refusals=(),
        settings=settings,
        knowledge_version=knowledge_version(),
    )
