"""SQL statements per page do not grow with the data shown: a chart with one session and one
rating costs what a chart with eight sessions and twenty ratings costs, a worklist of one item
what a worklist of ten costs. A page that loads its rows one by one (N+1) fails here long before
it is slow in a clinic (bench/scale.py measures the times at 10^3 to 10^5 patients).

Each count is taken on the second of two identical requests, so caches filled on first use (the
clinic's name and zone, the knowledge files) and the once-a-minute touch of the sign-in session
are not counted. Every statement sent to the database is counted, reads and the audit rows.

Lists are compared at one item and at many, never at none: an empty worklist skips its alert
and acknowledgement queries, and a session without a dose order its verification and names
queries (two statements fewer each), a constant that does not grow."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session

from ketacare.app import session_record as rec
from ketacare.app import sessions as sessions_uc
from ketacare.app.assessments import _store
from ketacare.app.intake import consent_text
from ketacare.app.permissions import Role
from ketacare.app.text import fold
from ketacare.app.users import actor_for
from ketacare.store.models import (
    AdverseEvent,
    BodyMeasurement,
    ConsentRecord,
    MedicationEntry,
    Patient,
    SessionAlert,
    SessionEvent,
    TherapySession,
    TreatmentSession,
    VitalSample,
)
from ketacare.store.types import utcnow
from tests.conftest import ClinicWorld, bearer, ui_login

THERAPY_NOTE = {
    "attendance": "attended",
    "minutes": 50,
    "risk_check": {"asked": True, "result": "none"},
}
# Answers of each outcome scale (a mid score), so ratings rotate over the three of them.
ANSWERS = {"phq9": [1] * 8 + [0], "gad7": [1] * 7, "asrs": [2] * 18}


@contextmanager
def _counted(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()))

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def statements(client: TestClient, engine: Engine, url: str) -> list[str]:
    """Statements of one GET of ``url`` (answered 200), after a first one to warm the caches."""
    assert client.get(url).status_code == 200
    with _counted(engine) as seen:
        response = client.get(url)
    assert response.status_code == 200, response.text
    return seen


def assert_flat(few: list[str], many: list[str], bound: int) -> None:
    """As many statements with little data as with much, and no more than ``bound``."""
    listing = "\n".join(s[:120] for s in many)
    assert len(few) == len(many), f"{len(few)} statements, then {len(many)}:\n{listing}"
    assert len(many) <= bound, f"{len(many)} statements, more than {bound}:\n{listing}"


# --- builders ---------------------------------------------------------------------------------


def _patient(db: Session, world: ClinicWorld, n: int) -> Patient:
    family, given = f"Countfamily{n:03d}", "Given"
    row = Patient(
        clinic_id=world.clinic.id,
        mrn=f"QC-{n:04d}",
        family_name=family,
        given_name=given,
        family_key=fold(family),
        given_key=fold(given),
        name_key=f"{fold(family)} {fold(given)}",
        date_of_birth=datetime(1980, 1, 1 + n % 28).date(),
        sex="female",
        stage="in_course",
    )
    db.add(row)
    db.flush()
    return row


def _dosed(db: Session, patient: Patient, number: int, at: datetime, **values: Any) -> int:
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        number=number,
        protocol_id="iv-ketamine",
        scheduled_at=at,
        status=values.pop("status", "completed"),
        baseline={"systolic": 120, "diastolic": 80, "heart_rate": 70},
        started_at=at,
        dose_started_at=at + timedelta(minutes=10),
        **values,
    )
    db.add(row)
    db.flush()
    return row.id


def _sign(db: Session, session_ids: list[int]) -> None:
    """Signed last, as in the clinic: the database refuses new records in a signed session."""
    db.flush()
    db.execute(
        update(TreatmentSession)
        .where(TreatmentSession.id.in_(session_ids))
        .values(signed_at=TreatmentSession.ended_at)
    )


def _alert(db: Session, patient: Patient, session_id: int, at: datetime) -> int:
    vital = VitalSample(
        clinic_id=patient.clinic_id,
        session_id=session_id,
        measured_at=at,
        systolic=184,
        diastolic=96,
        heart_rate=88,
        source="manual",
    )
    db.add(vital)
    db.flush()
    alert = SessionAlert(
        clinic_id=patient.clinic_id,
        session_id=session_id,
        vital_sample_id=vital.id,
        raised_at=at,
        code="sbp_at_least",
        severity="warning",
        field="systolic",
        value=184,
        threshold=180,
        text="Systolic 184 mmHg is at or above 180.",
        sources=["ketacare-clinic-convention"],
        knowledge_version="test",
    )
    db.add(alert)
    db.flush()
    return alert.id


def _acknowledge(db: Session, patient: Patient, session_id: int, alert_id: int) -> None:
    db.add(
        SessionEvent(
            clinic_id=patient.clinic_id,
            session_id=session_id,
            kind="alert_ack",
            detail={"alert_id": alert_id},
        )
    )


def _adverse_event(db: Session, patient: Patient, session_id: int, at: datetime) -> None:
    db.add(
        AdverseEvent(
            clinic_id=patient.clinic_id,
            session_id=session_id,
            patient_id=patient.id,
            code="nausea",
            severity="mild",
            onset_at=at,
            outcome="resolved",
            knowledge_version="test",
        )
    )


def _course(
    db: Session, patient: Patient, *, sessions: int, ratings: int, extras: int
) -> list[int]:
    """A course as the chart shows it: signed dosing sessions (each with an alert, the first
    acknowledged, an adverse event and a therapy session the next day), weekly ratings from
    before the first dose, and ``extras`` medicines, weights and consents."""
    first = utcnow() - timedelta(days=3 * sessions + 14)
    dosed = []
    for n in range(sessions):
        at = first + timedelta(days=3 * n)
        sid = _dosed(db, patient, n + 1, at, ended_at=at + timedelta(hours=2))
        alert = _alert(db, patient, sid, at + timedelta(minutes=40))
        if n == 0:
            _acknowledge(db, patient, sid, alert)
        _adverse_event(db, patient, sid, at + timedelta(minutes=30))
        dosed.append(sid)
    _sign(db, dosed)
    for n, sid in enumerate(dosed):
        # The CBT session the day after each infusion; the last one still to come.
        at = first + timedelta(days=3 * n + 1)
        done = n < len(dosed) - 1
        db.add(
            TherapySession(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,
                follows_session_id=sid,
                scheduled_at=at if done else utcnow() + timedelta(days=1),
                minutes=50,
                status="completed" if done else "scheduled",
                note=THERAPY_NOTE if done else None,
                signed_at=at + timedelta(hours=1) if done else None,
            )
        )
    for k in range(ratings):
        instrument = ("phq9", "gad7", "asrs")[k % 3]
        at = first - timedelta(days=7) + timedelta(days=7 * (k // 3), hours=k % 3)
        _store(
            db, patient, instrument, ANSWERS[instrument], source="staff", at=at, recorded_by=None
        )
    for k in range(extras):
        db.add(
            MedicationEntry(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,
                name_entered=f"sertraline {50 + 25 * k} mg",
            )
        )
        db.add(
            BodyMeasurement(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,
                measured_at=first + timedelta(days=k),
                weight_kg=70.0 + k,
                height_cm=170.0,
            )
        )
        db.add(
            ConsentRecord(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,
                consent_version=consent_text()["version"],
                status="given",
            )
        )
    db.commit()
    return dosed


def _signed_in(client: TestClient, world: ClinicWorld) -> None:
    ui_login(client, world.users[Role.PRESCRIBER].username)


# --- the pages --------------------------------------------------------------------------------


def test_the_chart_and_its_cards_cost_the_same_for_one_session_or_eight(
    client: TestClient, db: Session, engine: Engine, world_a: ClinicWorld
) -> None:
    small, large = _patient(db, world_a, 1), _patient(db, world_a, 2)
    _course(db, small, sessions=1, ratings=1, extras=1)
    course = _course(db, large, sessions=8, ratings=20, extras=5)
    _signed_in(client, world_a)

    # The chart page, then the cards it loads: outcomes, therapy, the interaction screen.
    for url, bound in (("", 13), ("/outcomes", 9), ("/therapy", 6), ("/interactions", 5)):
        few = statements(client, engine, f"/patients/{small.id}{url}")
        many = statements(client, engine, f"/patients/{large.id}{url}")
        assert_flat(few, many, bound)
    assert "sertraline 150 mg" in client.get(f"/patients/{large.id}").text, "the fifth medicine"
    panel_shown = client.get(f"/patients/{large.id}/outcomes").text
    assert all(f'href="/sessions/{sid}"' in panel_shown for sid in course)
    therapy = client.get(f"/patients/{large.id}/therapy").text
    assert len(set(re.findall(r'href="/therapy/(\d+)"', therapy))) == 8


def test_the_session_worklist_costs_the_same_for_one_session_or_ten(
    client: TestClient, db: Session, engine: Engine, world_a: ClinicWorld
) -> None:
    # Two days of the clinic: one with a single session, one with ten (alerts on each, one
    # acknowledged; each patient with an open risk flag, and one with a CBT note's flag too). A
    # running unsigned session is listed on both days.
    zone = ZoneInfo(world_a.clinic.timezone)
    today = utcnow().astimezone(zone).date()
    quiet, busy = (datetime.combine(today - timedelta(days=d), time(9), zone) for d in (9, 2))
    patients = [_patient(db, world_a, n) for n in range(10)]
    dosed = [_dosed(db, patients[0], 1, quiet, ended_at=quiet + timedelta(hours=2))]
    for n, p in enumerate(patients):
        at = busy + timedelta(minutes=20 * n)
        dosed.append(_dosed(db, p, 2, at, ended_at=at + timedelta(hours=2)))
        alert = _alert(db, p, dosed[-1], at + timedelta(minutes=40))
        if n == 0:
            _acknowledge(db, p, dosed[-1], alert)
        answers = [1] * 8 + [1]  # PHQ-9 item 9 answered "several days": an open risk flag
        _store(db, p, "phq9", answers, source="self_report", at=at, recorded_by=None)
    db.add(
        TherapySession(
            clinic_id=world_a.clinic.id,
            patient_id=patients[0].id,
            scheduled_at=busy - timedelta(days=1),
            status="scheduled",
            note={**THERAPY_NOTE, "risk_check": {"asked": True, "result": "active_ideation"}},
        )
    )
    _sign(db, dosed)
    running = _dosed(db, patients[1], 3, utcnow() - timedelta(hours=1), status="in_progress")
    _alert(db, patients[1], running, utcnow())
    db.commit()
    _signed_in(client, world_a)

    days = {"one": f"/sessions?day={quiet.date()}", "ten": f"/sessions?day={busy.date()}"}
    # Sessions, alerts, acknowledgements and the open risk flags of the page's patients in one
    # statement each.
    assert_flat(statements(client, engine, days["one"]), statements(client, engine, days["ten"]), 7)
    page = client.get(days["ten"]).text
    assert all(f'href="/sessions/{sid}"' in page for sid in [*dosed[1:], running])
    assert page.count("risk flag: ") == 11  # ten patients' rows, one of them listed twice
    # The older CBT flag is critical: it comes before the newer PHQ-9 one.
    assert "Critical risk flag: CBT risk check: Active ideation" in page
    assert "(and 1 more)" in page
    assert f'href="/sessions/{dosed[0]}"' not in page


def test_the_patient_list_costs_the_same_for_one_patient_or_a_full_page(
    client: TestClient, db: Session, engine: Engine, world_a: ClinicWorld
) -> None:
    # A search that finds one patient, then the first page of thirty (25 shown, a next link).
    for n in range(30):
        _patient(db, world_a, n)
    db.commit()
    _signed_in(client, world_a)

    one = statements(client, engine, "/patients?q=QC-0007")
    page = statements(client, engine, "/patients?q=countfamily")
    assert_flat(one, page, 3)
    assert "Countfamily024" in client.get("/patients?q=countfamily").text


def test_the_therapy_worklist_costs_the_same_for_one_session_or_ten(
    client: TestClient, db: Session, engine: Engine, world_a: ClinicWorld
) -> None:
    patients = [_patient(db, world_a, n) for n in range(10)]

    def therapy(p: Patient, at: datetime, follows: int | None) -> None:
        db.add(
            TherapySession(
                clinic_id=p.clinic_id,
                patient_id=p.id,
                scheduled_at=at,
                minutes=50,
                status="scheduled",
                follows_session_id=follows,
            )
        )

    infusion = utcnow() - timedelta(days=1)
    first = _dosed(db, patients[0], 1, infusion, ended_at=infusion + timedelta(hours=2))
    therapy(patients[0], utcnow() + timedelta(hours=2), first)
    db.commit()
    _signed_in(client, world_a)
    one = statements(client, engine, "/therapy")

    for n, p in enumerate(patients[1:], start=1):
        sid = _dosed(db, p, 1, infusion, ended_at=infusion + timedelta(hours=2))
        therapy(p, utcnow() + timedelta(hours=2, minutes=10 * n), sid if n % 2 else None)
    db.commit()
    ten = statements(client, engine, "/therapy")
    assert_flat(one, ten, 4)
    assert client.get("/therapy").text.count('href="/therapy/') >= 10


def _running(db: Session, world: ClinicWorld, patient: Patient, orders: int) -> int:
    """A session in progress, before the dose, with ``orders`` dose orders by the prescriber
    (each calculated from the patient's weight, as the order form makes them)."""
    began = utcnow() - timedelta(hours=1)
    db.add(
        BodyMeasurement(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            measured_at=began - timedelta(minutes=5),
            weight_kg=70.0,
        )
    )
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        number=1,
        protocol_id="iv-ketamine",
        scheduled_at=began,
        status="in_progress",
        baseline={"systolic": 120, "diastolic": 80, "heart_rate": 70},
        started_at=began,
    )
    db.add(row)
    db.commit()
    prescriber = actor_for(world.users[Role.PRESCRIBER])
    for k in range(orders):
        request = rec.OrderRequest(mg_per_kg=0.5 - 0.05 * k, minutes=40, bag_volume_ml=100)
        rec.order_dose(db, prescriber, row.id, request)
    return row.id


