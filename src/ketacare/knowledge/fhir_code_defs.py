"""Typed loader of ``fhir_codes.yaml``: the code systems and codes of the FHIR export.

Validated at load: every code system named is declared, every instrument has exactly one total
code and agrees with the LOINC total of its own definition, every stored vital sign has a code
in ``monitoring.yaml``, every protocol route has a route code, every interaction severity maps
to a DetectedIssue severity, ketamine's RxNorm code exists in ``drugs.yaml``, and every source
id is in ``references.yaml``. A wrong code would mislabel a clinical value in another system,
so any inconsistency stops the load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import INSTRUMENT_IDS, load_instruments, reference_ids

__all__ = ["Coding", "FhirCodes", "VitalCode", "load_fhir_codes", "parse_fhir_codes"]

Evidence = Literal["V", "S", "M"]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
IssueSeverity = Literal["high", "moderate", "low"]
# Columns of vital_samples and body_measurements that are exported as Observations.
VITAL_COLUMNS = (
    "blood_pressure",
    "systolic",
    "diastolic",
    "heart_rate",
    "spo2",
    "respiratory_rate",
    "weight_kg",
    "height_cm",
)
INTERACTION_SEVERITIES = ("contraindicated", "major", "moderate", "minor")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeDisplay(_Model):
    code: str = Field(min_length=1)
    display: str = Field(min_length=1)


class SystemCode(CodeDisplay):
    system: str = Field(min_length=1)  # a key of ``systems``


class ScaleTotalDef(SystemCode):
    instrument: Slug
    evidence: Evidence
    sources: tuple[Slug, ...] = Field(min_length=1)
    note: str | None = None


class ConditionDef(_Model):
    text: str = Field(min_length=1)
    snomed: CodeDisplay
    icd10cm: CodeDisplay
    icd10cm_by_presentation: dict[str, CodeDisplay] = Field(default_factory=dict)
    evidence: Evidence
    sources: tuple[Slug, ...] = Field(min_length=1)


class AgentDef(_Model):
    display: str = Field(min_length=1)
    rxnorm: CodeDisplay | None = None
    evidence: Evidence | None = None
    sources: tuple[Slug, ...] = ()
    note: str | None = None


class FhirCodesFile(_Model):
    systems: dict[str, str]
    categories: dict[str, CodeDisplay]
    vital_signs: dict[str, str]
    scale_totals: tuple[ScaleTotalDef, ...]
    conditions: dict[str, ConditionDef]
    agents: dict[str, AgentDef]
    routes: dict[str, CodeDisplay]
    routes_evidence: Evidence
    routes_sources: tuple[Slug, ...] = Field(min_length=1)
    procedures: dict[str, SystemCode]
    procedures_sources: tuple[Slug, ...] = Field(min_length=1)
    detected_issue_severity: dict[str, IssueSeverity]
    sources: tuple[Slug, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for required in ("loinc", "ucum", "snomed", "icd10cm", "rxnorm", "local"):
            if required not in self.systems:
                raise ValueError(f"systems: {required} is missing")
        for where, entry in [
            *((f"scale_totals[{t.instrument}]", t) for t in self.scale_totals),
            *((f"procedures.{k}", p) for k, p in self.procedures.items()),
        ]:
            if entry.system not in self.systems:
                raise ValueError(f"{where}: unknown system {entry.system!r}")
        ids = [t.instrument for t in self.scale_totals]
        if sorted(ids) != sorted(INSTRUMENT_IDS):
            raise ValueError(f"scale_totals must cover exactly {list(INSTRUMENT_IDS)}, got {ids}")
        if set(self.vital_signs) != set(VITAL_COLUMNS):
            raise ValueError(f"vital_signs must map exactly {list(VITAL_COLUMNS)}")
        if set(self.detected_issue_severity) != set(INTERACTION_SEVERITIES):
            raise ValueError(f"detected_issue_severity must map {list(INTERACTION_SEVERITIES)}")
        for key in ("vital_signs", "survey"):
            if key not in self.categories:
                raise ValueError(f"categories: {key} is missing")
        for key in ("dosing_session", "cbt_session"):
            if key not in self.procedures:
                raise ValueError(f"procedures: {key} is missing")
        if "adhd" not in self.conditions:
            raise ValueError("conditions: adhd is missing")
        return self

    def all_source_ids(self) -> set[str]:
        ids = set(self.sources) | set(self.routes_sources) | set(self.procedures_sources)
        for total in self.scale_totals:
            ids |= set(total.sources)
        for condition in self.conditions.values():
            ids |= set(condition.sources)
        for agent in self.agents.values():
            ids |= set(agent.sources)
        return ids


@dataclass(frozen=True, slots=True)
class Coding:
    """One coding as FHIR writes it."""

    system: str
    code: str
    display: str

    def as_fhir(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True, slots=True)
class VitalCode:
    """A vital sign's codes (the first is the primary one) and its UCUM unit, if it has one."""

    codings: tuple[Coding, ...]
    unit: str | None

    @property
    def display(self) -> str:
        return self.codings[0].display


