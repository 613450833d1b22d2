"""The structured note of a psychotherapy (CBT) session (``therapy.yaml``), validated at load.

Every technique, attendance option and risk-check result carries a label and sources, and every
source id must exist in ``references.yaml``. The risk check must start with a single non-urgent
"none" result; every other result is urgent and must say what to do (the clinic's suicide-risk
pathway, C-SSRS). A note vocabulary that could hide a risk must never reach a therapist, so any
inconsistency stops the load.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids

__all__ = [
    "AttendanceDef",
    "RiskCheckDef",
    "RiskResultDef",
    "TechniqueDef",
    "TherapyDef",
    "load_therapy",
    "load_therapy_file",
]

Evidence = Literal["V", "S", "M"]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$", max_length=40)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Sources = Annotated[tuple[Slug, ...], Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TechniqueDef(_Model):
    """A session focus or technique of CBT for adult ADHD."""

    code: Code
    label: Text
    description: Text | None = None
    evidence: Evidence
    sources: Sources
    note: Text | None = None


class AttendanceDef(_Model):
    code: Code
    label: Text
    # What signing a note with this attendance sets as the session's status.
    status: Literal["completed", "missed"]
    sources: Sources


class RiskResultDef(_Model):
    code: Code
    label: Text
    urgent: bool
    text: Text | None = None
    sources: Sources


class RiskCheckDef(_Model):
    question: Text
    sources: Sources
    results: tuple[RiskResultDef, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _none_first_then_urgent(self) -> Self:
        first, *rest = self.results
        if first.code != "none" or first.urgent:
            raise ValueError("the first risk result must be 'none' and not urgent")
        for result in rest:
            if not result.urgent:
                raise ValueError(f"risk result {result.code!r}: anything above none is urgent")
            if not result.text or "C-SSRS" not in result.text or "pathway" not in result.text:
                raise ValueError(
                    f"risk result {result.code!r}: the text must say to follow the clinic's "
                    "suicide-risk pathway (C-SSRS)"
                )
        return self

    def by_code(self) -> dict[str, RiskResultDef]:
        return {r.code: r for r in self.results}


class TherapyDef(_Model):
    version: Text
    sources: Sources
    techniques: tuple[TechniqueDef, ...] = Field(min_length=1)
    attendance: tuple[AttendanceDef, ...] = Field(min_length=2)
    risk_check: RiskCheckDef

    @model_validator(mode="after")
    def _unique_and_complete(self) -> Self:
        for name, codes in (
            ("technique", [t.code for t in self.techniques]),
            ("attendance", [a.code for a in self.attendance]),
            ("risk result", [r.code for r in self.risk_check.results]),
        ):
            repeated = sorted({c for c in codes if codes.count(c) > 1})
            if repeated:
                raise ValueError(f"{name} codes repeated: {repeated}")
        if {a.status for a in self.attendance} != {"completed", "missed"}:
            raise ValueError("attendance needs options that complete and that miss a session")
        return self

    def technique(self, code: str) -> TechniqueDef | None:
        return next((t for t in self.techniques if t.code == code), None)

    def attendance_option(self, code: str) -> AttendanceDef | None:
        return next((a for a in self.attendance if a.code == code), None)

    def technique_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.techniques)

    def attendance_codes(self) -> tuple[str, ...]:
        return tuple(a.code for a in self.attendance)

    def risk_codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.risk_check.results)

    def all_source_ids(self) -> set[str]:
        ids = set(self.sources) | set(self.risk_check.sources)
        for group in (self.techniques, self.attendance, self.risk_check.results):
            for entry in group:
                ids |= set(entry.sources)
        return ids


def _check_sources(where: str, ids: set[str], known: set[str]) -> None:
    missing = sorted(ids - known)
    if missing:
        raise ValueError(f"{where}: sources not in references.yaml: {missing}")


def load_therapy_file(raw: object) -> TherapyDef:
    """Validate a parsed therapy.yaml (also used by the tests on altered copies)."""
    data = TherapyDef.model_validate(raw)
    _check_sources("therapy.yaml", data.all_source_ids(), reference_ids())
    return data


@cache
def load_therapy() -> TherapyDef:
    """therapy.yaml, validated (cached for the process)."""
    return load_therapy_file(load_yaml("therapy.yaml"))
