"""The routes that encode their answer themselves send exactly what their schema declares."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.orm import Session

from ketacare.app import interactions, patients
from ketacare.app.permissions import Role
from tests.conftest import ClinicWorld, bearer


def _same_as_model(answer: dict[str, Any], model: type[BaseModel]) -> None:
    # Validated against the declared model and encoded again, the answer is unchanged: no
    # field more, none less, same formats.
    assert model.model_validate(answer).model_dump(mode="json") == answer


def test_the_patient_list_answer_is_the_declared_page(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    response = client.get("/api/v1/patients?limit=2", headers=bearer(db, world_a.users[Role.NURSE]))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert len(answer["items"]) == 2
    _same_as_model(answer, patients.PatientPage)
    schema = client.get("/api/v1/openapi.json").json()
    declared = schema["paths"]["/api/v1/patients"]["get"]["responses"]["200"]
    assert declared["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PatientPage"
    }


def test_the_interaction_screen_answer_is_the_declared_screen(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    response = client.post(
        "/api/v1/interactions/screen",
        json={"medications": ["Vyvanse 50 mg", "qwzx"]},
        headers=bearer(db, world_a.users[Role.NURSE]),
    )
    assert response.status_code == 200
    answer = response.json()
    _same_as_model(answer, interactions.ScreenOut)
    assert [u["input"] for u in answer["unrecognized"]] == ["qwzx"]
    assert answer["findings"][0]["ingredient"] == "lisdexamfetamine"
