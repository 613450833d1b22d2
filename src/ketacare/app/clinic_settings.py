"""A clinic's settings: its opening calendar and its overrides of the cited defaults (dosing per
protocol, monitoring thresholds, default eligibility exclusions relaxed with a reason).
Decisions use the effective values and store them."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date, time
from functools import lru_cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app.audit import audited
from ketacare.app.errors import Conflict, InvalidInput, NotFound
from ketacare.app.permissions import Actor, Permission, require
from ketacare.clinical.course import ClinicCalendar
from ketacare.clinical.dosing import DosingSettings
from ketacare.clinical.eligibility import (
    RELAXATION_REASON_MIN,
    EligibilitySettings,
    RelaxationError,
    check_relaxation,
)
from ketacare.clinical.monitoring import MonitoringSettings
from ketacare.store.models import Clinic

log = logging.getLogger(__name__)


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError(
            "give the clinic's local time without a time zone, e.g. 08:30; "
            "the clinic's time zone applies"
        )
    return value


# A wall-clock time in the clinic's zone. The schema says so: JSON Schema's "time" format
# requires a UTC offset, which a clinic's opening hours do not have.
LocalTime = Annotated[
    time,
    AfterValidator(_local),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "description": "Local time of the clinic, HH:MM or HH:MM:SS, no time zone",
            "examples": ["08:30"],
        }
    ),
]


class CalendarSettings(BaseModel):
    """When the clinic doses and sees patients. ``days``: 0 = Monday ... 6 = Sunday."""

    model_config = ConfigDict(extra="forbid")

    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1, max_length=7)
    opens: LocalTime = time(8, 0)
    closes: LocalTime = time(17, 0)
    closed_dates: list[date] = Field(default_factory=list, max_length=400)

    @field_validator("days")
    @classmethod
    def _weekdays(cls, days: list[int]) -> list[int]:
        if any(d not in range(7) for d in days):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return sorted(set(days))

    @field_validator("closes")
    @classmethod
    def _after_opening(cls, closes: time, info: Any) -> time:
        opens = info.data.get("opens")
        if opens is not None and closes <= opens:
            raise ValueError("closing time must be after opening time")
        return closes


class ClinicSettingsIn(BaseModel):
    """What an administrator may set. Empty overrides mean the cited defaults apply."""

    model_config = ConfigDict(extra="forbid")

    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    monitoring: dict[str, int] = Field(
        default_factory=dict, description="Overrides of monitoring settings, by name"
    )
    dosing: dict[str, dict[str, float | int | str]] = Field(
        default_factory=dict, description="Per protocol id: overrides of its dosing settings"
    )
    require_second_check: bool = Field(
        False, description="A second person must verify every dose order before dosing starts"
    )
    eligibility_relaxations: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Default exclusions the clinic grades as a caution instead, by history code, each "
            f"with its reason (at least {RELAXATION_REASON_MIN} characters; every decision it "
            "changes shows it). Only clinic defaults (e.g. schizophrenia, current_psychosis, "
            "pregnancy); a label contraindication can never be relaxed."
        ),
    )
    change_note: str | None = Field(
        None, max_length=2000, description="Why the values changed, with the source"
    )


class ClinicSettingsOut(ClinicSettingsIn):
    version: int
    effective_monitoring: dict[str, Any]
    problem: str | None = Field(
        None,
        description="Why the clinic's stored overrides are not in force (the cited defaults "
        "apply until an administrator corrects them)",
    )


@dataclass(frozen=True)
class EffectiveSettings:
    """The values in force for one clinic; what every decision is made with."""

    calendar: CalendarSettings
    timezone: str
    monitoring: MonitoringSettings
    dosing_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    require_second_check: bool = False
    version: int = 1
    eligibility: EligibilitySettings = field(default_factory=EligibilitySettings.defaults)
    # Set when the stored monitoring overrides no longer fit together with this version's
    # settings (e.g. a new critical tier below a stored warning): the cited defaults apply.
    problem: str | None = None

    def dosing(self, protocol_id: str) -> DosingSettings:
        defaults = DosingSettings.defaults(protocol_id)
        overrides = self.dosing_overrides.get(protocol_id)
        if not overrides:
            return defaults
        return DosingSettings.model_validate({**defaults.as_dict(), **overrides})

    def clinic_calendar(self) -> ClinicCalendar:
        return ClinicCalendar(
            days=frozenset(self.calendar.days),
            opens=self.calendar.opens,
            closes=self.calendar.closes,
            closed_dates=frozenset(self.calendar.closed_dates),
            tz=self.timezone,
        )


def _effective(clinic: Clinic, raw: dict[str, Any] | None) -> EffectiveSettings:
    return settings_from(clinic.timezone, raw, clinic.settings_version)


def settings_from(timezone: str, raw: dict[str, Any] | None, version: int) -> EffectiveSettings:
    """The settings in force for a clinic's stored values. Validating them costs more than a
    vitals batch's own checks, so the result is kept per distinct stored value."""
    return _settings_cached(timezone, json.dumps(raw or {}, sort_keys=True), version)


