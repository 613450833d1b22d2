"""The clinician UI: sign-in, CSRF on every form, patient screens, role-based pages."""

from __future__ import annotations

from collections import defaultdict

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from ketacare.config import Settings
from ketacare.store.models import AuditEvent, MedicationEntry, Patient
from ketacare.web.main import create_app
from tests.conftest import ClinicWorld, ui_login
from tests.web.route_table import routes

PATIENT_FORM = {
    "mrn": "ui-1",
    "family_name": "Okafor",
    "given_name": "Ada",
    "date_of_birth": "1988-04-09",
    "sex": "female",
    "phone": "",
    "email": "",
    "address": "",
}


def test_pages_send_users_to_sign_in_first(client: TestClient) -> None:
    response = client.get("/patients/1?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/patients/1%3Fx%3D1"


def test_sign_in_sign_out_round_trip(client: TestClient, world_a: ClinicWorld) -> None:
    ui_login(client, "a-nurse")
    page = client.get("/patients")
    assert page.status_code == 200
    assert "Afamily0" in page.text
    csrf = page.text.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/patients").status_code == 303


def test_a_wrong_password_shows_an_error_and_no_session(
    client: TestClient, world_a: ClinicWorld
) -> None:
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login", data={"username": "a-nurse", "password": "nope", "csrf_token": csrf}
    )
    assert response.status_code == 401
    assert "Unknown username or wrong password" in response.text
    assert "kc_session" not in response.cookies


def test_the_login_form_itself_needs_its_csrf_token(
    client: TestClient, world_a: ClinicWorld
) -> None:
    client.get("/login")
    response = client.post(
        "/login", data={"username": "a-nurse", "password": "correct-horse-battery"}
    )
    assert response.status_code == 403


def test_after_five_failures_the_form_says_to_wait(
    client: TestClient, world_a: ClinicWorld
) -> None:
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    for _ in range(5):
        client.post("/login", data={"username": "a-nurse", "password": "bad", "csrf_token": csrf})
    response = client.post(
        "/login",
        data={"username": "a-nurse", "password": "correct-horse-battery", "csrf_token": csrf},
    )
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.text


def test_the_next_parameter_cannot_redirect_off_site(
    client: TestClient, world_a: ClinicWorld
) -> None:
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login",
        data={
            "username": "a-nurse",
            "password": "correct-horse-battery",
            "csrf_token": csrf,
            "next": "//evil.example/x",
        },
    )
    assert response.headers["location"] == "/patients"


def ui_post_routes(client: TestClient) -> list[str]:
    # /r/{token}: the patient's questionnaire, where the one-time link itself is the credential.
    return sorted(
        p for m, p in routes(client.app) if m == "POST" and not p.startswith(("/api/", "/r/"))
    )


def test_every_ui_form_refuses_a_post_without_the_csrf_token(
    client: TestClient, world_a: ClinicWorld
) -> None:
    ui_login(client, "a-nurse")
    posts = ui_post_routes(client)
    assert len(posts) >= 8
    for path in posts:
        # Other path ids (session, order, course, ...) are 1: the token is checked first.
        url = path.format_map(defaultdict(lambda: 1, patient_id=world_a.patients[0].id))
        response = client.post(url, data={"name": "x", "weight_kg": "70"})
        assert response.status_code == 403, path
        bad = client.post(url, data={"csrf_token": "forged"})
        assert bad.status_code == 403, path