@dataclass(frozen=True)
class FhirCodes:
    """The codes of the export, resolved to system URLs."""

    systems: Mapping[str, str]
    categories: Mapping[str, Coding]
    vitals: Mapping[str, VitalCode]
    scale_totals: Mapping[str, Coding]
    adhd: ConditionDef
    agents: Mapping[str, tuple[Coding, ...]]
    routes: Mapping[str, Coding]
    procedures: Mapping[str, Coding]
    issue_severity: Mapping[str, str]

    def system(self, key: str) -> str:
        return self.systems[key]

    def is_local(self, coding: Coding) -> bool:
        return coding.system == self.systems["local"]


def _vitals(data: FhirCodesFile, systems: Mapping[str, str]) -> dict[str, VitalCode]:
    from ketacare.knowledge.protocol_defs import load_monitoring

    known = {c.key: c for c in load_monitoring().vital_sign_codes.codes}
    out: dict[str, VitalCode] = {}
    for column, key in data.vital_signs.items():
        if key not in known:
            raise ValueError(f"fhir_codes.yaml vital_signs.{column}: no code {key!r} in monitoring")
        code = known[key]
        codings = [Coding(systems["loinc"], code.loinc, code.display)]
        for also in code.also:
            extra = next((c for c in known.values() if c.loinc == also), None)
            codings.append(Coding(systems["loinc"], also, extra.display if extra else code.display))
        out[column] = VitalCode(tuple(codings), code.ucum)
    return out


def _agents(data: FhirCodesFile, systems: Mapping[str, str]) -> dict[str, tuple[Coding, ...]]:
    from ketacare.knowledge.catalog import load_catalog

    catalog = load_catalog()
    out: dict[str, tuple[Coding, ...]] = {}
    for name, agent in data.agents.items():
        if name not in catalog.ingredients:
            raise ValueError(f"fhir_codes.yaml agents: {name!r} is not an ingredient in drugs.yaml")
        rxcui = catalog.ingredients[name].rxcui
        if agent.rxnorm is not None and rxcui is not None:
            raise ValueError(f"fhir_codes.yaml agents.{name}: drugs.yaml already has its RxCUI")
        codings = []
        if rxcui is not None:
            codings.append(Coding(systems["rxnorm"], rxcui, agent.display))
        elif agent.rxnorm is not None:
            codings.append(Coding(systems["rxnorm"], agent.rxnorm.code, agent.rxnorm.display))
        codings += [
            Coding(systems["atc"], atc, agent.display) for atc in catalog.ingredients[name].atc
        ]
        out[name] = tuple(codings)
    return out


def _check_instruments(data: FhirCodesFile) -> None:
    instruments = load_instruments()
    for total in data.scale_totals:
        definition = instruments[total.instrument]
        coded = definition.loinc.total
        if coded is not None and (total.system != "loinc" or total.code != coded):
            raise ValueError(
                f"fhir_codes.yaml scale_totals[{total.instrument}]: the instrument's LOINC total "
                f"is {coded}, not {total.system}:{total.code}"
            )
        if coded is None and total.system == "loinc":
            raise ValueError(
                f"fhir_codes.yaml scale_totals[{total.instrument}]: a LOINC total the instrument "
                "file does not have; record it in instruments/ first"
            )


def _check_routes(data: FhirCodesFile) -> None:
    from ketacare.knowledge.protocol_defs import load_protocols

    for protocol in load_protocols().values():
        if protocol.route not in data.routes:
            raise ValueError(f"fhir_codes.yaml routes: no code for {protocol.route!r}")
        if protocol.agent not in data.agents:
            raise ValueError(f"fhir_codes.yaml agents: no entry for {protocol.agent!r}")


def parse_fhir_codes(raw: Any) -> FhirCodes:
    """Validate the content of a FHIR codes file and resolve it. Raises ``ValueError``."""
    data = FhirCodesFile.model_validate(raw)
    missing = sorted(data.all_source_ids() - reference_ids())
    if missing:
        raise ValueError(f"fhir_codes.yaml: sources not in references.yaml: {missing}")
    _check_instruments(data)
    _check_routes(data)
    systems = dict(data.systems)
    category = systems.get("observation_category", "")
    return FhirCodes(
        systems=systems,
        categories={k: Coding(category, c.code, c.display) for k, c in data.categories.items()},
        vitals=_vitals(data, systems),
        scale_totals={
            t.instrument: Coding(systems[t.system], t.code, t.display) for t in data.scale_totals
        },
        adhd=data.conditions["adhd"],
        agents=_agents(data, systems),
        routes={k: Coding(systems["snomed"], r.code, r.display) for k, r in data.routes.items()},
        procedures={
            k: Coding(systems[p.system], p.code, p.display) for k, p in data.procedures.items()
        },
        issue_severity=dict(data.detected_issue_severity),
    )


@cache
def load_fhir_codes() -> FhirCodes:
    """fhir_codes.yaml, validated and resolved (cached for the process)."""
    return parse_fhir_codes(load_yaml("fhir_codes.yaml"))
