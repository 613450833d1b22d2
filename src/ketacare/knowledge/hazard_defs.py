"""Typed loader of ``hazards.yaml``: the hazard log of the safety case (DCB0129 / ISO 14971).

Validated at load: the severity and likelihood scales and the risk matrix are complete and
monotone, every hazard's risk rating is computed from the matrix (never typed in), the risk after
the controls is never above the risk before them, rule and test ids have their shape, and every
source is a known reference. Whether each named rule and test exists is checked by the tests of
the safety case, which read the rule inventory and the test files.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids

__all__ = [
    "CONTROL_KINDS",
    "LIKELIHOODS",
    "RULE_NAMESPACES",
    "SEVERITIES",
    "ControlDef",
    "HazardDef",
    "HazardLog",
    "MethodDef",
    "RiskDef",
    "load_hazards",
    "parse_hazard_log",
]

Severity = Literal["minor", "significant", "considerable", "major", "catastrophic"]
Likelihood = Literal["very_low", "low", "medium", "high", "very_high"]
ControlKind = Literal[
    "hard_stop", "gate", "alert", "exclusion", "check", "ui", "data_integrity", "access"
]
# Least to most, as the scales in the file must list them.
SEVERITIES: tuple[str, ...] = (
    "minor",
    "significant",
    "considerable",
    "major",
    "catastrophic",
)
LIKELIHOODS: tuple[str, ...] = ("very_low", "low", "medium", "high", "very_high")
CONTROL_KINDS: tuple[str, ...] = (
    "hard_stop",
    "gate",
    "alert",
    "exclusion",
    "check",
    "ui",
    "data_integrity",
    "access",
)
# Namespaces of the rule inventory (clinical/safety_rules.py); a control names rules as
# `namespace:key`, e.g. `alert:spo2_critical`, `gate:bp:refuse`, `dosing:weight_stale`.
RULE_NAMESPACES: tuple[str, ...] = (
    "alert",
    "gate",
    "discharge",
    "precheck",
    "exclusion",
    "eligibility",
    "interaction",
    "dosing",
)

HazardId = Annotated[str, StringConstraints(pattern=r"^H-\d{3}$")]
RuleId = Annotated[
    str,
    StringConstraints(pattern=rf"^({'|'.join(RULE_NAMESPACES)}):[a-z0-9][a-z0-9_.:-]*$"),
]
# A pytest node id without the parameter part: file::function or file::Class::function.
TestId = Annotated[
    str,
    StringConstraints(pattern=r"^tests/[A-Za-z0-9_/]+\.py::([A-Za-z_]\w*::)?[A-Za-z_]\w*$"),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelDef(_Model):
    id: str
    label: Text
    definition: Text


class RatingDef(_Model):
    rating: int = Field(ge=1, le=5)
    label: Text
    action: Text


class MethodDef(_Model):
    """Scope, scales and the risk matrix the hazards are rated with."""

    scope: Text
    method: Text
    severity: tuple[LevelDef, ...]
    likelihood: tuple[LevelDef, ...]
    # Rating by likelihood (row), one column per severity in the order of `severity`.
    matrix: dict[Likelihood, tuple[int, ...]]
    ratings: tuple[RatingDef, ...]
    sources: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        for name, levels, expected in (
            ("severity", self.severity, SEVERITIES),
            ("likelihood", self.likelihood, LIKELIHOODS),
        ):
            ids = tuple(level.id for level in levels)
            if ids != expected:
                raise ValueError(f"{name} levels must be, least first: {list(expected)}; got {ids}")
        missing = [row for row in LIKELIHOODS if row not in self.matrix]
        if missing:
            raise ValueError(f"matrix: no row for likelihood {missing}")
        for row, cells in self.matrix.items():
            if len(cells) != len(SEVERITIES):
                raise ValueError(
                    f"matrix row {row}: {len(cells)} cells, one per severity expected "
                    f"({len(SEVERITIES)})"
                )
            if any(not 1 <= c <= 5 for c in cells):
                raise ValueError(f"matrix row {row}: ratings run from 1 to 5, got {list(cells)}")
            if list(cells) != sorted(cells):
                raise ValueError(f"matrix row {row}: the rating must not fall as severity rises")
        for column, severity in enumerate(SEVERITIES):
            ratings = [self.matrix[row][column] for row in LIKELIHOODS]  # type: ignore[index]
            if ratings != sorted(ratings):
                raise ValueError(
                    f"matrix column {severity}: the rating must not fall as likelihood rises"
                )
        if tuple(r.rating for r in self.ratings) != (1, 2, 3, 4, 5):
            raise ValueError("ratings must describe 1, 2, 3, 4 and 5, in that order")
        return self

    def rating(self, severity: str, likelihood: str) -> int:
        return self.matrix[likelihood][SEVERITIES.index(severity)]  # type: ignore[index]

    def rating_label(self, rating: int) -> str:
        return self.ratings[rating - 1].label

    def severity_label(self, severity: str) -> str:
        return self.severity[SEVERITIES.index(severity)].label

    def likelihood_label(self, likelihood: str) -> str:
        return self.likelihood[LIKELIHOODS.index(likelihood)].label


class RiskDef(_Model):
    severity: Severity
    likelihood: Likelihood


class ControlDef(_Model):
    """One control: what it does, the knowledge rules it relies on, the tests that prove it."""

    kind: ControlKind
    text: Text
    rules: tuple[RuleId, ...] = ()
    tests: tuple[TestId, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for name, ids in (("rules", self.rules), ("tests", self.tests)):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            if repeated:
                raise ValueError(f"{name} repeated in one control: {repeated}")
        return self


class HazardDef(_Model):
    id: HazardId
    title: Text
    what_can_go_wrong: Text
    cause: Text
    effect: Text
    before: RiskDef
    after: RiskDef
    controls: tuple[ControlDef, ...] = ()
    residual_risk_note: Text
    # What is known to be missing (a control not built yet, a control without a test).
    gaps: tuple[Text, ...] = ()
    sources: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _risk_falls(self) -> Self:
        for axis, order in (("severity", SEVERITIES), ("likelihood", LIKELIHOODS)):
            before, after = getattr(self.before, axis), getattr(self.after, axis)
            if order.index(after) > order.index(before):
                raise ValueError(
                    f"{self.id}: {axis} after the controls ({after}) is above {axis} before "
                    f"them ({before}); controls never make a hazard worse"
                )
        if not self.controls and self.after != self.before:
            raise ValueError(
                f"{self.id}: no controls, so the risk after them must equal the risk before"
            )
        return self

    def rules(self) -> set[str]:
        return {rule for control in self.controls for rule in control.rules}

    def tests(self) -> set[str]:
        return {test for control in self.controls for test in control.tests}


class HazardLog(_Model):
    method: MethodDef
    hazards: tuple[HazardDef, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [h.id for h in self.hazards]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"hazard ids repeated: {repeated}")
        for hazard in self.hazards:
            before, after = self.rating_before(hazard), self.rating_after(hazard)
            if after > before:
                raise ValueError(
                    f"{hazard.id}: risk rating after the controls ({after}) is above the rating "
                    f"before them ({before})"
                )
        return self

    def rating_before(self, hazard: HazardDef) -> int:
        return self.method.rating(hazard.before.severity, hazard.before.likelihood)

    def rating_after(self, hazard: HazardDef) -> int:
        return self.method.rating(hazard.after.severity, hazard.after.likelihood)

    def hazard(self, hazard_id: str) -> HazardDef:
        return next(h for h in self.hazards if h.id == hazard_id)

    def rules(self) -> set[str]:
        return {rule for hazard in self.hazards for rule in hazard.rules()}

    def tests(self) -> set[str]:
        return {test for hazard in self.hazards for test in hazard.tests()}

    def all_source_ids(self) -> set[str]:
        ids = set(self.method.sources)
        for hazard in self.hazards:
            ids |= set(hazard.sources)
        return ids


def parse_hazard_log(raw: Any, known_references: set[str]) -> HazardLog:
    """Validate a parsed hazards.yaml; ``ValueError`` names what is wrong."""
    log = HazardLog.model_validate(raw)
    missing = sorted(log.all_source_ids() - known_references)
    if missing:
        raise ValueError(f"hazards.yaml: sources not in references.yaml: {missing}")
    return log


@cache
def load_hazards() -> HazardLog:
    """hazards.yaml, validated (cached for the process)."""
    return parse_hazard_log(load_yaml("hazards.yaml"), reference_ids())
