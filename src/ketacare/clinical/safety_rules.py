"""The rule inventory: every safety rule of the knowledge base that the safety case must cover.

Read from the loaded knowledge, never listed by hand, so a rule added to a knowledge file joins
the inventory by itself and the hazard-log tests then ask for a hazard that names it. A rule id
is ``namespace:key``:

- ``alert:<code>``: an in-session alert rule (monitoring.yaml ``alerts``);
- ``gate:bp:<band>``: a band of the pre-dose blood-pressure gate other than proceed;
- ``discharge:<id>``: a discharge criterion (monitoring.yaml ``discharge``);
- ``precheck:<id>``: a pre-dose check (session_checks.yaml ``prechecks``);
- ``exclusion:<code>``: a history condition of class exclusion (contraindications.yaml);
- ``eligibility:<code>``: an eligibility reason of severity exclusion (eligibility.yaml);
- ``interaction:<rule id>``: an interaction rule graded contraindicated or major for any agent
  or route (interactions.yaml);
- ``dosing:<code>``: a hard stop of the dose calculator (``clinical.dosing.REFUSAL_CODES``).

Pure: the knowledge is loaded by the caller or, by default, from the package.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ketacare.clinical.dosing import REFUSAL_CODES
from ketacare.knowledge.catalog import Catalog, Rule, load_catalog
from ketacare.knowledge.eligibility_defs import (
    Contraindications,
    EligibilityKnowledge,
    load_contraindications,
    load_eligibility,
)
from ketacare.knowledge.hazard_defs import RULE_NAMESPACES as NAMESPACES
from ketacare.knowledge.protocol_defs import MonitoringDef, load_monitoring
from ketacare.knowledge.session_defs import SessionChecksDef, load_session_checks

__all__ = ["NAMESPACES", "SafetyRule", "rule_inventory"]

# Interaction severities that make a rule a safety rule the safety case must cover.
_SAFETY_SEVERITIES = frozenset({"contraindicated", "major"})


@dataclass(frozen=True)
class SafetyRule:
    """One rule of the inventory: its id, where it lives and what it does, in a few words."""

    id: str
    namespace: str
    where: str
    label: str


def _interaction_label(rule: Rule) -> str:
    severities = {rule.severity, *rule.route_severity.values()}
    worst = "contraindicated" if "contraindicated" in severities else "major"
    return f"{rule.title} ({worst})"


def _rules(
    monitoring: MonitoringDef,
    checks: SessionChecksDef,
    contraindications: Contraindications,
    eligibility: EligibilityKnowledge,
    catalog: Catalog,
    refusal_codes: Iterable[str],
) -> Iterator[SafetyRule]:
    for alert in monitoring.alerts:
        what = f"{alert.field.replace('_', ' ')}{' rise' if alert.kind == 'rise' else ''}"
        yield SafetyRule(
            f"alert:{alert.code}",
            "alert",
            "monitoring.yaml alerts",
            f"{what} {alert.comparison.replace('_', ' ')} {monitoring.value(alert.setting):g} "
            f"({alert.severity})",
        )
    for band in monitoring.bp_gate:
        if band.band != "proceed":
            action = (
                "prescriber override with reason"
                if band.override_allowed
                else "acknowledgement"
                if band.acknowledgement_required
                else "no override"
            )
            yield SafetyRule(
                f"gate:bp:{band.band}",
                "gate",
                "monitoring.yaml bp_gate",
                f"pre-dose blood pressure {band.band} band ({action})",
            )
    for criterion in monitoring.discharge:
        yield SafetyRule(
            f"discharge:{criterion.id}", "discharge", "monitoring.yaml discharge", criterion.label
        )
    for check in checks.prechecks:
        yield SafetyRule(
            f"precheck:{check.id}", "precheck", "session_checks.yaml prechecks", check.label
        )
    for condition in contraindications.conditions:
        if condition.classification == "exclusion":
            yield SafetyRule(
                f"exclusion:{condition.code}",
                "exclusion",
                "contraindications.yaml",
                condition.label,
            )
    for code, reason in eligibility.reasons.items():
        if reason.severity == "exclusion":
            yield SafetyRule(
                f"eligibility:{code}",
                "eligibility",
                "eligibility.yaml reasons",
                f"decision ineligible: {code.replace('_', ' ')}",
            )
    for rule in catalog.rules:
        if {rule.severity, *rule.route_severity.values()} & _SAFETY_SEVERITIES:
            yield SafetyRule(
                f"interaction:{rule.id}",
                "interaction",
                "interactions.yaml",
                _interaction_label(rule),
            )
    for code in dict.fromkeys(refusal_codes):
        yield SafetyRule(
            f"dosing:{code}",
            "dosing",
            "clinical/dosing.py REFUSAL_CODES",
            f"dose order refused: {code.replace('_', ' ')}",
        )


def rule_inventory(
    *,
    monitoring: MonitoringDef | None = None,
    checks: SessionChecksDef | None = None,
    contraindications: Contraindications | None = None,
    eligibility: EligibilityKnowledge | None = None,
    catalog: Catalog | None = None,
    refusal_codes: Iterable[str] = REFUSAL_CODES,
) -> dict[str, SafetyRule]:
    """Every safety rule by id, in namespace order (the packaged knowledge unless given)."""
    rules = _rules(
        monitoring or load_monitoring(),
        checks or load_session_checks(),
        contraindications or load_contraindications(),
        eligibility or load_eligibility(),
        catalog or load_catalog(),
        refusal_codes,
    )
    return {rule.id: rule for rule in rules}
