"""Passwords, API tokens, session cookies, one-time codes and patient values never reach the
logs, the audit trail or an error message."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from ketacare.store.models import AuditEvent, Patient
from tests.conftest import PASSWORD, ClinicWorld, bearer


def test_credentials_stay_out_of_logs_and_the_audit_trail(
    client: TestClient,
    db: Session,
    world_a: ClinicWorld,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    nurse = world_a.users[Role.NURSE]
    headers = bearer(db, nurse)
    token = headers["Authorization"].removeprefix("Bearer ")
    login = client.get("/login")
    csrf = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    wrong = "Wrong-Password-42!"
    client.post("/login", data={"username": nurse.username, "password": wrong, "csrf_token": csrf})
    ok = client.post(
        "/login", data={"username": nurse.username, "password": PASSWORD, "csrf_token": csrf}
    )
    cookie = ok.cookies.get("kc_session") or ""
    assert cookie
    assert client.get("/api/v1/patients", headers=headers).status_code == 200
    # A bad request echoes no secret back either.
    bad = client.post("/api/v1/patients", headers=headers, json={"mrn": token})
    assert bad.status_code == 422 and token not in bad.text
    db.expire_all()
    trail = " ".join(
        f"{e.action} {e.actor} {e.detail}" for e in db.scalars(select(AuditEvent)).all()
    )
    # The secret part: after "kc_" and the public id (it may hold "_" itself).
    for secret in (PASSWORD, wrong, token, cookie, token.split("_", 2)[2]):
        assert secret not in caplog.text
        assert secret not in trail


def test_database_errors_do_not_carry_the_values(engine: Engine, world_a: ClinicWorld) -> None:
    patient = world_a.patients[0]
    with engine.connect() as conn, pytest.raises(IntegrityError) as err:
        conn.execute(
            insert(Patient).values(
                clinic_id=patient.clinic_id,
                mrn=patient.mrn,  # a duplicate: refused by the unique constraint
                family_name="Secret-Family-Name",
                given_name="X",
                family_key="x",
                given_key="x",
                name_key="x",
                date_of_birth=datetime(1990, 1, 1, tzinfo=UTC).date(),
                sex="female",
            )
        )
    assert "Secret-Family-Name" not in str(err.value)
