"""docs/safety-case.md, generated from the hazard log, the rule inventory and the references
(pure: data in, text out)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from ketacare.clinical.safety_rules import SafetyRule
from ketacare.knowledge.catalog import Reference
from ketacare.knowledge.hazard_defs import LIKELIHOODS, SEVERITIES, HazardDef, HazardLog, RiskDef
from ketacare.reports.rules_doc import _cell, _citation

KIND_LABEL = {
    "hard_stop": "Hard stop",
    "gate": "Gate",
    "alert": "Alert",
    "exclusion": "Exclusion",
    "check": "Check",
    "ui": "User interface",
    "data_integrity": "Data integrity",
    "access": "Access",
}


def _code(items: Iterable[str]) -> str:
    return ", ".join(f"`{i}`" for i in items)


def _risk(log: HazardLog, risk: RiskDef) -> str:
    method = log.method
    rating = method.rating(risk.severity, risk.likelihood)
    return (
        f"**{rating}** {method.rating_label(rating)} ({method.severity_label(risk.severity)} × "
        f"{method.likelihood_label(risk.likelihood)})"
    )


def _method(log: HazardLog) -> list[str]:
    method = log.method
    lines = [
        "## Scope",
        "",
        _cell(method.scope),
        "",
        "## Method",
        "",
        _cell(method.method),
        "",
        f"Sources: {_code(method.sources)}.",
        "",
        "### Severity (effect on the patient)",
        "",
        "| Severity | Definition |",
        "|---|---|",
    ]
    lines += [f"| {level.label} | {_cell(level.definition)} |" for level in method.severity]
    lines += ["", "### Likelihood", "", "| Likelihood | Definition |", "|---|---|"]
    lines += [f"| {level.label} | {_cell(level.definition)} |" for level in method.likelihood]
    lines += [
        "",
        "### Risk matrix",
        "",
        "| Likelihood \\ Severity | " + " | ".join(level.label for level in method.severity) + " |",
        "|---" * (len(SEVERITIES) + 1) + "|",
    ]
    for likelihood in reversed(LIKELIHOODS):
        cells = " | ".join(str(c) for c in method.matrix[likelihood])  # type: ignore[index]
        lines.append(f"| {method.likelihood_label(likelihood)} | {cells} |")
    lines += ["", "| Rating | Meaning | Action |", "|---|---|---|"]
    lines += [f"| {r.rating} | {_cell(r.label)} | {_cell(r.action)} |" for r in method.ratings]
    return lines


def _summary(log: HazardLog) -> list[str]:
    lines = [
        "## Summary",
        "",
        "| Hazard | Title | Risk before → after | Controls | Known gaps |",
        "|---|---|---|---|---|",
    ]
    for h in log.hazards:
        before, after = log.rating_before(h), log.rating_after(h)
        lines.append(
            f"| [{h.id}](#{h.id.lower()}) | {_cell(h.title)} | {before} → {after} "
            f"| {len(h.controls)} | {len(h.gaps) or ''} |"
        )
    return lines


def _hazard(log: HazardLog, h: HazardDef, inventory: Mapping[str, SafetyRule]) -> list[str]:
    lines = [
        f'### <a id="{h.id.lower()}"></a>{h.id}: {_cell(h.title)}',
        "",
        f"- What can go wrong: {_cell(h.what_can_go_wrong)}",
        f"- Cause: {_cell(h.cause)}",
        f"- Effect on the patient: {_cell(h.effect)}",
        f"- Risk before controls: {_risk(log, h.before)}",
        f"- Risk after controls: {_risk(log, h.after)}",
        "",
    ]
    if h.controls:
        lines += ["Controls:", ""]
    else:
        lines += ["Controls: none yet.", ""]
    for number, control in enumerate(h.controls, 1):
        lines.append(f"{number}. {KIND_LABEL[control.kind]}: {_cell(control.text)}")
        for rule in control.rules:
            known = inventory.get(rule)
            lines.append(f"   - Rule `{rule}`" + (f": {_cell(known.label)}" if known else ""))
        if control.tests:
            lines += [f"   - Test `{test}`" for test in control.tests]
        else:
            lines.append("   - Test: none (a gap)")
    lines += ["", f"Residual risk: {_cell(h.residual_risk_note)}", ""]
    if h.gaps:
        lines += ["Known gaps:", ""]
        lines += [f"- {_cell(gap)}" for gap in h.gaps]
        lines.append("")
    lines += [f"Sources: {_code(h.sources)}.", ""]
    return lines


def _gaps(log: HazardLog) -> list[str]:
    lines = [
        "## Open gaps",
        "",
        "What the log knows to be missing: controls not built yet, and controls no test proves.",
        "",
    ]
    found = False
    for h in log.hazards:
        for gap in h.gaps:
            lines.append(f"- {h.id}: {_cell(gap)}")
            found = True
        for number, control in enumerate(h.controls, 1):
            if not control.tests:
                lines.append(f"- {h.id}, control {number} ({KIND_LABEL[control.kind]}): no test.")
                found = True
    if not found:
        lines.append("None.")
    return lines


def _inventory(log: HazardLog, inventory: Mapping[str, SafetyRule]) -> list[str]:
    hazards_of: dict[str, list[str]] = defaultdict(list)
    for h in log.hazards:
        for rule in sorted(h.rules()):
            hazards_of[rule].append(h.id)
    lines = [
        "## Rule inventory",
        "",
        "Every safety rule of the knowledge base, read from the knowledge files (alert rules, "
        "blood-pressure gate bands, discharge criteria, pre-dose checks, exclusions, eligibility "
        "exclusions, contraindicated and major interactions, dose-order hard stops), and the "
        "hazards whose controls rely on it.",
        "",
        "| Rule | Where | What | Hazards |",
        "|---|---|---|---|",
    ]
    for rule in inventory.values():
        named = ", ".join(f"[{i}](#{i.lower()})" for i in hazards_of.get(rule.id, ())) or "none"
        lines.append(f"| `{rule.id}` | {rule.where} | {_cell(rule.label)} | {named} |")
    return lines


def render_safety_case_markdown(
    log: HazardLog,
    inventory: Mapping[str, SafetyRule],
    references: Mapping[str, Reference],
) -> str:
    lines = [
        "# Safety case: hazard log and controls",
        "",
        "<!-- Generated by `ketacare knowledge docs` from src/ketacare/knowledge/hazards.yaml, "
        "the rule inventory (src/ketacare/clinical/safety_rules.py) and references.yaml. "
        "Do not edit by hand. -->",
        "",
        f"{len(log.hazards)} hazards, {sum(len(h.controls) for h in log.hazards)} controls, "
        f"{len(log.tests())} tests, {len(inventory)} safety rules. The test suite fails when a "
        "safety rule of the knowledge is named by no hazard, when a hazard names a rule or a "
        "test that does not exist, or when this document is out of date.",
        "",
        *_method(log),
        "",
        *_summary(log),
        "",
        "## Hazards",
        "",
    ]
    for hazard in log.hazards:
        lines += _hazard(log, hazard, inventory)
    lines += [*_gaps(log), "", *_inventory(log, inventory), "", "## References", ""]
    for ref_id in sorted(log.all_source_ids()):
        ref = references.get(ref_id)
        lines.append(f"- `{ref_id}`: {_citation(ref) if ref else 'missing'}")
    lines.append("")
    return "\n".join(lines)
