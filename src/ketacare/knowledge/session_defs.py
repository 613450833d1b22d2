"""Typed loader of ``session_checks.yaml``: the pre-dose checks beside the blood-pressure gate
and the adverse-event vocabulary. Validated at load; every source must be a known reference."""

from __future__ import annotations

from functools import cache
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids

Band = Literal["proceed", "caution", "hold"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnswerDef(_Model):
    value: str = Field(min_length=1)
    band: Band
    text: str = Field(min_length=1)


class PrecheckDef(_Model):
    id: Literal["fasting", "escort", "pregnancy", "interactions"]
    label: str = Field(min_length=1)
    question: str = Field(min_length=1)
    applies_to: Literal["all", "female_of_childbearing_age"]
    instructions: dict[Literal["infusion", "injection", "nasal_spray"], str] = {}
    childbearing_age_max: int | None = Field(None, ge=18, le=70)
    answers: tuple[AnswerDef, ...] = ()
    severity_bands: dict[Literal["contraindicated", "major", "moderate", "minor"], Band] = {}
    unrecognized_band: Band | None = None
    sources: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.id == "interactions":
            if len(self.severity_bands) != 4 or self.unrecognized_band is None:
                raise ValueError("the interaction check maps every severity and unknown names")
        elif not self.answers or not any(a.band == "proceed" for a in self.answers):
            raise ValueError(f"{self.id}: needs answers, one of which proceeds")
        if (self.applies_to == "female_of_childbearing_age") != (
            self.childbearing_age_max is not None
        ):
            raise ValueError(f"{self.id}: childbearing_age_max goes with that applies_to")
        return self

    def answer(self, value: str) -> AnswerDef | None:
        return next((a for a in self.answers if a.value == value), None)


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
        for p in self.prechecks:
            ids |= set(p.sources)
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