def test_registering_a_patient_through_the_form(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-nurse")
    response = client.post("/patients/new", data={**PATIENT_FORM, "csrf_token": csrf})
    assert response.status_code == 303
    chart = client.get(response.headers["location"])
    assert "Okafor, Ada" in chart.text
    assert "unknown: no weight recorded" in chart.text
    assert db.scalar(select(Patient.mrn).where(Patient.family_name == "Okafor")) == "UI-1"


def test_form_errors_are_shown_next_to_their_fields_with_422(
    client: TestClient, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-nurse")
    response = client.post(
        "/patients/new",
        data={**PATIENT_FORM, "date_of_birth": "2999-01-01", "sex": "", "csrf_token": csrf},
    )
    assert response.status_code == 422
    assert 'id="e-date_of_birth"' in response.text
    assert "must not be in the future" in response.text
    assert 'id="e-sex"' in response.text
    assert 'value="Okafor"' in response.text  # what was typed is kept


def test_recording_weight_and_a_medicine_on_the_chart(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-nurse")
    pid = world_a.patients[0].id
    assert (
        client.post(
            f"/patients/{pid}/measurements",
            data={"weight_kg": "72.4", "height_cm": "", "csrf_token": csrf},
        ).status_code
        == 303
    )
    assert (
        client.post(
            f"/patients/{pid}/medications",
            data={
                "name": "Concerta 54 mg ER tab",
                "dose_text": "1 every morning",
                "start_date": "",
                "csrf_token": csrf,
            },
        ).status_code
        == 303
    )
    chart = client.get(f"/patients/{pid}").text
    assert "72.4 kg" in chart
    assert "Concerta 54 mg ER tab" in chart
    bad = client.post(
        f"/patients/{pid}/measurements", data={"weight_kg": "720", "csrf_token": csrf}
    )
    assert bad.status_code == 422
    assert "less than or equal to 300" in bad.text
    med_id = db.scalar(select(MedicationEntry.id).where(MedicationEntry.patient_id == pid))
    stop = client.post(
        f"/patients/{pid}/medications/{med_id}",
        data={"status": "stopped", "version": "1", "csrf_token": csrf},
    )
    assert stop.status_code == 303
    assert (
        db.scalar(select(MedicationEntry.status).where(MedicationEntry.id == med_id)) == "stopped"
    )


def test_editing_with_a_stale_form_reports_the_conflict(
    client: TestClient, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-nurse")
    pid = world_a.patients[0].id
    form = {**PATIENT_FORM, "version": "1", "csrf_token": csrf}
    del form["mrn"]
    assert client.post(f"/patients/{pid}/edit", data=form).status_code == 303
    again = client.post(f"/patients/{pid}/edit", data={**form, "phone": "+1 555 0101"})
    assert again.status_code == 409
    assert "Someone else changed this patient" in again.text


def test_a_therapist_sees_the_chart_without_the_forms(
    client: TestClient, world_a: ClinicWorld
) -> None:
    ui_login(client, "a-therapist")
    chart = client.get(f"/patients/{world_a.patients[0].id}").text
    assert "Afamily0" in chart
    assert "Add a medicine" not in chart
    assert "Record measurement" not in chart


def test_another_clinics_chart_is_a_not_found_page(
    client: TestClient, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-prescriber")
    victim = world_b.patients[0].id
    for url in (f"/patients/{victim}", f"/patients/{victim}/edit"):
        response = client.get(url)
        assert response.status_code == 404
        assert "Bfamily0" not in response.text
    post = client.post(f"/patients/{victim}/medications", data={"name": "x", "csrf_token": csrf})
    assert post.status_code == 404


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        (Role.ADMIN, "/admin/audit", 200),
        (Role.ADMIN, "/admin/settings", 200),
        (Role.NURSE, "/admin/settings", 200),
        (Role.RESEARCHER, "/admin/settings", 403),
        (Role.NURSE, "/admin/audit", 403),
        (Role.RESEARCHER, "/research", 200),
        (Role.RESEARCHER, "/patients", 403),
        (Role.PRESCRIBER, "/research", 403),
        (Role.THERAPIST, "/account", 200),
        (Role.THERAPIST, "/dashboard", 200),
        (Role.RESEARCHER, "/dashboard", 403),
        (Role.ADMIN, "/sessions", 200),
        (Role.RESEARCHER, "/sessions", 403),
    ],
)
def test_pages_follow_the_permission_table(
    client: TestClient, world_a: ClinicWorld, role: Role, path: str, status: int
) -> None:
    ui_login(client, f"a-{role.value}")
    assert client.get(path).status_code == status


def test_the_research_page_shows_no_identifiers(client: TestClient, world_a: ClinicWorld) -> None:
    ui_login(client, "a-researcher")
    page = client.get("/research").text
    for p in world_a.patients:
        assert p.family_name not in page
        assert p.mrn not in page
    assert "1985" in page


def test_the_admin_audit_page_filters_by_action(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    ui_login(client, "a-admin")
    client.get(f"/patients/{world_a.patients[1].id}")
    page = client.get("/admin/audit", params={"action": "patient.view"}).text
    assert page.count("<td>patient.view</td>") == 1
    assert (
        db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "patient.view")
        )
        == 1
    )


def test_live_search_returns_only_the_results_fragment(
    client: TestClient, world_a: ClinicWorld
) -> None:
    ui_login(client, "a-nurse")
    fragment = client.get(
        "/patients", params={"q": "afamily1"}, headers={"HX-Request": "true"}
    ).text
    assert "<html" not in fragment
    assert "Afamily1" in fragment
    assert "Afamily0" not in fragment


def test_security_headers_and_cookie_flags(client: TestClient, world_a: ClinicWorld) -> None:
    page = client.get("/login")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login",
        data={"username": "a-nurse", "password": "correct-horse-battery", "csrf_token": csrf},
    )
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    # Plain HTTP (development): no HSTS, no Secure flag that would drop the cookie.
    assert "strict-transport-security" not in page.headers
    assert "secure" not in cookie.lower().replace("samesite", "")


def test_behind_https_cookies_are_secure_and_hsts_is_sent(
    engine: Engine, settings: Settings, world_a: ClinicWorld
) -> None:
    secure = settings.model_copy(update={"cookie_secure": True})
    app = create_app(secure, engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        page = client.get("/login")
        assert page.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = client.post(
            "/login",
            data={"username": "a-nurse", "password": "correct-horse-battery", "csrf_token": csrf},
        )
        cookie = response.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()


def test_api_writes_with_a_session_cookie_need_the_csrf_header(
    client: TestClient, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-nurse")
    body = {
        "mrn": "C-1",
        "family_name": "A",
        "given_name": "B",
        "date_of_birth": "1990-01-01",
        "sex": "male",
    }
    assert client.post("/api/v1/patients", json=body).status_code == 403
    assert (
        client.post("/api/v1/patients", json=body, headers={"X-CSRF-Token": csrf}).status_code
        == 201
    )


def test_openapi_docs_are_served_offline(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/patients" in schema["paths"]
