"""Eligibility knowledge (``contraindications.yaml``, ``eligibility.yaml``), validated at load.

Every condition, setting and reason names its sources, and every source id must exist in
``references.yaml``: a rule without a source does not load.
"""

from __future__ import annotations

import re
import string
from functools import cache
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids

ReasonSeverity = Literal["exclusion", "caution", "supporting", "info"]

_CODE = r"^[a-z0-9_]+$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """One `history` code of the intake and how it weighs on eligibility."""

    code: str = Field(pattern=_CODE)
    label: str
    # "class" in the YAML file: exclusion (contraindication) or caution (prescriber review).
    classification: Literal["exclusion", "caution"] = Field(alias="class")
    text: str
    sources: list[str] = Field(min_length=1)


class Contraindications(_Model):
    conditions: list[Condition] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        codes = [c.code for c in self.conditions]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"condition codes repeated: {duplicates}")
        return self

    def by_code(self) -> dict[str, Condition]:
        return {c.code: c for c in self.conditions}


class SettingDefault(_Model):
    value: int | bool
    sources: list[str] = Field(min_length=1)
    note: str | None = None


class StandardTreatment(_Model):
    ingredient: str
    drug_class: Literal["stimulant", "non-stimulant"]
    names: list[str] = Field(min_length=1)


class StandardTreatments(_Model):
    sources: list[str] = Field(min_length=1)
    note: str | None = None
    drugs: list[StandardTreatment] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_unique(self) -> Self:
        names = [n.lower() for d in self.drugs for n in d.names]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"standard treatment names repeated: {duplicates}")
        return self


class ReasonTemplate(_Model):
    severity: ReasonSeverity
    text: str
    # Empty only for interaction reasons, whose sources come from the interaction rule.
    sources: list[str] = Field(default_factory=list)

    def placeholders(self) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(self.text) if name}


class EligibilityKnowledge(_Model):
    settings: dict[str, SettingDefault]
    standard_adhd_treatments: StandardTreatments
    reasons: dict[str, ReasonTemplate]

    @model_validator(mode="after")
    def _codes(self) -> Self:
        for code, template in self.reasons.items():
            if not re.match(_CODE, code):
                raise ValueError(f"reason code {code!r} is not snake_case")
            if not template.sources and not code.startswith("interaction_"):
                raise ValueError(f"reason {code!r} has no sources")
        return self


def _check_sources(where: str, ids: set[str], known: set[str]) -> None:
    missing = sorted(ids - known)
    if missing:
        raise ValueError(f"{where}: sources not in references.yaml: {missing}")


@cache
def load_contraindications() -> Contraindications:
    data = Contraindications.model_validate(load_yaml("contraindications.yaml"))
    ids = {s for c in data.conditions for s in c.sources}
    _check_sources("contraindications.yaml", ids, reference_ids())
    return data


@cache
def load_eligibility() -> EligibilityKnowledge:
    data = EligibilityKnowledge.model_validate(load_yaml("eligibility.yaml"))
    ids = set(data.standard_adhd_treatments.sources)
    ids |= {s for setting in data.settings.values() for s in setting.sources}
    ids |= {s for reason in data.reasons.values() for s in reason.sources}
    _check_sources("eligibility.yaml", ids, reference_ids())
    return data