def test_the_live_session_screen_costs_the_same_for_few_readings_or_many(
    client: TestClient, db: Session, engine: Engine, world_a: ClinicWorld
) -> None:
    # One dose order, one reading and one alert, beside three orders and thirty readings with
    # five alerts (two acknowledged), an adverse event and in-session ratings.
    small, large = _patient(db, world_a, 1), _patient(db, world_a, 2)
    ids = {}
    for p, orders, readings, alerts in ((small, 1, 1, 1), (large, 3, 30, 5)):
        sid = ids[p.id] = _running(db, world_a, p, orders)
        began = utcnow() - timedelta(minutes=readings + 5)
        for k in range(readings):
            db.add(
                VitalSample(
                    clinic_id=p.clinic_id,
                    session_id=sid,
                    measured_at=began + timedelta(minutes=k),
                    systolic=122,
                    diastolic=79,
                    heart_rate=72,
                    spo2=98,
                    respiratory_rate=14,
                    source="device",
                    sample_key=f"qc-{sid}-{k}",
                )
            )
        for k in range(alerts):
            alert = _alert(db, p, sid, began + timedelta(minutes=k))
            if k < 2 and alerts > 1:
                _acknowledge(db, p, sid, alert)
        if alerts > 1:
            _adverse_event(db, p, sid, began + timedelta(minutes=2))
            for instrument, answers in (("moaas", [5]), ("cadss", [0] * 23)):
                at = began + timedelta(minutes=3)
                _store(
                    db,
                    p,
                    instrument,
                    answers,
                    source="staff",
                    at=at,
                    recorded_by=None,
                    session_id=sid,
                )
        db.commit()
    _signed_in(client, world_a)

    live = {p.id: statements(client, engine, f"/sessions/{ids[p.id]}/live") for p in (small, large)}
    page = {p.id: statements(client, engine, f"/sessions/{ids[p.id]}") for p in (small, large)}
    assert_flat(live[small.id], live[large.id], 16)
    # The page adds what the dose waits for: open risk flags, risk decisions, the previous dose.
    assert_flat(page[small.id], page[large.id], 21)
    # The acknowledgements come from the events the screen has already read: the same ones.
    card = client.get(f"/sessions/{ids[large.id]}/live").text
    assert "Acknowledged alerts (2)" in card and "acked=2" in card
    nurse = world_a.actor(Role.NURSE)
    events = sessions_uc.get_session(db, nurse, ids[large.id]).events
    read_again = rec.session_record(db, nurse, ids[large.id])
    assert rec.session_record(db, nurse, ids[large.id], events=events) == read_again
    assert len(read_again.acknowledged_alert_ids) == 2


