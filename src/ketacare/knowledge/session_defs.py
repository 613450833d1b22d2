"""Typed loader of ``session_checks.yaml``: the pre-dose checks beside the blood-pressure gate,
the suicide-risk flags that reach the point of dosing, and the adverse-event vocabulary.
Validated at load; every source must be a known reference."""

from __future__ import annotations

from functools import cache
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids

Band = Literal["proceed", "caution", "hold", "refuse"]
RiskLevel = Literal["critical", "urgent"]
# Checks the software works out from the record, and the outcomes each must map to a band.
COMPUTED: dict[str, frozenset[str]] = {
    "dose_interval": frozenset({"ok", "too_soon_override", "too_soon"}),
    "risk_flags": frozenset({"none", "decided_proceed", "open", "deferred"}),
    "earlier_refusal": frozenset({"none", "refused_today", "bp_refused_today"}),
    "readings": frozenset({"ok", "not_recorded", "warning", "critical"}),
    "programme": frozenset({"ok", "no_review", "not_eligible", "no_consent", "consent_withdrawn"}),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnswerDef(_Model):
    value: str = Field(min_length=1)
    band: Band
    text: str = Field(min_length=1)


class LabelNamedDef(_Model):
    """A group of interactions a label names: a finding belongs to it by rule id or by the
    class of its ingredient (descendant classes included)."""

    group: str = Field(pattern=r"^[a-z][a-z_]*$")
    label: str = Field(min_length=1)
    monitoring: str = Field(min_length=1)
    rule_ids: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    sources: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _matches_something(self) -> Self:
        if not self.rule_ids and not self.classes:
            raise ValueError(f"{self.group}: name rule_ids or classes")
        return self


class PrecheckDef(_Model):
    id: Literal[
        "fasting",
        "escort",
        "pregnancy",
        "interactions",
        "dose_interval",
        "risk_flags",
        "earlier_refusal",
        "programme",
        "readings",
    ]
    label: str = Field(min_length=1)
    question: str = Field(min_length=1)
    applies_to: Literal["all", "female_of_childbearing_age"]
    instructions: dict[Literal["infusion", "injection", "nasal_spray"], str] = {}
    childbearing_age_max: int | None = Field(None, ge=18, le=70)
    answers: tuple[AnswerDef, ...] = ()
    severity_bands: dict[Literal["contraindicated", "major", "moderate", "minor"], Band] = {}
    unrecognized_band: Band | None = None
    label_named: tuple[LabelNamedDef, ...] = ()
    label_named_band: Band | None = None
    computed_bands: dict[str, Band] = {}
    sources: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.id == "interactions":
            if len(self.severity_bands) != 4 or self.unrecognized_band is None:
                raise ValueError("the interaction check maps every severity and unknown names")
            if self.label_named_band in (None, "proceed") or not self.label_named:
                raise ValueError("label-named interactions need groups and a band above proceed")
        elif self.id in COMPUTED:
            if set(self.computed_bands) != COMPUTED[self.id]:
                expected = ", ".join(sorted(COMPUTED[self.id]))
                raise ValueError(f"{self.id}: computed_bands must map exactly {expected}")
        elif not self.answers or not any(a.band == "proceed" for a in self.answers):
            raise ValueError(f"{self.id}: needs answers, one of which proceeds")
        if (self.applies_to == "female_of_childbearing_age") != (
            self.childbearing_age_max is not None
        ):
            raise ValueError(f"{self.id}: childbearing_age_max goes with that applies_to")
        return self

    def answer(self, value: str) -> AnswerDef | None:
        return next((a for a in self.answers if a.value == value), None)

    def label_group(self, rule_id: str, classes: frozenset[str]) -> LabelNamedDef | None:
        """The label-named group a finding belongs to (by rule id, else by class), or None."""
        for group in self.label_named:
            if rule_id in group.rule_ids or classes.intersection(group.classes):
                return group
        return None


class RiskLevelDef(_Model):
    code: str = Field(min_length=1)
    level: RiskLevel


class RiskFlagsDef(_Model):
    """Which flags of rating scales and which CBT risk-check results stop dosing until a
    prescriber decides, and how critical each is."""

    assessment_flags: tuple[RiskLevelDef, ...] = Field(min_length=1)
    therapy_results: tuple[RiskLevelDef, ...] = Field(min_length=1)
    sources: tuple[str, ...] = Field(min_length=1)

    def assessment_level(self, code: str) -> RiskLevel | None:
        return next((f.level for f in self.assessment_flags if f.code == code), None)

    def therapy_level(self, code: str) -> RiskLevel:
        """A result not listed (other than none) is critical: it cannot be read as safe."""
        return next((f.level for f in self.therapy_results if f.code == code), "critical")


class SeverityDef(_Model):
    value: Literal["mild", "moderate", "severe"]
    label: str = Field(min_length=1)


class AdverseEventDef(_Model):
    code: str = Field(pattern=r"^[a-z][a-z_]*$")
    label: str = Field(min_length=1)
    requires_note: bool = False
    sources: tuple[str, ...] = Field(min_length=1)


class SessionChecksDef(_Model):
    prechecks: tuple[PrecheckDef, ...]
    adverse_event_severities: tuple[SeverityDef, ...] = Field(min_length=3, max_length=3)
    adverse_event_severity_sources: tuple[str, ...] = Field(min_length=1)
    serious_definition: str = Field(min_length=1)
    serious_sources: tuple[str, ...] = Field(min_length=1)
    adverse_events: tuple[AdverseEventDef, ...] = Field(min_length=1)
    risk_flags: RiskFlagsDef

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for name, ids in (
            ("prechecks", [p.id for p in self.prechecks]),
            ("adverse_events", [a.code for a in self.adverse_events]),
        ):
            if len(ids) != len(set(ids)):
                raise ValueError(f"{name}: duplicate ids")
        return self

    def precheck(self, check_id: str) -> PrecheckDef:
        return next(p for p in self.prechecks if p.id == check_id)

    def adverse_event(self, code: str) -> AdverseEventDef | None:
        return next((a for a in self.adverse_events if a.code == code), None)

    def all_source_ids(self) -> set[str]:
        ids = set(self.adverse_event_severity_sources) | set(self.serious_sources)
        ids |= set(self.risk_flags.sources)
        for p in self.prechecks:
            ids |= set(p.sources)
            for group in p.label_named:
                ids |= set(group.sources)
        for a in self.adverse_events:
            ids |= set(a.sources)
        return ids


@cache
def load_session_checks() -> SessionChecksDef:
    data = SessionChecksDef.model_validate(load_yaml("session_checks.yaml"))
    missing = sorted(data.all_source_ids() - reference_ids())
    if missing:
        raise ValueError(f"session_checks.yaml: sources not in references.yaml: {missing}")
    return data
