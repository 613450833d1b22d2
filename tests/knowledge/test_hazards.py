"""The safety case: every safety rule of the knowledge is named by a hazard control, every rule
and test a hazard names exists, the safety case document is current, and a broken hazard log
does not load. Fast: test files are read with the ast module, nothing is collected or run."""

from __future__ import annotations

import ast
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
import yaml

from ketacare.clinical import dosing
from ketacare.clinical.safety_rules import rule_inventory
from ketacare.knowledge.catalog import load_catalog
from ketacare.knowledge.eligibility_defs import load_contraindications
from ketacare.knowledge.hazard_defs import (
    RULE_NAMESPACES,
    load_hazards,
    parse_hazard_log,
)
from ketacare.knowledge.instrument_defs import reference_ids
from ketacare.knowledge.protocol_defs import load_monitoring
from ketacare.reports.safety_case_doc import render_safety_case_markdown

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "safety-case.md"
HAZARDS = "src/ketacare/knowledge/hazards.yaml"


@cache
def _tests_in(relative: str) -> frozenset[str] | None:
    """Test names of one file (``name`` or ``Class::name``), or None when there is no file."""
    path = REPO / relative
    if not path.is_file():
        return None
    names: set[str] = set()
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, functions) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names |= {
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, functions) and item.name.startswith("test")
            }
    return frozenset(names)


# --- (a) the tests a hazard names exist --------------------------------------------------------


def test_every_test_a_hazard_names_exists() -> None:
    missing: list[str] = []
    for hazard in load_hazards().hazards:
        for number, control in enumerate(hazard.controls, 1):
            for node_id in control.tests:
                path, name = node_id.split("::", 1)
                names = _tests_in(path)
                if names is None:
                    missing.append(f"{hazard.id} control {number}: {node_id} (no file {path})")
                elif name not in names:
                    missing.append(f"{hazard.id} control {number}: {node_id} (no test {name})")
    assert not missing, (
        f"{HAZARDS} names tests that do not exist; correct or remove these node ids:\n  "
        + "\n  ".join(missing)
    )


# --- (b) every safety rule is named by a hazard ------------------------------------------------


def test_every_safety_rule_is_named_by_a_hazard() -> None:
    named = load_hazards().rules()
    missing = [rule for rule_id, rule in rule_inventory().items() if rule_id not in named]
    assert not missing, (
        f"safety rules no hazard names; add each id to the `rules` of a control (with the tests "
        f"that prove it) of the hazard it guards against in {HAZARDS}, or add a hazard:\n  "
        + "\n  ".join(f"{r.id}  ({r.where}: {r.label})" for r in missing)
    )


# --- (c) every rule a control names exists -----------------------------------------------------


def test_every_rule_a_control_names_exists() -> None:
    inventory = rule_inventory()
    dangling = [
        f"{hazard.id} control {number}: {rule}"
        for hazard in load_hazards().hazards
        for number, control in enumerate(hazard.controls, 1)
        for rule in control.rules
        if rule not in inventory
    ]
    assert not dangling, (
        f"{HAZARDS} names rules that are not in the knowledge (renamed, removed, or not a "
        "safety rule); use the id the rule has now:\n  " + "\n  ".join(dangling)
    )


# --- the inventory is read from the knowledge --------------------------------------------------


def test_the_inventory_holds_each_kind_of_safety_rule_and_nothing_else() -> None:
    inventory = rule_inventory()
    assert {rule.namespace for rule in inventory.values()} == set(RULE_NAMESPACES)
    assert all(rule_id.startswith(f"{r.namespace}:") for rule_id, r in inventory.items())
    for present in (
        "alert:spo2_critical",
        "gate:bp:refuse",
        "gate:bp:caution",
        "discharge:bp_no_alert_band",
        "precheck:escort",
        "exclusion:ketamine_hypersensitivity",
        "eligibility:bp_refuse",
        "interaction:ketamine-theophylline",
        "interaction:ketamine-opioids",
        "dosing:weight_stale",
        "dosing:first_dose",
    ):
        assert present in inventory, present
    for absent in (
        "gate:bp:proceed",  # proceeding is not a safety rule
        "exclusion:glaucoma",  # a caution
        "eligibility:bp_hold",  # a caution
        "interaction:ketamine-ssri",  # minor
        "interaction:ketamine-psychostimulants",  # moderate
    ):
        assert absent not in inventory, absent


