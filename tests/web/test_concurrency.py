"""Concurrent writers through a live server (uvicorn on a socket, requests from two threads):
no lost update, no duplicate, no 500.

Where the point is a race, both requests are held at a rendezvous after they have read the
row and before either writes, so the race happens on every run rather than by luck. On SQLite
the second writer then waits for the first to commit (one writer at a time, busy_timeout); on
PostgreSQL it blocks on the row or unique-index entry the first one holds."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from ketacare.store.models import (
    AuditEvent,
    MedicationEntry,
    Patient,
    SessionAlert,
    TreatmentSession,
    VitalSample,
)
from tests.conftest import ClinicWorld, bearer

# `make soak` (KETACARE_SOAK=1) repeats the races many more times.
ROUNDS = 50 if os.environ.get("KETACARE_SOAK") else 1


class Rendezvous:
    """Holds the first two server threads that reach a point until both are there."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=15)
        self.arrived: set[int] = set()
        self.lock = threading.Lock()

    def arrive(self) -> None:
        with self.lock:
            me = threading.get_ident()
            if len(self.arrived) == 2 or me in self.arrived:
                return
            self.arrived.add(me)
        self.barrier.wait()


@contextmanager
def meeting_before_flush(kind: type) -> Iterator[Rendezvous]:
    """Both requests have read and checked the row; they meet before writing a ``kind``."""
    meeting = Rendezvous()

    def before_flush(session: Session, _context: Any, _instances: Any) -> None:
        if any(isinstance(o, kind) for o in (*session.new, *session.dirty)):
            meeting.arrive()

    event.listen(Session, "before_flush", before_flush)
    try:
        yield meeting
    finally:
        event.remove(Session, "before_flush", before_flush)


@contextmanager
def meeting_before_insert(engine: Engine, table: str) -> Iterator[Rendezvous]:
    """Both requests meet right before their INSERT into ``table`` goes to the database."""
    meeting = Rendezvous()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The insert may sit inside a WITH (it returns one row of arrays on PostgreSQL).
        if f"INSERT INTO {table.upper()} " in statement.upper():
            meeting.arrive()

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield meeting
    finally:
        event.remove(engine, "before_cursor_execute", before)


