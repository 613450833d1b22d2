"""Courses and clinic settings through the API and the UI: plan, read, re-plan, stop, download
the calendar; the chart's course section; the settings page."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from ketacare.store.models import Clinic, TreatmentCourse, TreatmentSession
from tests.app.test_courses import MONDAY, REASON, consent, ready, review, utc
from tests.conftest import ClinicWorld, bearer, ui_login

MON = MONDAY.isoformat()
TUE = (MONDAY + timedelta(days=1)).isoformat()
PLAN = {"start_date": MON}


def _plan(client: TestClient, db: Session, world: ClinicWorld, role: Role = Role.NURSE) -> dict:
    pid = world.patients[0].id
    response = client.post(
        f"/api/v1/patients/{pid}/courses", json=PLAN, headers=bearer(db, world.users[role])
    )
    assert response.status_code == 201, response.text
    return response.json()


# --- API -----------------------------------------------------------------------------------


def test_plan_read_replan_stop_through_the_api(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    ready(db, world_a.patients[0])
    course = _plan(client, db, world_a)
    assert [s["plan_key"] for s in course["sessions"]][:2] == ["infusion-1", "cbt-1"]
    assert course["sessions"][0]["scheduled_at"] == f"{MON}T13:00:00Z"
    assert len(course["sessions"]) == 12 and course["warnings"] == []
    headers = bearer(db, world_a.users[Role.THERAPIST])
    listed = client.get(f"/api/v1/patients/{world_a.patients[0].id}/courses", headers=headers)
    assert [c["id"] for c in listed.json()] == [course["id"]]
    got = client.get(f"/api/v1/courses/{course['id']}", headers=headers).json()
    assert got["version"] == 1 and got["plan"]["protocol"] == "iv-ketamine"

    nurse = bearer(db, world_a.users[Role.NURSE])
    body = {"version": 1, "missed": ["infusion-1"], "reason": REASON, "from_date": TUE}
    replanned = client.post(f"/api/v1/courses/{course['id']}/replan", json=body, headers=nurse)
    assert replanned.status_code == 200, replanned.text
    data = replanned.json()
    assert data["revision"] == 1 and data["missed"][0]["reason"] == REASON
    firsts = [s for s in data["sessions"] if s["plan_key"] == "infusion-1"]
    assert [(s["status"], s["scheduled_at"]) for s in firsts] == [
        ("missed", f"{MON}T13:00:00Z"),
        ("scheduled", f"{TUE}T13:00:00Z"),
    ]
    stale = client.post(f"/api/v1/courses/{course['id']}/replan", json=body, headers=nurse)
    assert stale.status_code == 409
    assert "changed this course" in stale.json()["detail"]
    no_reason = client.post(
        f"/api/v1/courses/{course['id']}/replan",
        json={"version": 2, "missed": ["infusion-2"]},
        headers=nurse,
    )
    assert no_reason.status_code == 422
    assert no_reason.json()["detail"][0]["loc"] == ["body", "reason"]

    stop = client.post(
        f"/api/v1/courses/{course['id']}/stop",
        json={"version": 2, "reason": "Moved away."},
        headers=nurse,
    )
    assert stop.status_code == 200 and stop.json()["status"] == "stopped"
    assert {s["status"] for s in stop.json()["sessions"]} == {"missed", "cancelled"}


def test_planning_refusals_are_422_naming_the_field(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    pid = world_a.patients[0].id
    headers = bearer(db, world_a.users[Role.PRESCRIBER])
    url = f"/api/v1/patients/{pid}/courses"
    missing = client.post(url, json=PLAN, headers=headers)
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "eligibility"]
    review(db, world_a.patients[0])
    assert client.post(url, json=PLAN, headers=headers).json()["detail"][0]["loc"] == [
        "body",
        "consent",
    ]
    consent(db, world_a.patients[0])
    bad = client.post(url, json={**PLAN, "protocol_id": "oral-ketamine"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "protocol_id"]
    assert client.post(url, json=PLAN, headers=headers).status_code == 201
    again = client.post(url, json=PLAN, headers=headers)
    assert again.json()["detail"][0]["loc"] == ["body", "course"]


def test_therapists_and_administrators_cannot_plan(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    ready(db, world_a.patients[0])
    url = f"/api/v1/patients/{world_a.patients[0].id}/courses"
    for role in (Role.THERAPIST, Role.ADMIN):
        response = client.post(url, json=PLAN, headers=bearer(db, world_a.users[role]))
        assert response.status_code == 403
    assert db.scalar(select(TreatmentCourse.id)) is None


def test_the_calendar_download(client: TestClient, db: Session, world_a: ClinicWorld) -> None:
    ready(db, world_a.patients[0])
    course = _plan(client, db, world_a)
    response = client.get(
        f"/api/v1/courses/{course['id']}/calendar.ics",
        headers=bearer(db, world_a.users[Role.THERAPIST]),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="course-{course["id"]}.ics"'
    events = list(Calendar.from_ical(response.text).walk("VEVENT"))
    assert len(events) == 12
    starts = sorted(e.decoded("dtstart") for e in events)
    assert starts[0] == utc(0, 8, 0)
    assert f"DTSTART:{MONDAY:%Y%m%d}T130000Z" in response.text
    assert world_a.patients[0].family_name not in response.text


def test_another_clinic_reaches_no_course(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    ready(db, world_a.patients[0])
    course = _plan(client, db, world_a)
    outsider = bearer(db, world_b.users[Role.PRESCRIBER])
    cid = course["id"]
    for method, url, body in (
        ("GET", f"/api/v1/courses/{cid}", None),
        ("GET", f"/api/v1/courses/{cid}/calendar.ics", None),
        ("POST", f"/api/v1/courses/{cid}/replan", {"version": 1}),
        ("POST", f"/api/v1/courses/{cid}/stop", {"version": 1, "reason": "Not ours."}),
    ):
        response = client.request(method, url, json=body, headers=outsider)
        assert response.status_code == 404, url
        assert "infusion" not in response.text
    db.expire_all()
    assert db.get(TreatmentCourse, cid).version == 1  # type: ignore[union-attr]


# --- settings API ---------------------------------------------------------------------------


def test_settings_api_round_trip_note_and_conflict(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    admin = bearer(db, world_a.users[Role.ADMIN])
    current = client.get("/api/v1/clinic/settings", headers=admin).json()
    assert current["version"] == 1
    assert current["effective_monitoring"]["bp_caution_systolic"] == 140
    body = {
        "calendar": {"days": [0, 2, 4], "opens": "09:00", "closes": "16:00"},
        "monitoring": {"bp_hold_systolic": 170},
        "version": 1,
    }
    no_note = client.put("/api/v1/clinic/settings", json=body, headers=admin)
    assert no_note.status_code == 422
    assert no_note.json()["detail"][0]["loc"] == ["body", "change_note"]
    below = client.put(
        "/api/v1/clinic/settings",
        json={**body, "monitoring": {"bp_hold_systolic": 130}, "change_note": "Memo 12"},
        headers=admin,
    )
    assert below.status_code == 422
    assert below.json()["detail"][0]["loc"] == ["body", "monitoring"]
    assert "caution < hold < refuse" in below.json()["detail"][0]["msg"]
    too_high = client.put(
        "/api/v1/clinic/settings",
        json={**body, "monitoring": {"bp_hold_systolic": 400}, "change_note": "Memo 12"},
        headers=admin,
    )
    assert too_high.json()["detail"][0]["loc"] == ["body", "monitoring.bp_hold_systolic"]
    saved = client.put(
        "/api/v1/clinic/settings",
        json={**body, "change_note": "Medical director's memo 12 (protocol v3)."},
        headers=admin,
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 2
    read = client.get("/api/v1/clinic/settings", headers=bearer(db, world_a.users[Role.NURSE]))
    assert read.json()["calendar"]["days"] == [0, 2, 4]
    assert read.json()["effective_monitoring"]["bp_hold_systolic"] == 170
    # The calendar alone is not a clinical value: no note needed.
    calendar_only = {**body, "version": 2, "calendar": {"days": [0, 1, 2, 3, 4]}}
    assert (
        client.put("/api/v1/clinic/settings", json=calendar_only, headers=admin).status_code == 200
    )
    stale = client.put("/api/v1/clinic/settings", json=calendar_only, headers=admin)
    assert stale.status_code == 409


# --- UI: the chart's course section ---------------------------------------------------------


def _section(client: TestClient, pid: int) -> str:
    response = client.get(f"/patients/{pid}/course", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    return response.text


def test_the_chart_loads_the_course_section(client: TestClient, world_a: ClinicWorld) -> None:
    ui_login(client, "a-nurse")
    pid = world_a.patients[0].id
    chart = client.get(f"/patients/{pid}").text
    assert f'hx-get="/patients/{pid}/course"' in chart
    section = _section(client, pid)
    assert "A course cannot be planned yet" in section
    assert "No signed eligibility review" in section
    assert "No informed consent recorded" in section
    assert 'action="/patients/' not in section  # no plan form until it can be used
    full = client.get(f"/patients/{pid}/course")
    assert "<html" in full.text and "Afamily0, Given0" in full.text


def test_planning_and_replanning_on_the_chart(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-nurse")
    pid = world_a.patients[0].id
    ready(db, world_a.patients[0])
    form = _section(client, pid)
    assert "Plan a course" in form
    assert 'value="intranasal-esketamine"' in form and "oral-ketamine" not in form
    bad = client.post(
        f"/patients/{pid}/course",
        data={"protocol_id": "iv-ketamine", "start_date": "", "csrf_token": csrf},
    )
    assert bad.status_code == 422
    assert 'id="e-start_date"' in bad.text
    response = client.post(
        f"/patients/{pid}/course",
        data={
            "protocol_id": "iv-ketamine",
            "start_date": MON,
            "infusions": "",
            "cbt": "on",
            "csrf_token": csrf,
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/patients/{pid}#course"
    section = _section(client, pid)
    course = db.scalars(select(TreatmentCourse)).one()
    first = db.scalars(
        select(TreatmentSession).where(TreatmentSession.plan_key == "infusion-1")
    ).one()
    assert f"Mon {MON} 08:00" in section  # shown in the clinic's zone
    assert f'href="/sessions/{first.id}"' in section
    assert 'href="/therapy/' in section
    assert "CBT session after infusion 1" in section
    assert f'href="/patients/{pid}/courses/{course.id}.ics"' in section
    ics = client.get(f"/patients/{pid}/courses/{course.id}.ics")
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert ics.text.count("BEGIN:VEVENT") == 12

    missing_reason = client.post(
        f"/patients/{pid}/course/replan",
        data={
            "course_id": str(course.id),
            "version": "1",
            "missed": "infusion-1",
            "csrf_token": csrf,
        },
        headers={"HX-Request": "true"},
    )
    assert missing_reason.status_code == 422
    assert 'id="e-reason"' in missing_reason.text and "<html" not in missing_reason.text
    replanned = client.post(
        f"/patients/{pid}/course/replan",
        data={
            "course_id": str(course.id),
            "version": "1",
            "missed": "infusion-1",
            "reason": REASON,
            "from_date": TUE,
            "csrf_token": csrf,
        },
        headers={"HX-Request": "true"},
    )
    assert replanned.status_code == 200
    assert "Course re-planned." in replanned.text
    assert "Missed sessions" in replanned.text and REASON in replanned.text
    assert f"Tue {TUE} 08:00" in replanned.text
    stale = client.post(
        f"/patients/{pid}/course/replan",
        data={"course_id": str(course.id), "version": "1", "csrf_token": csrf},
    )
    assert stale.status_code == 409
    assert "changed this course" in stale.text
    stopped = client.post(
        f"/patients/{pid}/course/stop",
        data={
            "course_id": str(course.id),
            "version": "2",
            "reason": "Moved away.",
            "csrf_token": csrf,
        },
    )
    assert stopped.status_code == 303
    after = _section(client, pid)
    assert "Earlier courses (1)" in after and "Moved away." in after
    assert "Plan a course" in after  # a stopped course does not block a new one


def test_a_therapist_sees_the_course_without_the_forms(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    ready(db, world_a.patients[0])
    _plan(client, db, world_a)
    ui_login(client, "a-therapist")
    section = _section(client, world_a.patients[0].id)
    assert "Ketamine infusion 1 of 6" in section
    assert "Download calendar (.ics)" in section
    assert "Re-plan" not in section and "Stop the course" not in section


def test_another_clinics_course_is_not_found_in_the_ui(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    ready(db, world_a.patients[0])
    course = _plan(client, db, world_a)
    csrf = ui_login(client, "b-prescriber")
    pid = world_a.patients[0].id
    assert client.get(f"/patients/{pid}/course").status_code == 404
    assert client.get(f"/patients/{pid}/courses/{course['id']}.ics").status_code == 404
    # Own patient in the path, the other clinic's course in the form.
    own = world_b.patients[0].id
    response = client.post(
        f"/patients/{own}/course/stop",
        data={
            "course_id": str(course["id"]),
            "version": "1",
            "reason": "x" * 5,
            "csrf_token": csrf,
        },
    )
    assert response.status_code == 404
    db.expire_all()
    assert db.get(TreatmentCourse, course["id"]).status == "active"  # type: ignore[union-attr]


# --- UI: clinic settings --------------------------------------------------------------------


def _settings_form(**changes: str | list[str]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {
        "version": "1",
        "days": ["0", "1", "2", "3", "4"],
        "opens": "08:00",
        "closes": "17:00",
        "closed_dates": "",
        "change_note": "",
    }
    form.update(changes)
    return form


def test_the_settings_page_round_trip(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-admin")
    page = client.get("/admin/settings")
    assert page.status_code == 200
    assert 'href="/admin/settings"' in page.text  # the nav link
    assert 'name="monitoring.bp_hold_systolic"' in page.text
    assert "spravato-us-pi-blood-pressure" in page.text or "Spravato" in page.text
    saved = client.post(
        "/admin/settings",
        data={
            **_settings_form(
                days=["0", "2", "4"],
                opens="09:00",
                closes="16:30",
                closed_dates="2026-12-25\n2027-01-01\n",
            ),
            "require_second_check": "on",
            "monitoring.cbt_session_minutes": "45",
            "change_note": "Clinic protocol v3, section 4.",
            "csrf_token": csrf,
        },
    )
    assert saved.status_code == 303, saved.text
    again = client.get(saved.headers["location"]).text
    assert "Settings saved (version 2)" in again
    assert 'value="09:00"' in again and 'value="16:30"' in again
    assert "2026-12-25\n2027-01-01" in again
    assert 'name="monitoring.cbt_session_minutes" type="number"' in again
    assert 'value="45"' in again
    clinic = db.get(Clinic, world_a.clinic.id)
    db.refresh(clinic)
    assert clinic is not None and clinic.settings is not None
    assert clinic.settings["calendar"]["days"] == [0, 2, 4]
    assert clinic.settings["require_second_check"] is True


def test_settings_errors_are_shown_next_to_the_fields(
    client: TestClient, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-admin")
    bad_date = client.post(
        "/admin/settings",
        data={**_settings_form(closed_dates="2026-12-25\n25/12/2027"), "csrf_token": csrf},
    )
    assert bad_date.status_code == 422
    assert 'id="e-calendar-closed_dates"' in bad_date.text and "line 2" in bad_date.text
    no_note = client.post(
        "/admin/settings",
        data={**_settings_form(), "monitoring.bp_hold_systolic": "170", "csrf_token": csrf},
    )
    assert no_note.status_code == 422
    assert 'id="e-change_note"' in no_note.text
    assert 'value="170"' in no_note.text  # what was typed is kept
    too_high = client.post(
        "/admin/settings",
        data={
            **_settings_form(change_note="Memo"),
            "monitoring.bp_hold_systolic": "400",
            "csrf_token": csrf,
        },
    )
    assert too_high.status_code == 422
    assert 'id="e-monitoring-bp_hold_systolic"' in too_high.text
    below = client.post(
        "/admin/settings",
        data={
            **_settings_form(change_note="Memo"),
            "monitoring.bp_hold_systolic": "130",
            "csrf_token": csrf,
        },
    )
    assert below.status_code == 422
    assert "systolic thresholds must rise" in below.text
    stale = client.post("/admin/settings", data={**_settings_form(version="7"), "csrf_token": csrf})
    assert stale.status_code == 409


def test_the_hypotension_and_heart_rate_limits_are_on_the_settings_page(
    client: TestClient, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-admin")
    page = client.get("/admin/settings").text
    for name in (
        "alert_systolic_warning_below",
        "alert_systolic_critical_below",
        "alert_mean_arterial_pressure_below",
        "alert_heart_rate_critical_above",
        "alert_heart_rate_critical_below",
        "discharge_systolic_at_least",
    ):
        assert f'name="monitoring.{name}"' in page, name
    crossed = client.post(
        "/admin/settings",
        data={
            **_settings_form(change_note="Memo"),
            "monitoring.alert_systolic_critical_below": "92",
            "csrf_token": csrf,
        },
    )
    assert crossed.status_code == 422
    assert "the critical low systolic threshold must be below the warning one" in crossed.text


def test_staff_read_the_settings_and_cannot_save_them(
    client: TestClient, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-nurse")
    page = client.get("/admin/settings")
    assert page.status_code == 200
    assert "Only an administrator changes these settings" in page.text
    assert "Save settings" not in page.text
    assert 'href="/admin/settings"' not in page.text.split("<main", 1)[0]
    refused = client.post("/admin/settings", data={**_settings_form(), "csrf_token": csrf})
    assert refused.status_code == 403


def test_the_settings_page_shows_overrides_that_no_longer_fit(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    world_a.clinic.settings = {"monitoring": {"alert_heart_rate_above": 135}}
    db.commit()
    ui_login(client, "a-admin")
    page = client.get("/admin/settings")
    assert page.status_code == 200
    assert 'id="settings-problem"' in page.text
    assert "cited defaults apply until an administrator corrects them" in page.text