def test_a_rule_added_to_the_knowledge_joins_the_inventory_by_itself() -> None:
    monitoring = load_monitoring()
    extra_alert = monitoring.alerts[0].model_copy(update={"code": "diastolic_low"})
    monitoring = monitoring.model_copy(update={"alerts": (*monitoring.alerts, extra_alert)})
    contraindications = load_contraindications()
    glaucoma = next(c for c in contraindications.conditions if c.code == "glaucoma")
    contraindications = contraindications.model_copy(
        update={
            "conditions": [
                *contraindications.conditions,
                glaucoma.model_copy(
                    update={"code": "angle_closure", "classification": "exclusion"}
                ),
            ]
        }
    )
    catalog = load_catalog()
    minor = catalog.rule("ketamine-ssri")
    by_route = minor.model_copy(
        update={"id": "oral-only-major", "route_severity": {"oral": "major"}}
    )
    catalog = replace(catalog, rules=(*catalog.rules, by_route))
    inventory = rule_inventory(
        monitoring=monitoring,
        contraindications=contraindications,
        catalog=catalog,
        refusal_codes=(*dosing.REFUSAL_CODES, "interval_too_short"),
    )
    new = set(inventory) - set(rule_inventory())
    assert new == {
        "alert:diastolic_low",
        "exclusion:angle_closure",
        "interaction:oral-only-major",  # major on one route is enough
        "dosing:interval_too_short",
    }


def test_the_dosing_refusal_codes_are_the_ones_the_calculator_uses() -> None:
    source = Path(dosing.__file__).read_text(encoding="utf-8")
    used: set[str] = set()
    not_literal: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "refuse"
        ):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                used.add(first.value)
            else:
                not_literal.append(node.lineno)
    assert not not_literal, f"dosing.py refuses with a code that is not a literal: {not_literal}"
    listed = set(dosing.REFUSAL_CODES)
    assert used == listed, (
        "clinical/dosing.py RefusalCode must list exactly the codes the calculator refuses with; "
        f"used but not listed: {sorted(used - listed)}; listed but never used: "
        f"{sorted(listed - used)}"
    )


# --- ratings and the document ------------------------------------------------------------------


def test_ratings_are_read_from_the_matrix() -> None:
    log = load_hazards()
    method = log.method
    assert method.rating("major", "high") == 4
    assert method.rating("minor", "very_low") == 1
    assert method.rating("catastrophic", "very_high") == 5
    for hazard in log.hazards:
        assert log.rating_before(hazard) == method.rating(
            hazard.before.severity, hazard.before.likelihood
        )
        assert log.rating_after(hazard) <= log.rating_before(hazard)


def _render() -> str:
    return render_safety_case_markdown(load_hazards(), rule_inventory(), load_catalog().references)


def test_the_safety_case_document_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == _render(), "run: ketacare knowledge docs"


def test_the_document_shows_every_hazard_control_rule_and_test() -> None:
    text = _render()
    log = load_hazards()
    for hazard in log.hazards:
        assert f"{hazard.id}: {hazard.title}" in text
        row = f"| [{hazard.id}](#{hazard.id.lower()}) |"
        assert f"{log.rating_before(hazard)} → {log.rating_after(hazard)} |" in text.split(row)[1]
        for test in hazard.tests():
            assert f"Test `{test}`" in text
    for rule_id in rule_inventory():
        assert f"Rule `{rule_id}`" in text and f"| `{rule_id}` |" in text
    assert "| Very high | 3 | 4 | 4 | 5 | 5 |" in text
    assert "- `dcb0129`: " in text
    assert "missing" not in text.split("## References", 1)[1]


# --- (d) a broken hazard log is refused --------------------------------------------------------

VALID = """
method:
  scope: Dosing sessions.
  method: Severity and likelihood before and after the controls.
  severity:
    - {id: minor, label: Minor, definition: d}
    - {id: significant, label: Significant, definition: d}
    - {id: considerable, label: Considerable, definition: d}
    - {id: major, label: Major, definition: d}
    - {id: catastrophic, label: Catastrophic, definition: d}
  likelihood:
    - {id: very_low, label: Very low, definition: d}
    - {id: low, label: Low, definition: d}
    - {id: medium, label: Medium, definition: d}
    - {id: high, label: High, definition: d}
    - {id: very_high, label: Very high, definition: d}
  matrix:
    very_high: [3, 4, 4, 5, 5]
    high: [2, 3, 3, 4, 5]
    medium: [2, 2, 3, 3, 4]
    low: [1, 2, 2, 3, 4]
    very_low: [1, 1, 2, 2, 3]
  ratings:
    - {rating: 1, label: Acceptable, action: none}
    - {rating: 2, label: Acceptable, action: review}
    - {rating: 3, label: Undesirable, action: reduce}
    - {rating: 4, label: Unacceptable, action: control}
    - {rating: 5, label: Unacceptable, action: eliminate}
  sources: [dcb0129]
hazards:
  - id: H-001
    title: Stale weight
    what_can_go_wrong: A weight measured 45 days ago is used.
    cause: The patient was not weighed again.
    effect: Overdose.
    before: {severity: significant, likelihood: high}
    after: {severity: significant, likelihood: very_low}
    controls:
      - kind: hard_stop
        text: A weight older than 30 days refuses the order.
        rules: [dosing:weight_stale]
        tests: [tests/clinical/test_dosing.py::test_hard_stops]
    residual_risk_note: A recent weight may still be wrong.
    sources: [ketacare-clinic-convention]
"""
HAZARD_ENTRY = VALID.split("hazards:\n", 1)[1]
CONTROLS = VALID[VALID.index("    controls:\n") : VALID.index("    residual_risk_note")]


