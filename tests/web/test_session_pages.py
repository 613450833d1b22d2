"""The session screen through its forms: checks, order, dosing, readings, scales, adverse
events, discharge and sign-off, each error shown in its section."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ketacare.app import sessions as uc
from ketacare.app.permissions import Role
from ketacare.store.models import (
    BodyMeasurement,
    DoseOrder,
    MedicationEntry,
    TreatmentSession,
)
from ketacare.store.types import utcnow
from ketacare.web.ui import sessions as ui_sessions
from tests.conftest import ClinicWorld, ui_login


def _scheduled(db: Session, world: ClinicWorld) -> int:
    patient = world.patients[0]
    db.add(
        MedicationEntry(
            clinic_id=patient.clinic_id, patient_id=patient.id, name_entered="Vyvanse 50 mg"
        )
    )
    db.add(
        BodyMeasurement(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            measured_at=utcnow() - timedelta(days=1),
            weight_kg=64.0,
        )
    )
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id="iv-ketamine",
        scheduled_at=utcnow(),
        status="scheduled",
    )
    db.add(row)
    db.commit()
    return row.id


def _post(client: TestClient, url: str, csrf: str, **data: str) -> object:
    return client.post(url, data={"csrf_token": csrf, **data})


def test_a_session_from_checks_to_sign_off_through_the_forms(
    client: TestClient, db: Session, world_a: ClinicWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = _scheduled(db, world_a)
    csrf = ui_login(client, world_a.users[Role.PRESCRIBER].username)
    page = client.get(f"/sessions/{sid}")
    assert page.status_code == 200
    assert "Check and start the session" in page.text
    assert "No solid food for 6 hours" in page.text

    # The escort is not recorded: a hold, which needs the prescriber's reason.
    refused = _post(
        client, f"/sessions/{sid}/start", csrf, systolic="128", diastolic="82", fasting="yes"
    )
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "responsible adult" in refused.text  # type: ignore[attr-defined]
    started = _post(
        client,
        f"/sessions/{sid}/start",
        csrf,
        systolic="128",
        diastolic="82",
        heart_rate="74",
        fasting="yes",
        escort="yes",
        pregnancy="not_pregnant",
    )
    assert started.status_code == 303, started.text  # type: ignore[attr-defined]

    ordered = _post(
        client,
        f"/sessions/{sid}/order",
        csrf,
        mg_per_kg="0.5",
        minutes="40",
        basis="bag",
        basis_value="100",
    )
    assert ordered.status_code == 303  # type: ignore[attr-defined]
    page = client.get(f"/sessions/{sid}")
    assert "32 mg" in page.text and "150 mL/h" in page.text
    assert "not verified" in page.text

    assert _post(client, f"/sessions/{sid}/dose/start", csrf).status_code == 303  # type: ignore[attr-defined]
    bad = _post(client, f"/sessions/{sid}/record/vitals", csrf, heart_rate="400")
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "heart rate" in bad.text.lower()  # type: ignore[attr-defined]
    high = _post(
        client, f"/sessions/{sid}/record/vitals", csrf, systolic="186", diastolic="96", spo2="97"
    )
    assert high.status_code == 303  # type: ignore[attr-defined]
    live = client.get(f"/sessions/{sid}/live")
    assert "to acknowledge" in live.text and "186" in live.text
    # The card polls with the counts it shows: nothing new, nothing swapped.
    poll = live.text.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert "vitals=1" in poll
    built: list[object] = []
    real_spec = ui_sessions._chart_spec
    monkeypatch.setattr(
        ui_sessions, "_chart_spec", lambda *args: built.append(args) or real_spec(*args)
    )
    assert client.get(poll).status_code == 204
    assert built == []  # nothing changed: no chart built for a card left as it is
    assert client.get(poll.replace("vitals=1", "vitals=0")).status_code == 200
    assert len(built) == 1

    assert _post(client, f"/sessions/{sid}/dose/end", csrf).status_code == 303  # type: ignore[attr-defined]
    _post(client, f"/sessions/{sid}/record/score", csrf, instrument="moaas", item1="5")
    nausea = _post(
        client,
        f"/sessions/{sid}/record/adverse-event",
        csrf,
        code="nausea",
        severity="mild",
        outcome="resolved",
    )
    assert nausea.status_code == 303  # type: ignore[attr-defined]

    version = str(db.scalar(select(TreatmentSession.version).where(TreatmentSession.id == sid)))
    checked = _post(client, f"/sessions/{sid}/discharge", csrf, version=version, on_room_air="yes")
    assert checked.status_code == 200
    assert "Not ready for discharge" in checked.text
    assert "min to go" in checked.text
    early = _post(client, f"/sessions/{sid}/sign", csrf, version=version, on_room_air="yes")
    assert early.status_code == 422  # type: ignore[attr-defined]
    assert "Discharge criteria not met" in early.text  # type: ignore[attr-defined]

    db.execute(
        update(TreatmentSession)
        .where(TreatmentSession.id == sid)
        .values(
            dose_started_at=utcnow() - timedelta(minutes=115),
            dose_ended_at=utcnow() - timedelta(minutes=75),
        )
    )
    db.commit()
    # The device's reading at the end of the 40-minute infusion: the reassessment is done.
    device = uc.VitalsBatch.model_validate(
        {
            "samples": [
                {
                    "measured_at": utcnow() - timedelta(minutes=75),
                    "systolic": 150,
                    "diastolic": 90,
                    "heart_rate": 84,
                }
            ]
        }
    )
    uc.ingest_vitals(db, world_a.actor(Role.NURSE), sid, device)
    db.commit()
    _post(
        client,
        f"/sessions/{sid}/record/vitals",
        csrf,
        systolic="130",
        diastolic="84",
        heart_rate="76",
        spo2="98",
    )
    _post(
        client,
        f"/sessions/{sid}/record/score",
        csrf,
        instrument="cadss",
        **{f"item{i}": "0" for i in range(1, 24)},
    )
    version = str(db.scalar(select(TreatmentSession.version).where(TreatmentSession.id == sid)))
    good = dict.fromkeys(
        (
            "on_room_air",
            "oriented",
            "ambulating",
            "escort_confirmed",
            "driving_counselling_documented",
        ),
        "yes",
    )
    signed = _post(client, f"/sessions/{sid}/sign", csrf, version=version, **good)
    assert signed.status_code == 303, signed.text  # type: ignore[attr-defined]
    page = client.get(f"/sessions/{sid}")
    assert "Signed" in page.text and "Discharge criteria met" in page.text
    assert "Start dosing" not in page.text and "Record reading" not in page.text
    assert (
        _post(client, f"/sessions/{sid}/amend", csrf, text="Late entry: tea at 07:00").status_code
        == 303
    )  # type: ignore[attr-defined]
    assert "Late entry: tea at 07:00" in client.get(f"/sessions/{sid}").text
    assert db.scalar(select(DoseOrder.dose_mg).where(DoseOrder.session_id == sid)) == 32.0


def test_a_therapist_sees_the_session_without_its_forms(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    sid = _scheduled(db, world_a)
    ui_login(client, world_a.users[Role.THERAPIST].username)
    page = client.get(f"/sessions/{sid}")
    assert page.status_code == 200
    assert "Check and start the session" not in page.text
    assert "Calculate and order" not in page.text


def test_another_clinics_session_is_a_not_found_page(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    sid = _scheduled(db, world_b)
    ui_login(client, world_a.users[Role.NURSE].username)
    assert client.get(f"/sessions/{sid}").status_code == 404
    assert client.get(f"/sessions/{sid}/live").status_code == 404


def test_the_worklist_shows_the_days_sessions_and_open_ones_with_their_alerts(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    today = _scheduled(db, world_a)
    other = _scheduled(db, world_b)
    old = TreatmentSession(
        clinic_id=world_a.clinic.id,
        patient_id=world_a.patients[1].id,
        protocol_id="iv-ketamine",
        scheduled_at=utcnow() - timedelta(days=3),
        status="in_progress",
    )
    done = TreatmentSession(
        clinic_id=world_a.clinic.id,
        patient_id=world_a.patients[2].id,
        protocol_id="iv-ketamine",
        scheduled_at=utcnow() - timedelta(days=3),
        status="completed",
        signed_at=utcnow() - timedelta(days=3),
    )
    db.add_all([old, done])
    db.commit()
    ui_login(client, world_a.users[Role.NURSE].username)
    page = client.get("/sessions")
    assert page.status_code == 200
    assert f'href="/sessions/{today}"' in page.text
    assert f'href="/sessions/{old.id}"' in page.text, "an unsigned running session stays listed"
    assert f'href="/sessions/{done.id}"' not in page.text
    assert f'href="/sessions/{other}"' not in page.text


def _poll_url(html: str) -> str:
    return html.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")


def test_a_refresh_never_replaces_an_acknowledgement_box_and_critical_comes_first(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    sid = _scheduled(db, world_a)
    csrf = ui_login(client, world_a.users[Role.PRESCRIBER].username)
    precheck = {"fasting": "yes", "escort": "yes", "pregnancy": "not_pregnant"}
    _post(client, f"/sessions/{sid}/start", csrf, systolic="128", diastolic="82", **precheck)
    _post(client, f"/sessions/{sid}/order", csrf, mg_per_kg="0.5", minutes="40", basis="bag")
    _post(client, f"/sessions/{sid}/dose/start", csrf)
    # A surge first (a critical alert and a rise), then a fast heart rate (a warning).
    _post(client, f"/sessions/{sid}/record/vitals", csrf, systolic="186", diastolic="96")
    _post(client, f"/sessions/{sid}/record/vitals", csrf, heart_rate="118")
    page = client.get(f"/sessions/{sid}").text
    panel = page.split('id="alerts-panel"', 1)[1].split('id="monitoring-live"', 1)[0]
    assert "3 alerts to acknowledge" in panel
    # The critical reading's group first although it is older, its critical alert first.
    order = [panel.index(t) for t in ("Systolic 186 mmHg", "Systolic rose 58", "Heart rate 118")]
    assert order == sorted(order)
    boxes = re.findall(r'<input id="(ack-r\d+)" name="action"[^>]*hx-preserve="true"', panel)
    assert len(boxes) == 2 and "Acknowledge all 2" in panel

    # A new reading without an alert: the readings change, the alert panel is not sent.
    poll = _poll_url(page)
    _post(client, f"/sessions/{sid}/record/vitals", csrf, spo2="97")
    quiet = client.get(poll)
    assert quiet.status_code == 200 and "3 readings" in quiet.text
    assert "alerts-panel" not in quiet.text and 'name="action"' not in quiet.text
    # A new alert: the panel comes out of band, each open box under the same id, marked to be
    # kept as it is (hx-preserve keeps the element itself, with what is typed in it).
    _post(client, f"/sessions/{sid}/record/vitals", csrf, spo2="86")
    loud = client.get(_poll_url(quiet.text))
    assert '<div id="alerts-panel" hx-swap-oob="true">' in loud.text
    again = re.findall(r'<input id="(ack-r\d+)" name="action"[^>]*hx-preserve="true"', loud.text)
    assert set(boxes) < set(again) and "4 alerts to acknowledge" in loud.text
    oob = loud.text.split('<div id="alerts-panel" hx-swap-oob="true">', 1)[1]
    assert oob.index("SpO2 86%") < oob.index("Heart rate 118")  # critical first

    # The surge's two alerts, acknowledged together with one action.
    group = panel.split(f'id="{boxes[0]}"', 1)[0].rsplit("<form", 1)[1]
    alert_ids = re.findall(r'name="alert_id" value="(\d+)"', group)
    assert len(alert_ids) == 2
    done = client.post(
        f"/sessions/{sid}/alerts/ack",
        data={"csrf_token": csrf, "alert_id": alert_ids, "action": "Paused; 150/90 at 5 min"},
    )
    assert done.status_code == 303
    after = client.get(f"/sessions/{sid}").text
    assert "2 alerts to acknowledge" in after and "Acknowledged alerts (2)" in after
    again = client.post(
        f"/sessions/{sid}/alerts/ack",
        data={"csrf_token": csrf, "alert_id": alert_ids, "action": "Paused again"},
    )
    assert again.status_code == 422 and "already acknowledged" in again.text