def test_the_discharge_check_costs_the_same_for_few_readings_or_many(
    client: TestClient, db: Session, engine: Engine, world_a: ClinicWorld
) -> None:
    # Every blood pressure since the dose started is read for the discharge check (the trend
    # and the reading about 40 minutes in): in one query, however many there are.
    small, large = _patient(db, world_a, 1), _patient(db, world_a, 2)
    ids = {}
    for p, readings in ((small, 2), (large, 60)):
        sid = ids[p.id] = _running(db, world_a, p, 1)
        started = utcnow() - timedelta(minutes=readings * 2 + 10)
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == sid)
            .values(
                dose_started_at=started,
                dose_ended_at=started + timedelta(minutes=1),
                version=TreatmentSession.version + 1,
            )
        )
        for k in range(readings):
            db.add(
                VitalSample(
                    clinic_id=p.clinic_id,
                    session_id=sid,
                    measured_at=started + timedelta(minutes=2 * k + 2),
                    systolic=130 - k % 5,
                    diastolic=80,
                    heart_rate=72,
                    spo2=98,
                    source="device",
                    sample_key=f"qd-{sid}-{k}",
                )
            )
        db.commit()
    headers = bearer(db, world_a.users[Role.NURSE])

    def check(sid: int) -> list[str]:
        url = f"/api/v1/sessions/{sid}/discharge-check"
        assert client.post(url, json={}, headers=headers).status_code == 200
        with _counted(engine) as seen:
            response = client.post(url, json={}, headers=headers)
        assert response.status_code == 200, response.text
        assert len(response.json()["inputs"]["bp_readings"]) in (2, 60)
        return seen

    assert_flat(check(ids[small.id]), check(ids[large.id]), 12)