def at_once(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls in threads released together; their responses in call order."""
    start = threading.Barrier(len(calls), timeout=15)
    out: list[httpx.Response | BaseException] = [RuntimeError("no answer")] * len(calls)

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = calls[i]()
        except BaseException as exc:  # reported by the assertion below
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(isinstance(r, httpx.Response) for r in out), out
    return out  # type: ignore[return-value]


def _client(base: str, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=base, headers=headers, timeout=30)


PATIENT = {"family_name": "Race", "given_name": "Pat", "date_of_birth": "1980-02-02", "sex": "male"}


def _events(db: Session, action: str) -> list[str]:
    return list(
        db.scalars(
            select(AuditEvent.outcome).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


# --- patients -----------------------------------------------------------------------------------


def test_two_users_saving_the_same_version_of_a_patient_the_second_gets_409(
    live_server: str, db: Session, world_a: ClinicWorld
) -> None:
    pid = world_a.patients[0].id
    nurse = _client(live_server, bearer(db, world_a.users[Role.NURSE]))
    prescriber = _client(live_server, bearer(db, world_a.users[Role.PRESCRIBER]))
    path = f"/api/v1/patients/{pid}"
    with meeting_before_flush(Patient) as meeting:
        first, second = at_once(
            partial(nurse.put, path, json={**PATIENT, "phone": "+1 111 1111", "version": 1}),
            partial(prescriber.put, path, json={**PATIENT, "phone": "+1 222 2222", "version": 1}),
        )
    assert len(meeting.arrived) == 2  # both had read version 1 before either wrote
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner, loser = (first, second) if first.status_code == 200 else (second, first)
    # Refused by the version check of the UPDATE itself (it had read version 1 too).
    assert "changed this patient at the same moment" in loser.json()["detail"]
    db.expire_all()
    row = db.get(Patient, pid)
    assert row is not None
    assert (row.version, row.phone) == (2, winner.json()["phone"])
    assert _events(db, "patient.update") == ["success", "conflict"]


def test_repeated_simultaneous_saves_keep_exactly_one_change_each_round(
    live_server: str, db: Session, world_a: ClinicWorld
) -> None:
    """No rendezvous: the two requests race freely; whichever order the database sees, one
    wins and the other is refused, never both applied."""
    pid = world_a.patients[1].id
    nurse = _client(live_server, bearer(db, world_a.users[Role.NURSE]))
    admin = _client(live_server, bearer(db, world_a.users[Role.ADMIN]))
    path = f"/api/v1/patients/{pid}"
    version, kept, rounds = 1, [], 8 * ROUNDS
    for n in range(rounds):
        a, b = at_once(
            partial(nurse.put, path, json={**PATIENT, "address": f"{n} A St", "version": version}),
            partial(admin.put, path, json={**PATIENT, "address": f"{n} B St", "version": version}),
        )
        assert sorted([a.status_code, b.status_code]) == [200, 409], (a.text, b.text)
        won = a if a.status_code == 200 else b
        version = won.json()["version"]
        kept.append(won.json()["address"])
    db.expire_all()
    row = db.get(Patient, pid)
    assert row is not None
    assert (row.version, row.address) == (1 + rounds, kept[-1])
    assert Counter(_events(db, "patient.update")) == {"success": rounds, "conflict": rounds}


def test_two_registrations_of_one_mrn_at_once_store_one_patient(
    live_server: str, db: Session, world_a: ClinicWorld
) -> None:
    nurse = _client(live_server, bearer(db, world_a.users[Role.NURSE]))
    admin = _client(live_server, bearer(db, world_a.users[Role.ADMIN]))
    body = {**PATIENT, "mrn": "RACE-1"}
    with meeting_before_flush(Patient) as meeting:
        a, b = at_once(
            partial(nurse.post, "/api/v1/patients", json=body),
            partial(admin.post, "/api/v1/patients", json=body),
        )
    assert len(meeting.arrived) == 2  # both found the MRN free before either inserted
    assert sorted([a.status_code, b.status_code]) == [201, 422]
    refused = a if a.status_code == 422 else b
    assert refused.json()["detail"][0]["loc"] == ["body", "mrn"]
    count = db.scalar(select(func.count()).select_from(Patient).where(Patient.mrn == "RACE-1"))
    assert count == 1
    assert _events(db, "patient.create") == ["success", "invalid"]


# --- medications --------------------------------------------------------------------------------


def test_two_changes_to_the_same_medicine_version_the_second_gets_409(
    live_server: str, db: Session, world_a: ClinicWorld
) -> None:
    pid = world_a.patients[0].id
    nurse = _client(live_server, bearer(db, world_a.users[Role.NURSE]))
    prescriber = _client(live_server, bearer(db, world_a.users[Role.PRESCRIBER]))
    created = nurse.post(
        f"/api/v1/patients/{pid}/medications", json={"name": "sertraline", "dose_text": "50 mg"}
    )
    assert created.status_code == 201, created.text
    med = created.json()
    path = f"/api/v1/patients/{pid}/medications/{med['id']}"
    with meeting_before_flush(MedicationEntry) as meeting:
        first, second = at_once(
            partial(nurse.patch, path, json={"version": med["version"], "status": "on_hold"}),
            partial(
                prescriber.patch,
                path,
                json={"version": med["version"], "status": "active", "dose_text": "100 mg"},
            ),
        )
    assert len(meeting.arrived) == 2
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner, loser = (first, second) if first.status_code == 200 else (second, first)
    assert "changed this medicine at the same moment" in loser.json()["detail"]
    db.expire_all()
    row = db.get(MedicationEntry, med["id"])
    assert row is not None
    assert (row.version, row.status, row.dose_text) == (
        med["version"] + 1,
        winner.json()["status"],
        winner.json()["dose_text"],
    )
    assert _events(db, "medication.update") == ["success", "conflict"]


# --- vital-sign batches -------------------------------------------------------------------------


@pytest.fixture
def running_session(db: Session, world_a: ClinicWorld) -> TreatmentSession:
    row = TreatmentSession(
        clinic_id=world_a.clinic.id,
        patient_id=world_a.patients[0].id,
        protocol_id="iv-ketamine",
        scheduled_at=datetime.now(UTC),
        started_at=datetime.now(UTC),
        status="in_progress",
        baseline={"systolic": 120, "diastolic": 80},
    )
    db.add(row)
    db.commit()
    return row


def _samples(keys: range, start: datetime, prefix: str = "m1") -> list[dict[str, Any]]:
    # Every fifth sample has a heart rate of 120: an alert each.
    return [
        {
            "measured_at": (start + timedelta(seconds=k)).isoformat(),
            "systolic": 120 + k % 20,
            "diastolic": 78,
            "heart_rate": 120 if k % 5 == 0 else 80,
            "sample_key": f"{prefix}-{k:03d}",
        }
        for k in keys
    ]


def _stored(db: Session, session_id: int) -> tuple[list[str], int]:
    keys = db.scalars(
        select(VitalSample.sample_key)
        .where(VitalSample.session_id == session_id)
        .order_by(VitalSample.sample_key)
    ).all()
    alerts = db.scalar(
        select(func.count()).select_from(SessionAlert).where(SessionAlert.session_id == session_id)
    )
    return [k or "" for k in keys], int(alerts or 0)


def test_two_devices_sending_the_same_batch_at_once_store_it_once(
    live_server: str,
    engine: Engine,
    db: Session,
    world_a: ClinicWorld,
    running_session: TreatmentSession,
) -> None:
    path = f"/api/v1/sessions/{running_session.id}/vitals"
    start = datetime.now(UTC) - timedelta(minutes=30)
    batch = {"samples": _samples(range(50), start)}
    # Two devices, each with its own token of the monitoring nurse.
    one = _client(live_server, bearer(db, world_a.users[Role.NURSE]))
    two = _client(live_server, bearer(db, world_a.users[Role.NURSE]))
    with meeting_before_insert(engine, "vital_samples") as meeting:
        a, b = at_once(partial(one.post, path, json=batch), partial(two.post, path, json=batch))
    assert len(meeting.arrived) == 2  # both inserts were in the database at the same moment
    assert (a.status_code, b.status_code) == (200, 200), (a.text, b.text)
    results = sorted([a.json(), b.json()], key=lambda r: len(r["stored"]))
    assert (results[0]["stored"], results[0]["duplicates"]) == ([], list(range(50)))
    assert (len(results[1]["stored"]), results[1]["duplicates"]) == (50, [])
    # Alerts are raised by the request that stored the samples, once.
    assert (len(results[0]["alerts"]), len(results[1]["alerts"])) == (0, 10)
    db.expire_all()
    keys, alerts = _stored(db, running_session.id)
    assert keys == [f"m1-{k:03d}" for k in range(50)] and alerts == 10


def test_overlapping_batches_in_opposite_orders_at_once_store_each_sample_once(
    live_server: str,
    engine: Engine,
    db: Session,
    world_a: ClinicWorld,
    running_session: TreatmentSession,
) -> None:
    """Two gateways relay overlapping windows of one monitor, one oldest first and one newest
    first. Their inserts meet on the shared keys' index entries from opposite ends: on
    PostgreSQL a deadlock (a 500, the batch lost) unless every insert takes them in one order.
    A few rounds, since the two statements must overlap in time to meet."""
    path = f"/api/v1/sessions/{running_session.id}/vitals"
    one = _client(live_server, bearer(db, world_a.users[Role.NURSE]))
    two = _client(live_server, bearer(db, world_a.users[Role.NURSE]))
    rounds = 4 * ROUNDS
    for n in range(rounds):
        start = datetime.now(UTC) - timedelta(hours=n + 1)
        forward = {"samples": _samples(range(0, 450), start, f"r{n}")}
        backward = {"samples": list(reversed(_samples(range(50, 500), start, f"r{n}")))}
        with meeting_before_insert(engine, "vital_samples") as meeting:
            a, b = at_once(
                partial(one.post, path, json=forward), partial(two.post, path, json=backward)
            )
        assert len(meeting.arrived) == 2
        assert (a.status_code, b.status_code) == (200, 200), (a.text[:200], b.text[:200])
        # Each request reports every sample of its batch as stored by it or already there.
        for response in (a, b):
            body = response.json()
            assert sorted(body["stored"]) == sorted(set(body["stored"]))
            assert len(body["stored"]) + len(body["duplicates"]) == 450
        assert len(a.json()["stored"]) + len(b.json()["stored"]) == 500
    db.expire_all()
    keys, alerts = _stored(db, running_session.id)
    assert keys == sorted(f"r{n}-{k:03d}" for n in range(rounds) for k in range(500))
    assert alerts == rounds * 100
