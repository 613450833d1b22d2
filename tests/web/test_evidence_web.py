"""The Evidence page: every reference with its evidence level and what cites it; a reference
cited by nothing says so. Checked against the knowledge files read as plain text."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.knowledge import KNOWLEDGE_DIR, knowledge_files
from ketacare.knowledge.catalog import load_catalog
from ketacare.web.ui.evidence import evidence_index
from tests.conftest import ClinicWorld, ui_login


def _section(page: str, ref_id: str) -> str:
    start = page.index(f'id="ref-{ref_id}"')
    end = page.find("</section>", start)
    return html.unescape(page[start:end])


def _cited_in_files() -> set[str]:
    """Reference ids that appear in any knowledge file other than references.yaml."""
    text = "\n".join(
        p.read_text(encoding="utf-8")
        for p in knowledge_files()
        if p.relative_to(KNOWLEDGE_DIR).as_posix() != "references.yaml"
    )
    return {
        ref_id
        for ref_id in load_catalog().references
        if re.search(rf"\b{re.escape(ref_id)}\b", text)
    }


def test_every_reference_is_listed_with_its_level_and_citers(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    ui_login(client, "a-researcher")  # no patient data here: every signed-in role may read it
    page = client.get("/evidence")
    assert page.status_code == 200
    assert '<a href="/evidence">Evidence</a>' in page.text
    references = load_catalog().references
    for ref_id, ref in references.items():
        section = _section(page.text, ref_id)
        assert ref.title in section
        assert f'<strong class="evidence">{ref.evidence}</strong>' in section
        if ref.pmid:
            assert f"https://pubmed.ncbi.nlm.nih.gov/{ref.pmid}/" in section
        if ref.doi:
            assert ref.doi in section
    opioids = _section(page.text, "ketalar-us-pi-s7-cns-depressants")
    assert "Interaction rules" in opioids and "ketamine-opioids" in opioids
    faq = _section(page.text, "adhd-ketamine-no-trials")
    assert "Patient information sheet and FAQ" in faq and "does-it-help-adhd" in faq
    assert "Outcome definitions" in faq and "Protocols" in faq


def test_what_nothing_cites_is_listed_as_such_and_nothing_else_is(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    cited = _cited_in_files()
    index = {e.reference.id: e for e in evidence_index()}
    assert {i for i, e in index.items() if e.cited} == cited
    ui_login(client, "a-nurse")
    page = client.get("/evidence?uncited=true")
    assert page.status_code == 200
    shown = set(re.findall(r'<section class="card evidence-ref" id="ref-([^"]+)"', page.text))
    assert shown == set(index) - cited
    for ref_id in shown:
        assert "Cited by nothing." in _section(page.text, ref_id)


def test_every_kind_of_rule_is_named_as_a_citer() -> None:
    categories = {c for e in evidence_index() for c in e.cited_by}
    assert {
        "Interaction rules",
        "Protocols",
        "Monitoring settings",
        "Alert rules",
        "Discharge criteria",
        "Pre-dose checks",
        "Adverse events",
        "Instruments",
        "Therapy vocabulary",
        "Outcome definitions",
        "Patient information sheet and FAQ",
    } <= categories
    assert not [c for c in categories if c.startswith("Other knowledge")]


def test_the_level_filter_shows_only_that_level_and_a_bad_level_is_a_422(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    ui_login(client, "a-admin")
    page = client.get("/evidence?level=M")
    shown = set(re.findall(r'<section class="card evidence-ref" id="ref-([^"]+)"', page.text))
    expected = {i for i, r in load_catalog().references.items() if r.evidence == "M"}
    assert shown == expected and shown
    assert client.get("/evidence?level=X").status_code == 422


def test_the_page_needs_a_signed_in_user(client: TestClient) -> None:
    response = client.get("/evidence")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/evidence"
    assert 'href="/evidence"' not in client.get("/login").text