@lru_cache(maxsize=256)
def _settings_cached(timezone: str, raw_json: str, version: int) -> EffectiveSettings:
    data = ClinicSettingsIn.model_validate_json(raw_json)
    monitoring = MonitoringSettings.defaults()
    problem = None
    if data.monitoring:
        try:
            monitoring = MonitoringSettings.model_validate(
                {**monitoring.template_values(), **data.monitoring}
            )
        except ValidationError as exc:
            # Stored under an earlier version whose settings were fewer: never a crash on every
            # page, never half the clinic's values. The cited defaults apply, and it is shown.
            reasons = "; ".join(
                re.sub(r"^Value error, ", "", e["msg"]) for e in exc.errors(include_url=False)
            )
            problem = (
                f"The clinic's monitoring overrides no longer fit this version's settings "
                f"({reasons}). The cited defaults apply until an administrator corrects them."
            )
            log.warning("clinic settings version %s: %s", version, problem)
    return EffectiveSettings(
        calendar=data.calendar,
        timezone=timezone,
        monitoring=monitoring,
        dosing_overrides=dict(data.dosing),
        require_second_check=data.require_second_check,
        version=version,
        eligibility=_eligibility(data.eligibility_relaxations),
        problem=problem,
    )


def _eligibility(relaxations: dict[str, str]) -> EligibilitySettings:
    """The eligibility settings in force. A stored relaxation the knowledge no longer allows
    (the condition became a label contraindication) is not applied: the stricter default
    holds, and the decision's stored settings show which relaxations were in force."""
    defaults = EligibilitySettings.defaults()
    allowed = {}
    for code, reason in relaxations.items():
        try:
            check_relaxation(code, reason)
        except RelaxationError:
            continue
        allowed[code] = reason
    if not allowed:
        return defaults
    return EligibilitySettings.model_validate(
        {**defaults.model_dump(), "relaxed_exclusions": allowed}
    )


def effective_settings(db: Session, clinic_id: int) -> EffectiveSettings:
    clinic = db.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"No clinic {clinic_id}.")
    return _effective(clinic, clinic.settings)


def _field_of(exc: ValidationError, prefix: str) -> str:
    loc = exc.errors()[0].get("loc", ())
    return ".".join([prefix, *map(str, loc)]) if loc else prefix


def _validate(data: ClinicSettingsIn) -> None:
    """Every override must name a real setting and keep the settings consistent."""
    try:
        MonitoringSettings.model_validate(
            {**MonitoringSettings.defaults().template_values(), **data.monitoring}
        )
    except ValidationError as exc:
        raise InvalidInput(
            _field_of(exc, "monitoring"), exc.errors()[0]["msg"].removeprefix("Value error, ")
        ) from None
    for protocol_id, overrides in data.dosing.items():
        try:
            defaults = DosingSettings.defaults(protocol_id)
        except Exception:
            raise InvalidInput(
                f"dosing.{protocol_id}", f"{protocol_id!r} is not a weight-based protocol."
            ) from None
        if "protocol" in overrides:
            raise InvalidInput(f"dosing.{protocol_id}.protocol", "The protocol is not a setting.")
        try:
            DosingSettings.model_validate({**defaults.as_dict(), **overrides})
        except ValidationError as exc:
            raise InvalidInput(
                _field_of(exc, f"dosing.{protocol_id}"),
                exc.errors()[0]["msg"].removeprefix("Value error, "),
            ) from None
    for code, reason in data.eligibility_relaxations.items():
        try:
            check_relaxation(code, reason)
        except RelaxationError as exc:
            raise InvalidInput(f"eligibility_relaxations.{code}", exc.message) from None


CHANGE_NOTE_MISSING = (
    "A clinical value changes: say why in the change note, with the source (e.g. the "
    "clinic's protocol or a guideline)."
)


def _clinical_change(current: EffectiveSettings, data: ClinicSettingsIn) -> bool:
    """Whether the values decisions are made with would change (the calendar is not one)."""
    monitoring = MonitoringSettings.model_validate(
        {**MonitoringSettings.defaults().template_values(), **data.monitoring}
    )
    return (
        monitoring != current.monitoring
        or data.dosing != current.dosing_overrides
        or data.require_second_check != current.require_second_check
        or _eligibility(data.eligibility_relaxations) != current.eligibility
    )


def get_clinic_settings(db: Session, actor: Actor) -> ClinicSettingsOut:
    with audited(db, actor, "settings.view"):
        require(actor, Permission.PATIENT_READ)
        clinic = db.get(Clinic, actor.clinic_id)
        assert clinic is not None
        data = ClinicSettingsIn.model_validate(clinic.settings or {})
        effective = _effective(clinic, clinic.settings)
        return ClinicSettingsOut(
            **data.model_dump(),
            version=clinic.settings_version,
            effective_monitoring=effective.monitoring.template_values(),
            problem=effective.problem,
        )


def update_clinic_settings(
    db: Session, actor: Actor, data: ClinicSettingsIn, version: int
) -> ClinicSettingsOut:
    """Replace the clinic's settings; ``version`` must be the one read (no lost update). A
    change to a clinical value needs a change note; the trail keeps it with the values before
    and after."""
    with audited(db, actor, "settings.update") as note:
        require(actor, Permission.SETTINGS_MANAGE)
        clinic = db.scalar(select(Clinic).where(Clinic.id == actor.clinic_id))
        assert clinic is not None
        if clinic.settings_version != version:
            raise Conflict("The clinic's settings changed since you opened them: reload them.")
        _validate(data)
        if not (data.change_note or "").strip() and _clinical_change(
            _effective(clinic, clinic.settings), data
        ):
            raise InvalidInput("change_note", CHANGE_NOTE_MISSING)
        before = clinic.settings
        clinic.settings = data.model_dump(mode="json", exclude={"change_note"})
        clinic.settings_version = version + 1
        db.flush()
        note.detail = {
            "before": before,
            "after": clinic.settings,
            "version": clinic.settings_version,
            "note": data.change_note,
        }
    return get_clinic_settings(db, actor)
