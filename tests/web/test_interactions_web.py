"""Interaction screening through the API, the checker page and the chart panel."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.app import interactions as interactions_uc
from ketacare.app.permissions import Role
from tests.conftest import ClinicWorld, bearer, ui_login


def test_the_api_screen_follows_the_contract(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    response = client.post(
        "/api/v1/interactions/screen",
        json={"medications": ["Concerta 54 mg ER tab", "ibuprofen", "qwzx"], "agent": "ketamine"},
        headers=bearer(db, world_a.users[Role.NURSE]),
    )
    assert response.status_code == 200
    body = response.json()
    assert {
        "agent",
        "route",
        "knowledge_version",
        "findings",
        "no_known_interaction",
        "not_reviewed",
        "unrecognized",
    } <= set(body)
    assert body["route"] == "iv"
    assert body["findings"][0]["ingredient"] == "methylphenidate"
    assert body["no_known_interaction"] == [{"input": "ibuprofen", "ingredient": "ibuprofen"}]
    assert body["unrecognized"][0]["input"] == "qwzx"


def test_the_api_refuses_a_bad_route_naming_the_field(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    response = client.post(
        "/api/v1/interactions/screen",
        json={"medications": ["x"], "route": "rectal"},
        headers=bearer(db, world_a.users[Role.NURSE]),
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "route"


def test_the_chart_panel_shows_findings_with_sources(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-nurse")
    pid = world_a.patients[0].id
    client.post(f"/patients/{pid}/medications", data={"name": "aminophylline", "csrf_token": csrf})
    panel = client.get(f"/patients/{pid}/interactions", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    assert "major" in panel.text
    assert "aminophylline" in panel.text
    assert "knowledge version" in panel.text
    assert "Ketalar" in panel.text
    assert "planned protocol <code>iv-ketamine</code>" in panel.text


def test_the_chart_panel_says_not_screened_when_the_screen_fails(
    client: TestClient, world_a: ClinicWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    csrf = ui_login(client, "a-nurse")
    pid = world_a.patients[0].id
    client.post(f"/patients/{pid}/medications", data={"name": "Nardil", "csrf_token": csrf})

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("knowledge base unreadable")

    monkeypatch.setattr(interactions_uc, "screen", broken)
    panel = client.get(f"/patients/{pid}/interactions", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    assert "Interactions not screened" in panel.text
    assert "knowledge base unreadable" in panel.text
    assert "No interaction rule matched" not in panel.text


def test_the_checker_page_works_without_javascript(
    client: TestClient, world_a: ClinicWorld
) -> None:
    ui_login(client, "a-therapist")
    page = client.get(
        "/interactions", params={"meds": "Vyvanse 50 mg\nphenelzine\nzzzqqq", "agent": "ketamine"}
    )
    assert page.status_code == 200
    assert "<html" in page.text
    assert "lisdexamfetamine" in page.text
    assert "Not recognised: treated as unknown, not as safe." in page.text
