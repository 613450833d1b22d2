"""The session screen through its forms: checks, order, dosing, readings, scales, adverse
events, discharge and sign-off, each error shown in its section; risk flags and the
prescriber's decision, refusals on the record, and no clinical answer pre-selected."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ketacare.app import sessions as uc
from ketacare.app.assessments import _store
from ketacare.app.permissions import Role
from ketacare.store.models import (
    AdverseEvent,
    BodyMeasurement,
    DoseOrder,
    MedicationEntry,
    TreatmentSession,
)
from ketacare.store.types import utcnow
from ketacare.web.ui import sessions as ui_sessions
from tests.conftest import ClinicWorld, ready_for_dosing, ui_login


def _scheduled(db: Session, world: ClinicWorld) -> int:
    patient = world.patients[0]
    ready_for_dosing(db, patient)
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
    answers = {
        "systolic": "128",
        "diastolic": "82",
        "heart_rate": "74",
        "fasting": "yes",
        "escort": "yes",
        "pregnancy": "not_pregnant",
        "acknowledge_caution": "yes",
    }
    # Vyvanse is a psychostimulant the Spravato label names: the monitoring change is written.
    unplanned = _post(client, f"/sessions/{sid}/start", csrf, **answers)
    assert unplanned.status_code == 422  # type: ignore[attr-defined]
    assert "write down the monitoring change" in unplanned.text.lower()  # type: ignore[attr-defined]
    plan = "BP every 5 min for the first 40 min"
    started = _post(client, f"/sessions/{sid}/start", csrf, **answers, monitoring_plan=plan)
    assert started.status_code == 303, started.text  # type: ignore[attr-defined]
    assert f"Monitoring change: “{plan}”" in client.get(f"/sessions/{sid}").text

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

    # Ended at once: under the protocol's minimum dosing time, it needs the reason.
    assert "Dosing has run under 40 min" in client.get(f"/sessions/{sid}").text
    at_once = _post(client, f"/sessions/{sid}/dose/end", csrf)
    assert at_once.status_code == 422  # type: ignore[attr-defined]
    assert "minimum dosing time of 40 min" in at_once.text  # type: ignore[attr-defined]
    reason = "Pump occlusion, line resited, bag discarded"
    ended = _post(client, f"/sessions/{sid}/dose/end", csrf, reason=reason)
    assert ended.status_code == 303  # type: ignore[attr-defined]
    assert reason in client.get(f"/sessions/{sid}").text
    _post(client, f"/sessions/{sid}/record/score", csrf, instrument="moaas", item1="5")
    nausea = _post(
        client,
        f"/sessions/{sid}/record/adverse-event",
        csrf,
        code="nausea",
        severity="mild",
        serious="no",
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
    precheck = {
        "fasting": "yes",
        "escort": "yes",
        "pregnancy": "not_pregnant",
        "acknowledge_caution": "yes",
        "monitoring_plan": "BP every 5 min for the first 40 min",
    }
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


class _Forms(HTMLParser):
    """Every input, select and option inside the forms whose action ends with one of
    ``actions``, with their attributes, and each select's options in order."""

    def __init__(self, actions: tuple[str, ...]) -> None:
        super().__init__()
        self.actions = actions
        self.inside = False
        self.inputs: list[dict[str, str | None]] = []
        self.selects: list[list[dict[str, str | None]]] = []
        self.forms = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = (a.get("action") or "").endswith(self.actions)
            self.forms += self.inside
        elif self.inside and tag == "input":
            self.inputs.append(a)
        elif self.inside and tag == "select":
            self.selects.append([])
        elif self.inside and tag == "option":
            self.selects[-1].append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def _running(db: Session, world: ClinicWorld) -> int:
    sid = _scheduled(db, world)
    db.execute(
        update(TreatmentSession)
        .where(TreatmentSession.id == sid)
        .values(
            status="in_progress",
            baseline={"systolic": 124, "diastolic": 78},
            started_at=utcnow() - timedelta(minutes=30),
            dose_started_at=utcnow() - timedelta(minutes=20),
            version=TreatmentSession.version + 1,
        )
    )
    db.commit()
    return sid


