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
# Why a condition has its class: a contraindication in a label (an exclusion no clinic can
# relax), KetaCare's cautious default where the labels leave room (an exclusion a clinic may
# relax with a recorded reason, or a caution), or a label warning (a caution).
Basis = Literal["label_contraindication", "clinic_default", "label_warning"]
CLINIC_CONVENTION = "ketacare-clinic-convention"

_CODE = r"^[a-z0-9_]+$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """One `history` code of the intake and how it weighs on eligibility."""

    code: str = Field(pattern=_CODE)
    label: str
    # "class" in the YAML file: exclusion (contraindication) or caution (prescriber review).
    classification: Literal["exclusion", "caution"] = Field(alias="class")
    basis: Basis
    # The sources that make it a label contraindication or a clinic default; among `sources`.
    basis_sources: list[str] = Field(min_length=1)
    text: str
    sources: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _basis_fits_the_class(self) -> Self:
        where = f"condition {self.code!r}"
        if self.basis == "label_contraindication" and self.classification != "exclusion":
            raise ValueError(f"{where}: a label contraindication is an exclusion")
        if self.basis == "label_warning" and self.classification != "caution":
            raise ValueError(
                f"{where}: a label warning is a caution; an exclusion is a label "
                "contraindication or a clinic default"
            )
        if self.basis == "clinic_default" and CLINIC_CONVENTION not in self.basis_sources:
            raise ValueError(f"{where}: a clinic default cites {CLINIC_CONVENTION}")
        outside = sorted(set(self.basis_sources) - set(self.sources))
        if outside:
            raise ValueError(f"{where}: basis_sources not among its sources: {outside}")
        return self

    @property
    def relaxable(self) -> bool:
        """A default exclusion a clinic may relax to a caution with a recorded reason."""
        return self.classification == "exclusion" and self.basis == "clinic_default"


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
    value: int | bool | dict[str, str]
    sources: list[str] = Field(min_length=1)
    note: str | None = None


class StandardTreatment(_Model):
    ingredient: str
    drug_class: Literal["stimulant", "non-stimulant"]
    names: list[str] = Field(min_length=1)
    # False for an ADHD medicine licensed only for children and adolescents: it is recognised,
    # but its failure does not count as a failed standard *adult* treatment.
    adult_standard: bool = True
    # Why it is not an adult standard treatment (required when adult_standard is false).
    not_adult_note: str | None = None
    not_adult_sources: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _explained(self) -> Self:
        if not self.adult_standard and not (self.not_adult_note and self.not_adult_sources):
            raise ValueError(
                f"{self.ingredient}: a treatment that is not an adult standard says why, with "
                "sources (not_adult_note, not_adult_sources)"
            )
        return self


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
    ids = {s for c in data.conditions for s in (*c.sources, *c.basis_sources)}
    _check_sources("contraindications.yaml", ids, reference_ids())
    return data


@cache
def load_eligibility() -> EligibilityKnowledge:
    data = EligibilityKnowledge.model_validate(load_yaml("eligibility.yaml"))
    ids = set(data.standard_adhd_treatments.sources)
    ids |= {s for drug in data.standard_adhd_treatments.drugs for s in drug.not_adult_sources}
    ids |= {s for setting in data.settings.values() for s in setting.sources}
    ids |= {s for reason in data.reasons.values() for s in reason.sources}
    _check_sources("eligibility.yaml", ids, reference_ids())
    return data