def test_the_small_valid_log_loads_with_its_ratings() -> None:
    log = parse_hazard_log(yaml.safe_load(VALID), reference_ids())
    (hazard,) = log.hazards
    assert (log.rating_before(hazard), log.rating_after(hazard)) == (3, 1)
    assert hazard.rules() == {"dosing:weight_stale"}


BROKEN = [
    # (text replaced, replacement, what the error names)
    ("sources: [ketacare-clinic-convention]", "sources: [no-such-paper]", "no-such-paper"),
    ("sources: [dcb0129]", "sources: [iso-9999]", "not in references.yaml"),
    (
        "after: {severity: significant, likelihood: very_low}",
        "after: {severity: significant, likelihood: very_high}",
        "likelihood after the controls",
    ),
    (
        "after: {severity: significant, likelihood: very_low}",
        "after: {severity: major, likelihood: very_low}",
        "severity after the controls",
    ),
    ("before: {severity: significant,", "before: {severity: fatal,", "before.severity"),
    ("- id: H-001", "- id: H-1", "hazards.0.id"),
    ("kind: hard_stop", "kind: stop", "controls.0.kind"),
    ("rules: [dosing:weight_stale]", "rules: [dose:weight_stale]", "controls.0.rules.0"),
    ("rules: [dosing:weight_stale]", "rules: [weight_stale]", "controls.0.rules.0"),
    (
        "tests: [tests/clinical/test_dosing.py::test_hard_stops]",
        "tests: ['tests/clinical/test_dosing.py::test_hard_stops[weight]']",
        "tests.0",
    ),
    ("tests: [tests/clinical/", "tests: [clinical/", "tests.0"),
    (
        "tests: [tests/clinical/test_dosing.py::test_hard_stops]",
        "tests: [tests/a.py::test_b, tests/a.py::test_b]",
        "tests repeated in one control",
    ),
    (CONTROLS, "    controls: []\n", "no controls"),
    ("residual_risk_note: A recent weight may still be wrong.", "owner: CSO", "residual_risk_note"),
    ("    residual_risk_note:", "    owner: CSO\n    residual_risk_note:", "owner"),
    ("effect: Overdose.", "effect: ''", "effect"),
    ("low: [1, 2, 2, 3, 4]", "low: [1, 2, 2, 3, 1]", "must not fall as severity rises"),
    ("very_low: [1, 1, 2, 2, 3]", "very_low: [1, 1, 2, 2, 5]", "must not fall as likelihood rises"),
    ("high: [2, 3, 3, 4, 5]", "high: [2, 3, 3, 4, 6]", "ratings run from 1 to 5"),
    ("medium: [2, 2, 3, 3, 4]", "medium: [2, 2, 3, 3]", "one per severity"),
    ("    very_low: [1, 1, 2, 2, 3]\n", "", "no row for likelihood"),
    (
        "- {id: minor, label: Minor, definition: d}\n    - {id: significant,",
        "- {id: significant, label: Minor, definition: d}\n    - {id: minor,",
        "severity levels must be",
    ),
    ("- {rating: 5, label: Unacceptable, action: eliminate}", "", "ratings must describe"),
    ("hazards:\n", f"hazards:\n{HAZARD_ENTRY}", "hazard ids repeated"),
    (VALID.split("hazards:", 1)[1], " []\n", "hazards"),
]


@pytest.mark.parametrize(("old", "new", "message"), BROKEN)
def test_a_broken_log_is_refused_naming_what_is_wrong(old: str, new: str, message: str) -> None:
    assert old in VALID, f"the case no longer applies: {old!r}"
    raw = yaml.safe_load(VALID.replace(old, new, 1))
    with pytest.raises(ValueError, match=message):
        parse_hazard_log(raw, reference_ids())
