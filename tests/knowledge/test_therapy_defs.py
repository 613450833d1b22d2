"""therapy.yaml: the structured note's vocabularies, cited and validated at load."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from pydantic import ValidationError

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids
from ketacare.knowledge.therapy_defs import load_therapy, load_therapy_file

RAW = load_yaml("therapy.yaml")


def _altered(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(RAW)
    mutate(data)
    return data


def test_the_vocabularies_load_with_labels_and_sources() -> None:
    therapy = load_therapy()
    assert set(therapy.technique_codes()) >= {
        "psychoeducation",
        "organisation_planning",
        "distractibility",
        "cognitive_restructuring",
        "behavioural_activation",
        "mindfulness",
        "infusion_integration",
        "relapse_prevention",
    }
    assert therapy.attendance_codes() == ("attended", "attended_partly", "did_not_attend")
    assert therapy.risk_codes() == ("none", "passive_ideation", "active_ideation")
    known = reference_ids()
    assert therapy.all_source_ids() <= known
    for technique in therapy.techniques:
        assert technique.label and technique.sources and technique.evidence in ("V", "S", "M")


def test_the_adult_adhd_cbt_techniques_cite_the_trials() -> None:
    therapy = load_therapy()
    for code in ("psychoeducation", "organisation_planning", "distractibility"):
        technique = therapy.technique(code)
        assert technique is not None and "safren-2010" in technique.sources
    mindfulness = therapy.technique("mindfulness")
    assert mindfulness is not None and mindfulness.sources == ("zylowska-2008",)
    # Techniques without an ADHD trial behind them say so.
    for code in ("behavioural_activation", "infusion_integration", "relapse_prevention"):
        technique = therapy.technique(code)
        assert technique is not None and technique.evidence == "M" and technique.note


def test_every_result_above_none_is_urgent_and_names_the_pathway() -> None:
    check = load_therapy().risk_check
    assert {"posner-2011", "cssrs-screener-triage", "phq9-item9-followup"} <= set(check.sources)
    none, *above = check.results
    assert (none.code, none.urgent, none.text) == ("none", False, None)
    for result in above:
        assert result.urgent
        assert result.text is not None
        assert "suicide-risk pathway" in result.text and "C-SSRS" in result.text


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def test_nothing_claims_ketamine_helps_adhd() -> None:
    claims = re.compile(
        r"\b(effective|efficacy|improv\w*|benefit\w*|helps?|treats?|works?)\b", re.IGNORECASE
    )
    for text in _texts(RAW):
        if re.search(r"ketamine|infusion", text, re.IGNORECASE) and claims.search(text):
            # The only admissible mention says there is no such evidence.
            assert re.search(r"\bnot evidence\b|\bno trial\b", text, re.IGNORECASE), text
    integration = load_therapy().technique("infusion_integration")
    assert integration is not None and "adhd-ketamine-no-trials" in integration.sources


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["techniques"][0].update(sources=["no-such-ref"]), "no-such-ref"),
        (lambda d: d["techniques"][0].update(sources=[]), "sources"),
        (lambda d: d["techniques"][0].pop("label"), "label"),
        (lambda d: d["techniques"][0].update(evidence="A"), "evidence"),
        (lambda d: d["techniques"].append(copy.deepcopy(d["techniques"][0])), "repeated"),
        (lambda d: d["techniques"][0].update(code="Bad Code"), "code"),
        (lambda d: d["attendance"][2].update(status="completed"), "complete and that miss"),
        (lambda d: d["risk_check"]["results"][1].update(urgent=False), "above none is urgent"),
        (lambda d: d["risk_check"]["results"][2].update(text="Call someone."), "pathway"),
        (lambda d: d["risk_check"]["results"].reverse(), "'none'"),
        (lambda d: d.update(colour="blue"), "colour"),
    ],
)
def test_an_inconsistent_file_does_not_load(mutate: Any, message: str) -> None:
    with pytest.raises((ValidationError, ValueError)) as err:
        load_therapy_file(_altered(mutate))
    assert message in str(err.value)


def test_the_unmodified_file_loads_through_the_same_path() -> None:
    assert load_therapy_file(copy.deepcopy(RAW)) == load_therapy()
