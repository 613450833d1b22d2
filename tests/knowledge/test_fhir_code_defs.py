"""fhir_codes.yaml: loads, resolves to system URLs, and refuses inconsistent content."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ketacare.knowledge import load_yaml
from ketacare.knowledge.fhir_code_defs import load_fhir_codes, parse_fhir_codes


def raw() -> dict[str, Any]:
    return copy.deepcopy(load_yaml("fhir_codes.yaml"))


def test_the_codes_resolve_to_loinc_ucum_snomed_and_rxnorm() -> None:
    codes = load_fhir_codes()
    assert [(c.code, codes.vitals["spo2"].unit) for c in codes.vitals["spo2"].codings] == [
        ("59408-5", "%"),
        ("2708-6", "%"),
    ]
    assert codes.vitals["systolic"].codings[0].code == "8480-6"
    assert codes.vitals["blood_pressure"].unit is None
    assert (codes.vitals["weight_kg"].unit, codes.vitals["height_cm"].unit) == ("kg", "cm")
    assert codes.scale_totals["phq9"].code == "44261-6"
    assert codes.scale_totals["gad7"].system == "http://loinc.org"
    assert codes.is_local(codes.scale_totals["asrs"])
    assert codes.agents["ketamine"][0].code == "6130"  # from drugs.yaml
    assert codes.routes["iv"].code == "47625008"
    assert codes.issue_severity == {
        "contraindicated": "high",
        "major": "high",
        "moderate": "moderate",
        "minor": "low",
    }


def _total(data: dict[str, Any], instrument: str) -> dict[str, Any]:
    return next(t for t in data["scale_totals"] if t["instrument"] == instrument)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: _total(d, "phq9").update(code="44249-1"), "LOINC total is 44261-6"),
        (lambda d: _total(d, "asrs").update(system="loinc"), "record it in instruments/"),
        (lambda d: d["scale_totals"].pop(), "scale_totals must cover exactly"),
        (lambda d: _total(d, "gad7").update(sources=["no-such-source"]), "no-such-source"),
        (lambda d: d["vital_signs"].update(spo2="pulse_ox"), "no code 'pulse_ox'"),
        (lambda d: d["routes"].pop("intranasal"), "no code for 'intranasal'"),
        (lambda d: d["detected_issue_severity"].pop("minor"), "detected_issue_severity"),
        (lambda d: d["agents"]["ketamine"].update(rxnorm={"code": "1", "display": "x"}), "RxCUI"),
    ],
)
def test_inconsistent_content_is_refused(change: Any, message: str) -> None:
    data = raw()
    change(data)
    with pytest.raises(ValueError, match=message):
        parse_fhir_codes(data)
