"""The discharge form's driving counselling says what the label of the agent dosed says:
esketamine until the next day after a restful sleep, ketamine at least 24 hours."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from ketacare.store.models import TreatmentSession
from ketacare.store.types import utcnow
from tests.conftest import ClinicWorld, ui_login


@pytest.mark.parametrize(
    ("protocol_id", "says", "never"),
    [
        (
            "iv-ketamine",
            "No driving for at least 24 hours, counselled",
            "No driving until the next day",
        ),
        (
            "intranasal-esketamine",
            "No driving until the next day after a restful sleep, counselled",
            "at least 24 hours, counselled",
        ),
    ],
)
def test_the_driving_counselling_follows_the_agent(
    client: TestClient,
    db: Session,
    world_a: ClinicWorld,
    protocol_id: str,
    says: str,
    never: str,
) -> None:
    patient = world_a.patients[0]
    started = utcnow() - timedelta(minutes=50)
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id=protocol_id,
        scheduled_at=started - timedelta(minutes=30),
        status="in_progress",
        started_at=started - timedelta(minutes=20),
        dose_started_at=started,
    )
    db.add(row)
    db.commit()
    ui_login(client, world_a.users[Role.NURSE].username)
    page = client.get(f"/sessions/{row.id}")
    assert page.status_code == 200
    assert 'id="discharge-form"' in page.text
    assert says in page.text
    assert never not in page.text
