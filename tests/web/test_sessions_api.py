"""A device pushes a batch of vital signs through the API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from tests.conftest import ClinicWorld, bearer, ready_for_dosing, ui_login


def test_a_device_batch_with_one_impossible_value_stores_the_rest(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    pid = world_a.patients[0].id
    ready_for_dosing(db, world_a.patients[0])
    created = client.post(
        f"/api/v1/patients/{pid}/sessions",
        json={"scheduled_at": "2026-01-05T14:00:00Z"},
        headers=headers,
    )
    assert created.status_code == 201
    sid = created.json()["id"]
    checks = {"systolic": 118, "diastolic": 76, "fasting": "yes", "escort": "yes"}
    # No pregnancy status and no medicine recorded: neither is treated as safe.
    held = client.post(f"/api/v1/sessions/{sid}/start", json=checks, headers=headers)
    assert held.status_code == 403
    assert "Not answered: Could the patient be pregnant?" in held.json()["detail"]
    assert "Only a prescriber can override" in held.json()["detail"]
    checks |= {"pregnancy": "not_pregnant", "acknowledge_caution": True}
    start = client.post(f"/api/v1/sessions/{sid}/start", json=checks, headers=headers)
    assert start.json()["gate"]["band"] == "proceed"
    assert start.json()["prechecks"]["overall"] == "caution"
    batch = {
        "samples": [
            {
                "measured_at": "2026-01-05T14:10:00Z",
                "systolic": 126,
                "diastolic": 80,
                "sample_key": "a",
            },
            {"measured_at": "2026-01-05T14:15:00Z", "spo2": 104, "sample_key": "b"},
            {"measured_at": "2026-01-05T14:20:00Z", "heart_rate": 118, "sample_key": "c"},
        ]
    }
    response = client.post(f"/api/v1/sessions/{sid}/vitals", json=batch, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert len(body["stored"]) == 2
    assert body["rejected"] == [
        {
            "index": 1,
            "field": "spo2",
            "code": "out_of_range",
            "text": body["rejected"][0]["text"],
        }
    ]
    assert "SpO2 104%" in body["rejected"][0]["text"]
    assert [a["field"] for a in body["alerts"]] == ["heart_rate"]
    resent = client.post(f"/api/v1/sessions/{sid}/vitals", json=batch, headers=headers).json()
    assert resent["duplicates"] == [0, 2]
    detail = client.get(f"/api/v1/sessions/{sid}", headers=headers).json()
    assert [v["heart_rate"] for v in detail["vitals"]] == [None, 118]


def test_a_naive_time_is_refused_naming_the_field(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    response = client.post(
        f"/api/v1/patients/{world_a.patients[0].id}/sessions",
        json={"scheduled_at": "2026-01-05T14:00:00"},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "scheduled_at"


def _vitals_path(client: TestClient, headers: dict[str, str], world: ClinicWorld) -> str:
    created = client.post(
        f"/api/v1/patients/{world.patients[0].id}/sessions",
        json={"scheduled_at": "2026-01-05T14:00:00Z"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    return f"/api/v1/sessions/{created.json()['id']}/vitals"


def test_a_device_batch_is_validated_from_its_bytes_naming_each_bad_field(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    path = _vitals_path(client, headers, world_a)
    batch = {
        "samples": [
            {"measured_at": "2026-01-05T14:10:00", "systolic": 120},
            {"measured_at": "2026-01-05T14:15:00Z", "heart_rate": "fast"},
        ],
        "extra": 1,
    }
    response = client.post(path, json=batch, headers=headers)
    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["detail"]]
    assert locs == [
        ["body", "samples", 0, "measured_at"],
        ["body", "samples", 1, "heart_rate"],
        ["body", "extra"],
    ]
    empty = client.post(path, json={"samples": []}, headers=headers)
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"] == ["body", "samples"]


def test_a_device_batch_that_is_not_json_is_refused_with_422(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    path = _vitals_path(client, headers, world_a)
    broken = client.post(
        path, content=b'{"samples": [', headers={**headers, "content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["type"] == "json_invalid"
    assert broken.json()["detail"][0]["loc"][0] == "body"
    form = client.post(path, data={"samples": "x"}, headers=headers)
    assert form.status_code == 422
    assert "Content-Type: application/json" in form.json()["detail"][0]["msg"]
    # Without a content type the body is still read as JSON, as FastAPI does: it gets as far
    # as the session, which has not started.
    plain = client.post(
        path,
        content=b'{"samples": [{"measured_at": "2026-01-05T14:10:00Z", "spo2": 97}]}',
        headers=headers,
    )
    assert plain.status_code == 422
    assert plain.json()["detail"][0]["msg"] == "The session is scheduled; vitals are not recorded."


def test_a_stranger_with_a_bad_batch_is_answered_401_not_422(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    path = _vitals_path(client, headers, world_a)
    response = client.post(path, content=b"not json", headers={"content-type": "application/json"})
    assert response.status_code == 401


def test_a_browser_signed_in_sends_vitals_only_with_its_csrf_header(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    # The vitals route makes its own checks of the caller (one trip through the thread pool):
    # the same as every other API route's.
    path = _vitals_path(client, bearer(db, world_a.users[Role.NURSE]), world_a)
    csrf = ui_login(client, world_a.users[Role.NURSE].username)
    batch = {"samples": [{"measured_at": "2026-01-05T14:10:00Z", "heart_rate": 80}]}
    refused = client.post(path, json=batch)
    assert refused.status_code == 403, refused.text
    # Past the CSRF check: the session is only scheduled, so nothing is recorded yet.
    sent = client.post(path, json=batch, headers={"X-CSRF-Token": csrf})
    assert sent.status_code == 422, sent.text
    assert "The session is scheduled" in sent.text


def test_a_session_id_too_large_for_the_database_is_refused_naming_it(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    batch = {"samples": [{"measured_at": "2026-01-05T14:10:00Z", "heart_rate": 80}]}
    response = client.post(f"/api/v1/sessions/{2**31}/vitals", json=batch, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["path", "session_id"]
    # And a stranger is answered 401 before the id is looked at.
    assert client.post(f"/api/v1/sessions/{2**31}/vitals", json=batch).status_code == 401


def test_another_clinics_session_takes_no_vitals(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    path = _vitals_path(client, bearer(db, world_a.users[Role.NURSE]), world_a)
    batch = {"samples": [{"measured_at": "2026-01-05T14:10:00Z", "heart_rate": 80}]}
    response = client.post(path, json=batch, headers=bearer(db, world_b.users[Role.NURSE]))
    assert response.status_code == 404, response.text


def test_a_body_larger_than_any_batch_is_refused_before_it_is_read_whole(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    path = _vitals_path(client, bearer(db, world_a.users[Role.NURSE]), world_a)
    sample = '{"measured_at": "2026-01-05T14:10:00Z", "heart_rate": 80},'
    largest = ('{"samples": [' + sample * 500)[:-1] + "]}"
    assert len(largest) < 150_000
    huge = b'{"samples": [' + b" " * 2_000_000 + b"]}"
    response = client.post(path, content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