def test_no_answer_of_the_score_and_adverse_event_forms_is_pre_selected(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    sid = _running(db, world_a)
    csrf = ui_login(client, world_a.users[Role.NURSE].username)
    page = client.get(f"/sessions/{sid}")
    forms = _Forms(("/record/score", "/record/adverse-event"))
    forms.feed(page.text)
    assert forms.forms == 3, "MOAA/S, CADSS and adverse events"
    clinical = [i for i in forms.inputs if i.get("type") in ("radio", "checkbox")]
    assert clinical, "the serious yes/no is asked"
    assert not [i for i in clinical if "checked" in i], "no radio or checkbox is pre-checked"
    # 1 MOAA/S + 23 CADSS items + event, severity, outcome.
    assert len(forms.selects) == 27
    for options in forms.selects:
        assert not [o for o in options if "selected" in o], "no option is pre-selected"
        # A select without a selected option shows its first: that must be the placeholder.
        assert options[0].get("value") == "", "the first option is 'choose', not an answer"

    # A missing answer is refused, naming it.
    moaas = _post(client, f"/sessions/{sid}/record/score", csrf, instrument="moaas")
    assert moaas.status_code == 422  # type: ignore[attr-defined]
    assert "Answer item 1 of the moaas" in moaas.text  # type: ignore[attr-defined]
    cadss = {f"item{i}": "0" for i in range(1, 23)}  # item 23 left unanswered
    partial = _post(client, f"/sessions/{sid}/record/score", csrf, instrument="cadss", **cadss)
    assert partial.status_code == 422  # type: ignore[attr-defined]
    assert "Answer item 23 of the cadss" in partial.text  # type: ignore[attr-defined]
    for missing, words in (
        ("severity", "Choose the severity"),
        ("serious", "Choose whether it is serious"),
        ("outcome", "Choose the outcome"),
    ):
        answers = {"code": "nausea", "severity": "mild", "serious": "no", "outcome": "resolved"}
        answers.pop(missing)
        refused = _post(client, f"/sessions/{sid}/record/adverse-event", csrf, **answers)
        assert refused.status_code == 422, missing  # type: ignore[attr-defined]
        assert words in refused.text  # type: ignore[attr-defined]
    assert db.scalar(select(func.count()).select_from(AdverseEvent)) == 0


def test_a_prescriber_decides_on_a_risk_flag_shown_on_the_page_and_the_worklist(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    sid = _scheduled(db, world_a)
    patient = world_a.patients[0]
    _store(
        db,
        patient,
        "phq9",
        [2, 2, 1, 1, 1, 1, 1, 0, 1],
        source="self_report",
        at=utcnow() - timedelta(hours=20),
        recorded_by=None,
    )
    db.commit()
    csrf = ui_login(client, world_a.users[Role.PRESCRIBER].username)
    words = "PHQ-9 question 9, &#34;Thoughts that you would be better off dead"
    worklist = client.get("/sessions").text
    assert "Urgent risk flag: " + words in worklist
    page = client.get(f"/sessions/{sid}").text
    assert "1 open risk flag: no dose until a prescriber decides." in page and words in page
    assert "answered &#34;Several days&#34;" in page
    # Nothing chosen: the decision is asked for, not assumed.
    unchosen = _post(
        client,
        f"/sessions/{sid}/risk-decision",
        csrf,
        reason="Seen today, C-SSRS negative for intent",
    )
    assert unchosen.status_code == 422  # type: ignore[attr-defined]
    key = page.split('name="flag" value="', 1)[1].split('"', 1)[0]
    decided = client.post(
        f"/sessions/{sid}/risk-decision",
        data={
            "csrf_token": csrf,
            "decision": "proceed",
            "flag": key,
            "reason": "Seen today, C-SSRS negative for intent; safety plan reviewed",
        },
    )
    assert decided.status_code == 303, decided.text
    page = client.get(f"/sessions/{sid}").text
    assert "open risk flag" not in page
    assert "C-SSRS negative for intent" in page
    assert "Urgent risk flag" not in client.get("/sessions").text


def test_the_session_page_shows_a_refused_start_and_an_order_refused_as_too_soon(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    sid = _scheduled(db, world_a)
    patient = world_a.patients[0]
    before = utcnow() - timedelta(hours=9)
    db.add(
        TreatmentSession(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            protocol_id="iv-ketamine",
            scheduled_at=before,
            status="completed",
            dose_started_at=before,
            dose_ended_at=before + timedelta(minutes=40),
            signed_at=before + timedelta(hours=2),
        )
    )
    db.commit()
    csrf = ui_login(client, world_a.users[Role.PRESCRIBER].username)
    assert "only 9.0 h before" in client.get(f"/sessions/{sid}").text
    refused = _post(
        client,
        f"/sessions/{sid}/start",
        csrf,
        systolic="186",
        diastolic="112",
        fasting="yes",
        escort="yes",
        pregnancy="not_pregnant",
    )
    assert refused.status_code == 422  # type: ignore[attr-defined]
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
    page = client.get(f"/sessions/{sid}").text
    assert "Refused on this session" in page and "BP 186/112" in page
    assert "Order refused: nothing on it may be given." in page
    assert "the earliest next dose is" in page
    assert "Reason to dose inside the minimum interval (prescriber)" in page
    assert "start refused" in page, "the refusal is on the timeline"
