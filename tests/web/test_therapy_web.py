"""Therapy sessions through the API and the UI: the note round trip, field-named 422s, roles,
other clinics' rows, CSRF on every form, the urgent banner, the chart fragment and worklist."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from ketacare.store.models import TherapySession, TreatmentSession
from ketacare.store.types import utcnow
from tests.conftest import ROLES, ClinicWorld, bearer, ui_login
from tests.web.route_table import routes

NOTE: dict[str, Any] = {
    "attendance": "attended",
    "minutes": 50,
    "techniques": ["distractibility", "mindfulness"],
    "focus": "distractibility",
    "worked_on": "Timer practice for long tasks.",
    "risk_check": {"asked": True, "result": "none"},
}
URGENT_ACTION = "C-SSRS screen done: no intent or plan. Safety plan reviewed; prescriber told."


def _row(db: Session, world: ClinicWorld, **values: Any) -> TherapySession:
    row = TherapySession(
        clinic_id=world.clinic.id,
        patient_id=world.patients[0].id,
        scheduled_at=values.pop("scheduled_at", utcnow()),
        minutes=50,
        status=values.pop("status", "scheduled"),
        **values,
    )
    db.add(row)
    db.commit()
    return row


def _infusion(db: Session, world: ClinicWorld, ended_at: datetime) -> int:
    row = TreatmentSession(
        clinic_id=world.clinic.id,
        patient_id=world.patients[0].id,
        protocol_id="iv-ketamine",
        scheduled_at=ended_at - timedelta(hours=1),
        status="completed",
        ended_at=ended_at,
    )
    db.add(row)
    db.commit()
    return row.id


# --- API ----------------------------------------------------------------------------------------


def test_the_api_round_trip_schedule_note_sign_amend(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.THERAPIST])
    pid = world_a.patients[0].id
    ended = utcnow() - timedelta(hours=30)
    sid = _infusion(db, world_a, ended)
    made = client.post(
        f"/api/v1/patients/{pid}/therapy-sessions",
        json={"scheduled_at": (ended + timedelta(hours=24)).isoformat(), "follows_session_id": sid},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["window"]["inside"] is True and body["window"]["hours_after"] == 24
    assert body["minutes"] == 50  # the clinic's default length
    tid = body["id"]
    saved = client.put(
        f"/api/v1/therapy-sessions/{tid}/note", json={**NOTE, "version": 1}, headers=headers
    )
    assert saved.status_code == 200, saved.text
    stale = client.put(
        f"/api/v1/therapy-sessions/{tid}/note", json={**NOTE, "version": 1}, headers=headers
    )
    assert stale.status_code == 409
    sign = client.post(
        f"/api/v1/therapy-sessions/{tid}/sign",
        json={"version": saved.json()["version"]},
        headers=headers,
    )
    assert sign.status_code == 200, sign.text
    assert sign.json()["status"] == "completed" and sign.json()["signed_at"]
    again = client.put(
        f"/api/v1/therapy-sessions/{tid}/note",
        json={**NOTE, "version": sign.json()["version"]},
        headers=headers,
    )
    assert again.status_code == 422
    assert again.json()["detail"][0]["loc"] == ["body", "status"]
    amended = client.post(
        f"/api/v1/therapy-sessions/{tid}/amendments",
        json={**NOTE, "minutes": 40, "reason": "Length corrected."},
        headers=headers,
    )
    assert amended.status_code == 201, amended.text
    assert amended.json()["amends_id"] == tid
    listed = client.get(f"/api/v1/patients/{pid}/therapy-sessions", headers=headers).json()
    assert [(e["current"]["id"], [h["id"] for h in e["history"]]) for e in listed] == [
        (amended.json()["id"], [tid])
    ]
    detail = client.get(f"/api/v1/therapy-sessions/{tid}", headers=headers).json()
    assert detail["current_id"] == amended.json()["id"]
    assert detail["follows"]["id"] == sid
    assert detail["patient"]["mrn"] == world_a.patients[0].mrn


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"techniques": ["hypnosis"]}, ["body", "techniques"]),
        ({"attendance": "present"}, ["body", "attendance"]),
        ({"minutes": 500}, ["body", "minutes"]),
        ({"risk_check": {"asked": True, "result": "unsure"}}, ["body", "risk_check", "result"]),
        ({"homework": "x" * 2001}, ["body", "homework"]),
        ({"version": 0}, ["body", "version"]),
    ],
)
def test_bad_note_fields_are_422_naming_the_field(
    client: TestClient, db: Session, world_a: ClinicWorld, change: dict[str, Any], loc: list[str]
) -> None:
    row = _row(db, world_a)
    response = client.put(
        f"/api/v1/therapy-sessions/{row.id}/note",
        json={**NOTE, "version": 1, **change},
        headers=bearer(db, world_a.users[Role.THERAPIST]),
    )
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [loc]


def test_signing_an_incomplete_note_is_422_naming_the_field(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    row = _row(db, world_a, note={"attendance": "attended", "minutes": 50})
    response = client.post(
        f"/api/v1/therapy-sessions/{row.id}/sign",
        json={"version": 1},
        headers=bearer(db, world_a.users[Role.PRESCRIBER]),
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "risk_check.asked"]
    assert "risk check" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_only_therapists_and_prescribers_schedule_and_write(
    client: TestClient, db: Session, world_a: ClinicWorld, role: Role
) -> None:
    headers = bearer(db, world_a.users[role])
    made = client.post(
        f"/api/v1/patients/{world_a.patients[0].id}/therapy-sessions",
        json={"scheduled_at": "2026-12-01T15:00:00Z"},
        headers=headers,
    )
    row = _row(db, world_a)
    note = client.put(
        f"/api/v1/therapy-sessions/{row.id}/note", json={**NOTE, "version": 1}, headers=headers
    )
    writes = role in (Role.THERAPIST, Role.PRESCRIBER)
    assert made.status_code == (201 if writes else 403)
    assert note.status_code == (200 if writes else 403)
    view = client.get(f"/api/v1/therapy-sessions/{row.id}", headers=headers)
    assert view.status_code == (403 if role is Role.RESEARCHER else 200)


THERAPY_ROUTES = [
    ("GET", "/api/v1/therapy-sessions/{therapy_id}", None),
    ("PUT", "/api/v1/therapy-sessions/{therapy_id}/note", {**NOTE, "version": 1}),
    ("POST", "/api/v1/therapy-sessions/{therapy_id}/sign", {"version": 1}),
    ("POST", "/api/v1/therapy-sessions/{therapy_id}/amendments", {**NOTE, "reason": "Fix."}),
    (
        "POST",
        "/api/v1/therapy-sessions/{therapy_id}/cancel",
        {"status": "missed", "reason": "No show.", "version": 1},
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), THERAPY_ROUTES, ids=str)
@pytest.mark.parametrize("role", ROLES, ids=str)
def test_no_role_reaches_another_clinics_therapy_session(
    client: TestClient,
    db: Session,
    world_a: ClinicWorld,
    world_b: ClinicWorld,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    role: Role,
) -> None:
    signed = "amendments" in path
    victim = _row(
        db,
        world_b,
        note={**NOTE, "worked_on": "Bsecret"},
        status="completed" if signed else "scheduled",
        signed_at=utcnow() if signed else None,
    )
    before = (victim.version, victim.status, victim.note)
    response = client.request(
        method,
        path.format(therapy_id=victim.id),
        json=body,
        headers=bearer(db, world_a.users[role]),
    )
    assert response.status_code in (403, 404), response.text
    assert "Bsecret" not in response.text and world_b.patients[0].mrn not in response.text
    db.expire_all()
    row = db.get(TherapySession, victim.id)
    assert row is not None and (row.version, row.status, row.note) == before
    assert db.scalar(select(TherapySession.id).where(TherapySession.amends_id == victim.id)) is None


def test_the_worklist_api_lists_only_the_callers_clinic(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    mine = _row(db, world_a, scheduled_at=utcnow() + timedelta(hours=3))
    _row(db, world_b, scheduled_at=utcnow() + timedelta(hours=2))
    body = client.get("/api/v1/therapy-sessions", headers=bearer(db, world_a.users[Role.NURSE]))
    assert body.status_code == 200
    assert [i["id"] for i in body.json()["items"]] == [mine.id]
    assert body.json()["items"][0]["patient"]["mrn"] == world_a.patients[0].mrn


def test_every_therapy_route_needs_authentication(client: TestClient) -> None:
    ours = sorted((m, p) for m, p in routes(client.app) if "therap" in p)
    assert len(ours) >= 8 + 7  # the API's and the UI's
    for method, path in ours:
        url = path.format_map(defaultdict(lambda: 1))
        response = client.request(method, url, json={})
        if path.startswith("/api/"):
            assert response.status_code == 401, path
        else:
            # The UI checks the form token before anything; without a session GETs sign in.
            assert response.status_code in (303, 403), path


# --- UI -----------------------------------------------------------------------------------------


def _csrf_refused(client: TestClient, url: str, data: dict[str, Any]) -> None:
    assert client.post(url, data=data).status_code == 403
    assert client.post(url, data={**data, "csrf_token": "forged"}).status_code == 403


def test_the_note_form_round_trip_with_csrf(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-therapist")
    ended = utcnow() - timedelta(hours=26)
    sid = _infusion(db, world_a, ended)
    row = _row(db, world_a, follows_session_id=sid, scheduled_at=ended + timedelta(hours=25))
    page = client.get(f"/therapy/{row.id}")
    assert page.status_code == 200
    text = page.text
    assert world_a.patients[0].family_name in text
    assert f'href="/sessions/{sid}"' in text
    assert "inside window" in text and "24-72 h" in text
    assert 'name="techniques" value="organisation_planning"' in text
    assert "Organisation and planning skills" in text
    assert "Integration of the infusion experience" in text
    form = {
        "version": "1",
        "attendance": "attended",
        "minutes": "50",
        "techniques": ["organisation_planning", "infusion_integration"],
        "focus": "organisation_planning",
        "worked_on": "Built a weekly plan.",
        "patient_words": "Calmer than I expected.",
        "risk_asked": "yes",
        "risk_result": "none",
        "action": "save",
    }
    _csrf_refused(client, f"/therapy/{row.id}/note", form)
    saved = client.post(f"/therapy/{row.id}/note", data={**form, "csrf_token": csrf})
    assert saved.status_code == 303 and saved.headers["location"] == f"/therapy/{row.id}"
    db.expire_all()
    stored = db.get(TherapySession, row.id)
    assert stored is not None and stored.note is not None and stored.signed_at is None
    assert stored.note["techniques"] == ["organisation_planning", "infusion_integration"]
    assert stored.note["patient_words"] == "Calmer than I expected."
    again = client.get(f"/therapy/{row.id}").text
    assert 'value="organisation_planning" checked' in again
    assert 'value="mindfulness" checked' not in again
    assert "Built a weekly plan." in again and "draft saved" in again
    # A bad field comes back next to the field, the rest of the input kept.
    bad = client.post(
        f"/therapy/{row.id}/note",
        data={**form, "version": "2", "minutes": "500", "csrf_token": csrf},
    )
    assert bad.status_code == 422
    assert 'id="e-n-minutes"' in bad.text and "Built a weekly plan." in bad.text
    signed = client.post(
        f"/therapy/{row.id}/note",
        data={**form, "version": "2", "action": "sign", "csrf_token": csrf},
    )
    assert signed.status_code == 303
    view = client.get(f"/therapy/{row.id}").text
    assert "Save and sign" not in view
    assert "Organisation and planning skills; Integration of the infusion experience" in view
    assert "Amend this note" in view
    _csrf_refused(client, f"/therapy/{row.id}/amend", {**form, "reason": "x"})
    amend = client.post(
        f"/therapy/{row.id}/amend",
        data={**form, "minutes": "45", "reason": "Ended early.", "csrf_token": csrf},
    )
    assert amend.status_code == 303
    new_id = int(amend.headers["location"].rsplit("/", 1)[1])
    assert new_id != row.id
    old = client.get(f"/therapy/{row.id}").text
    assert "This version has been amended" in old and f'href="/therapy/{new_id}"' in old
    assert "Ended early." in client.get(f"/therapy/{new_id}").text


def test_signing_an_incomplete_note_from_the_form_keeps_the_draft(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-prescriber")
    row = _row(db, world_a)
    response = client.post(
        f"/therapy/{row.id}/note",
        data={"version": "1", "attendance": "attended", "minutes": "50", "action": "sign"}
        | {"csrf_token": csrf, "worked_on": "Psychoeducation."},
    )
    assert response.status_code == 422
    assert "The draft is saved but not signed" in response.text
    assert 'id="e-n-risk-asked"' in response.text
    db.expire_all()
    stored = db.get(TherapySession, row.id)
    assert stored is not None and stored.signed_at is None
    assert stored.note is not None and stored.note["worked_on"] == "Psychoeducation."


def test_an_urgent_risk_result_shows_a_banner_on_the_page_and_the_chart(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-therapist")
    row = _row(db, world_a)
    form = {
        "version": "1",
        "attendance": "attended",
        "minutes": "50",
        "risk_asked": "yes",
        "risk_result": "active_ideation",
        "action": "sign",
        "csrf_token": csrf,
    }
    refused = client.post(f"/therapy/{row.id}/note", data=form)
    assert refused.status_code == 422 and 'id="e-n-risk-action"' in refused.text
    done = client.post(
        f"/therapy/{row.id}/note", data={**form, "version": "2", "risk_action": URGENT_ACTION}
    )
    assert done.status_code == 303
    page = client.get(f"/therapy/{row.id}").text
    banner = page.split('<div class="alert urgent" role="alert">', 1)[1].split("</div>", 1)[0]
    assert "URGENT" in banner and "suicide-risk pathway" in banner and "C-SSRS" in banner
    assert URGENT_ACTION in banner
    fragment = client.get(f"/patients/{world_a.patients[0].id}/therapy").text
    assert "<html" not in fragment
    assert 'class="alert urgent" role="alert"' in fragment and "URGENT" in fragment
    assert f'href="/therapy/{row.id}"' in fragment


def test_the_chart_loads_the_therapy_fragment_and_schedules_from_it(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-therapist")
    pid = world_a.patients[0].id
    chart = client.get(f"/patients/{pid}").text
    assert f'hx-get="/patients/{pid}/therapy" hx-trigger="load"' in chart
    assert chart.index('id="therapy"') < chart.index('id="medications"')
    empty = client.get(f"/patients/{pid}/therapy").text
    assert "No therapy session yet." in empty and "Schedule a therapy session" in empty
    _csrf_refused(client, f"/patients/{pid}/therapy", {"scheduled_at": "2026-12-01T10:00"})
    bad = client.post(
        f"/patients/{pid}/therapy",
        data={"scheduled_at": "2026-12-01T10:00", "minutes": "0", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 422 and "<html" not in bad.text and 'id="e-ts-minutes"' in bad.text
    made = client.post(
        f"/patients/{pid}/therapy",
        data={"scheduled_at": "2026-12-01T10:00", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert made.status_code == 200
    tid = int(made.headers["hx-redirect"].rsplit("/", 1)[1])
    row = db.get(TherapySession, tid)
    assert row is not None
    # 10:00 in the clinic's zone (America/Toronto, EST in December) is 15:00 UTC.
    assert row.scheduled_at == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    plain = client.post(f"/patients/{pid}/therapy", data={"scheduled_at": "", "csrf_token": csrf})
    assert plain.status_code == 422 and "<html" in plain.text


def test_cancelling_from_the_page_records_the_reason(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-therapist")
    row = _row(db, world_a)
    data = {"status": "missed", "reason": "Did not come; phoned twice.", "version": "1"}
    _csrf_refused(client, f"/therapy/{row.id}/cancel", data)
    short = client.post(
        f"/therapy/{row.id}/cancel", data={**data, "reason": "x", "csrf_token": csrf}
    )
    assert short.status_code == 422 and 'id="e-c-reason"' in short.text
    done = client.post(f"/therapy/{row.id}/cancel", data={**data, "csrf_token": csrf})
    assert done.status_code == 303
    page = client.get(f"/therapy/{row.id}").text
    assert "Did not come; phoned twice." in page and "missed" in page
    assert "Save and sign" not in page


def test_the_worklist_page_and_the_nav_link_follow_the_role(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    overdue = _row(db, world_a, scheduled_at=utcnow() - timedelta(days=3))
    _row(db, world_b, scheduled_at=utcnow())
    ui_login(client, "a-therapist")
    page = client.get("/therapy")
    assert page.status_code == 200
    assert '<a href="/therapy">Therapy</a>' in page.text
    assert f'href="/therapy/{overdue.id}"' in page.text and "overdue, unsigned" in page.text
    assert "Bfamily0" not in page.text
    client.cookies.clear()
    ui_login(client, "a-nurse")
    nurse = client.get("/therapy")
    assert nurse.status_code == 200
    assert '<a href="/therapy">Therapy</a>' not in nurse.text
    form_page = client.get(f"/therapy/{overdue.id}").text
    assert "Save and sign" not in form_page and "No note recorded." in form_page
    client.cookies.clear()
    ui_login(client, "a-researcher")
    assert client.get("/therapy").status_code == 403


def test_another_clinics_session_page_is_not_found(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-therapist")
    victim = _row(db, world_b, note={"worked_on": "Bsecret"})
    for url in (f"/therapy/{victim.id}", f"/patients/{world_b.patients[0].id}/therapy"):
        response = client.get(url)
        assert response.status_code == 404
        assert "Bsecret" not in response.text and "Bfamily0" not in response.text
    post = client.post(
        f"/therapy/{victim.id}/note",
        data={"version": "1", "worked_on": "overwrite", "csrf_token": csrf},
    )
    assert post.status_code == 404
    db.expire_all()
    assert db.get(TherapySession, victim.id).note == {"worked_on": "Bsecret"}  # type: ignore[union-attr]
