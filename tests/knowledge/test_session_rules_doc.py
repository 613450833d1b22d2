"""The session rules document is generated from the knowledge files and kept current."""

from __future__ import annotations

from pathlib import Path

from ketacare.knowledge.catalog import load_catalog
from ketacare.knowledge.protocol_defs import load_monitoring, load_protocols
from ketacare.knowledge.session_defs import load_session_checks
from ketacare.reports.session_rules_doc import render_session_rules_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "session-rules.md"


def render() -> str:
    return render_session_rules_markdown(
        load_protocols(), load_monitoring(), load_catalog().references, load_session_checks()
    )


def test_the_session_rules_document_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run: ketacare knowledge docs"


def test_it_shows_every_gate_band_alert_and_cited_reference() -> None:
    text = render()
    assert "| refuse | SBP >= 180 or DBP >= 110 | none |" in text
    assert "| hold | SBP >= 160 or DBP >= 100 | prescriber override with reason |" in text
    for rule in load_monitoring().alerts:
        assert f"`{rule.code}`" in text
    assert "- `sanacora-2017`: " in text
    assert "missing" not in text.split("## References", 1)[1]


def test_it_lists_the_pre_dose_checks_and_adverse_events() -> None:
    text = render()
    assert "| Escort home arranged | no | hold |" in text
    assert "| Pregnancy status | unknown | hold |" in text
    assert "highest severity contraindicated | refuse" in text
    assert "named in the label: CNS depressant" in text and "class `cns_depressant`" in text
    assert "| Interval since the previous dose | too soon | refuse |" in text
    assert "| `active_ideation` | CBT risk check | critical |" in text
    for event in load_session_checks().adverse_events:
        assert f"| `{event.code}` |" in text
    assert "- `ich-e2a`: " in text
