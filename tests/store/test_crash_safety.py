"""Crash safety: the server process (`ketacare serve`) is killed with SIGKILL at random moments
while a monitor gateway streams vital-sign batches and a second client registers patients, on
SQLite and (with KETACARE_TEST_POSTGRES_URL) on a PostgreSQL database of the test's own. After
every kill the database is checked with the server down:

- every acknowledged batch (200 received) is fully stored; no batch is partly stored: all of its
  samples or none, each stored sample with exactly the alerts its readings raise, and one
  successful ``session.vitals`` audit event per stored batch;
- every acknowledged patient exists; every patient has its ``patient.create`` audit event;
- the database passes its integrity check (SQLite ``PRAGMA integrity_check`` and
  ``foreign_key_check``; PostgreSQL ``amcheck`` on every table and index).

After the restart the unacknowledged writes (in flight at the kill; some of them committed
before it) are sent again and stored exactly once.

    KETACARE_SOAK=1 pytest tests/store/test_crash_safety.py     # many trials (`make soak`)
    KETACARE_CRASH_TRIALS=40 KETACARE_CRASH_SEED=7 pytest ...   # a chosen count and seed
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from tests.conftest import bearer, free_port, make_clinic, pg_url

from ketacare.app.permissions import Role
from ketacare.clinical.monitoring import MonitoringSettings, alerts_for_samples
from ketacare.store import migrate
from ketacare.store.db import make_engine, make_session_factory
from ketacare.store.models import AuditEvent, Patient, SessionAlert, TreatmentSession, VitalSample

SOAK = bool(os.environ.get("KETACARE_SOAK"))
TRIALS = int(os.environ.get("KETACARE_CRASH_TRIALS") or (150 if SOAK else 5))
SEED = int(os.environ.get("KETACARE_CRASH_SEED") or 20260105)
BATCH = 40
BASELINE = {"systolic": 125.0, "diastolic": 80.0}
READINGS = ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate")
# The kill lands this long after the clients start: early (first requests) to well into the run.
KILL_AFTER = (0.02, 1.5)


# --- the database and the server process ------------------------------------------------------


def _admin() -> Engine:
    return make_engine(pg_url(), isolation_level="AUTOCOMMIT")


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own: a SQLite file, or a PostgreSQL database created here and
    dropped afterwards (the server process must not share the suite's database)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'crash.db'}"
        return
    name = f"kc_crash_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(pg_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@dataclass
class World:
    url: str
    token: str
    session_id: int


def _world(url: str, password_hash: str) -> World:
    engine = make_engine(url)
    migrate.upgrade(engine)
    with make_session_factory(engine)() as db:
        clinic = make_clinic(db, "crash", password_hash, n_patients=1)
        session = TreatmentSession(
            clinic_id=clinic.clinic.id,
            patient_id=clinic.patients[0].id,
            protocol_id="iv-ketamine",
            scheduled_at=datetime.now(UTC),
            status="in_progress",
            started_at=datetime.now(UTC),
            baseline=BASELINE,
        )
        db.add(session)
        db.commit()
        token = bearer(db, clinic.users[Role.NURSE])["Authorization"]
        world = World(url, token, session.id)
    engine.dispose()
    return world


# A parent that imports the application once, then forks one server per start: in the child,
# exactly what `python -m ketacare serve --port P --no-migrate` runs. Each start then costs a
# fraction of a second instead of seconds of imports, and each server is still a process of its
# own, whose connections, threads and open files die with it under SIGKILL. The parent builds
# the app (ketacare.web.asgi) and loads the knowledge files, but never connects: the children
# start with an empty pool.
LAUNCHER = """
import os, runpy, signal, sys
import ketacare.cli, ketacare.web.asgi, uvicorn.main  # the slow imports, once
import uvicorn.loops.auto, uvicorn.protocols.http.auto, uvicorn.lifespan.on
from ketacare.web.main import _warm_up
from ketacare.knowledge.protocol_defs import load_monitoring, load_protocols
_warm_up(), load_monitoring(), load_protocols()
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # a killed server is reaped at once
for line in sys.stdin:
    port, log = line.split(maxsplit=1)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(log.strip(), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        sys.argv = ["ketacare", "serve", "--port", port, "--no-migrate"]
        try:
            runpy.run_module("ketacare", run_name="__main__")
        finally:
            os._exit(0)
    print(pid, flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Server:
    """The server process, started and killed as often as the trials ask."""

    def __init__(self, url: str, var: Path) -> None:
        env = {
            **os.environ,
            "KETACARE_DATABASE_URL": url,
            "KETACARE_VAR_DIR": str(var),
            "KETACARE_ENVIRONMENT": "development",
        }
        self.log_path = var / "server.log"
        self.launcher = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = 0
        self.base = ""

    def _log(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path.exists() else ""

    def start(self) -> None:
        assert self.launcher.stdin and self.launcher.stdout
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.launcher.stdin.write(f"{port} {self.log_path}\n")
        self.launcher.stdin.flush()
        self.pid = int(self.launcher.stdout.readline())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not _alive(self.pid):
                pytest.fail(f"the server exited on start: {self._log()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.02)
        pytest.fail(f"the server did not start: {self._log()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        os.kill(self.pid, sig)
        deadline = time.monotonic() + 10
        while _alive(self.pid):
            assert time.monotonic() < deadline, "the server outlived its kill"
            time.sleep(0.005)

    def close(self) -> None:
        if self.pid and _alive(self.pid):
            self.kill(signal.SIGTERM)
        assert self.launcher.stdin
        self.launcher.stdin.close()
        self.launcher.wait(timeout=10)
        if self.launcher.stdout:
            self.launcher.stdout.close()


# --- the clients --------------------------------------------------------------------------------


@dataclass
class Write:
    """One request: a vitals batch or a patient registration, and what became of it."""

    name: str
    body: dict[str, Any]
    acknowledged: bool = False
    response: dict[str, Any] | None = None
    resent: bool = False
    expected: list[list[str]] | None = None  # alert codes per sample, once computed


@dataclass
class Ledger:
    """Everything the clients sent, across trials."""

    batches: list[Write] = field(default_factory=list)
    patients: list[Write] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # Samples are 1 s apart from here on: far enough back for the longest soak run never to
    # reach the present (a sample from the future is refused).
    start: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=90))


def _batch(rng: random.Random, name: str, first_second: int, start: datetime) -> dict[str, Any]:
    samples = []
    for i in range(BATCH):
        systolic = rng.choice((rng.uniform(100, 150), rng.uniform(150, 200)))
        samples.append(
            {
                "measured_at": (start + timedelta(seconds=first_second + i)).isoformat(),
                "systolic": round(systolic),
                "diastolic": round(rng.uniform(55, min(118, systolic - 10))),
                "heart_rate": round(rng.uniform(55, 125)),
                "spo2": round(rng.uniform(86, 100)),
                "respiratory_rate": round(rng.uniform(8, 26)),
                "sample_key": f"{name}-{i}",
            }
        )
    return {"samples": samples}


def _patient(name: str, n: int) -> dict[str, Any]:
    return {
        "mrn": name,
        "family_name": f"Crash{n}",
        "given_name": "Test",
        "date_of_birth": "1984-03-0" + str(1 + n % 9),
        "sex": "female",
    }


class Client(threading.Thread):
    """Sends one kind of write after another until the server goes away."""

    def __init__(
        self, server: Server, world: World, ledger: Ledger, kind: str, trial: int, seed: int
    ) -> None:
        super().__init__(daemon=True)
        self.base, self.world, self.ledger = server.base, world, ledger
        self.kind, self.trial, self.rng = kind, trial, random.Random(seed)

    def next_write(self, n: int) -> Write:
        if self.kind == "vitals":
            name = f"t{self.trial}b{n}"
            second = (len(self.ledger.batches) + 1) * BATCH
            return Write(name, _batch(self.rng, name, second, self.ledger.start))
        name = f"Z{self.trial}-{n}"
        return Write(name, _patient(name, n))

    def run(self) -> None:
        if self.kind == "vitals":
            path, ok, sent = f"/api/v1/sessions/{self.world.session_id}/vitals", 200, "batches"
        else:
            path, ok, sent = "/api/v1/patients", 201, "patients"
        headers = {"Authorization": self.world.token}
        with httpx.Client(base_url=self.base, headers=headers, timeout=30) as client:
            for n in range(10_000):
                write = self.next_write(n)
                getattr(self.ledger, sent).append(write)
                try:
                    response = client.post(path, json=write.body)
                except httpx.TransportError:
                    return  # the server died with this request in flight (or unsent)
                if response.status_code != ok or response.json().get("rejected"):
                    self.ledger.failures.append(
                        f"{write.name}: {response.status_code} {response.text}"
                    )
                    return
                write.acknowledged, write.response = True, response.json()


# --- the checks ---------------------------------------------------------------------------------


def _integrity(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            return
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
        corrupt = conn.scalar(
            text(
                "SELECT count(*) FROM pg_class c, verify_heapam(c.oid) "
                "WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"
            )
        )
        assert corrupt == 0
        # bt_index_check raises on a corrupt index; heapallindexed: every row is in the index.
        checked = conn.scalar(
            text(
                "SELECT count(bt_index_check(c.oid, true)) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
                "WHERE am.amname = 'btree' AND c.relnamespace = 'public'::regnamespace"
            )
        )
        assert checked and checked > 10
        conn.commit()


@dataclass
class Stored:
    """What the database holds for the test's writes."""

    samples: dict[str, tuple[int, dict[str, float]]]  # sample_key -> (id, readings)
    alerts: dict[int, list[str]]  # vital sample id -> alert codes, sorted
    vitals_events: list[dict[str, Any]]
    patients: dict[str, int]  # mrn -> id
    patient_events: Counter[int]  # patient id -> successful patient.create events


def _stored(engine: Engine, session_id: int) -> Stored:
    with make_session_factory(engine)() as db:
        # Plain rows, not ORM objects: a soak run reads tens of thousands after every kill.
        columns = [getattr(VitalSample, r) for r in READINGS]
        samples = {
            key: (sample_id, dict(zip(READINGS, values, strict=True)))
            for key, sample_id, *values in db.execute(
                select(VitalSample.sample_key, VitalSample.id, *columns).where(
                    VitalSample.session_id == session_id
                )
            )
        }
        alerts: dict[int, list[str]] = {}
        for sample_id, code in db.execute(
            select(SessionAlert.vital_sample_id, SessionAlert.code).where(
                SessionAlert.session_id == session_id
            )
        ):
            alerts.setdefault(sample_id, []).append(code)
        events = db.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.action == "session.vitals", AuditEvent.outcome == "success"
            )
        ).all()
        by_mrn = select(Patient.mrn, Patient.id).where(Patient.mrn.like("Z%"))
        patients = dict(db.execute(by_mrn).all())
        created = Counter(
            db.scalars(
                select(AuditEvent.patient_id).where(
                    AuditEvent.action == "patient.create", AuditEvent.outcome == "success"
                )
            )
        )
    return Stored(
        samples,
        {k: sorted(v) for k, v in alerts.items()},
        [e or {} for e in events],
        patients,
        created,
    )


def _expected_alerts(body: dict[str, Any]) -> list[list[str]]:
    found = alerts_for_samples(
        [{r: s[r] for r in READINGS} for s in body["samples"]],
        BASELINE,
        MonitoringSettings.defaults(),
    )
    return [sorted(a.code for a in sample) for sample in found]


def check_store(world: World, ledger: Ledger, context: str) -> Stored:
    """Every invariant of the module docstring; returns what is stored."""
    assert not ledger.failures, f"{context}: refused writes {ledger.failures[:3]}"
    engine = make_engine(world.url)
    try:
        _integrity(engine)
        stored = _stored(engine, world.session_id)
    finally:
        engine.dispose()
    present = 0
    for write in ledger.batches:
        keys = [s["sample_key"] for s in write.body["samples"]]
        found = [k in stored.samples for k in keys]
        assert all(found) or not any(found), f"{context}: batch {write.name} partly stored"
        assert all(found) or not write.acknowledged, f"{context}: acknowledged {write.name} lost"
        if not all(found):
            continue
        present += 1
        write.expected = write.expected or _expected_alerts(write.body)
        for sent, expected in zip(write.body["samples"], write.expected, strict=True):
            sample_id, readings = stored.samples[sent["sample_key"]]
            assert readings == {r: sent[r] for r in READINGS}, f"{context}: {sent}"
            assert stored.alerts.get(sample_id, []) == expected, f"{context}: alerts of {sent}"
    ours = {s["sample_key"] for w in ledger.batches for s in w.body["samples"]}
    assert set(stored.samples) <= ours
    assert set(stored.alerts) <= {sample_id for sample_id, _ in stored.samples.values()}
    # One successful audit event stored each batch, with its alerts; re-sends stored nothing.
    storing = [e for e in stored.vitals_events if e.get("stored")]
    assert len(storing) == present, f"{context}: {len(storing)} events for {present} batches"
    assert all(e["stored"] == BATCH for e in storing)
    assert sum(len(e["alerts"]) for e in storing) == sum(map(len, stored.alerts.values()))
    for write in ledger.patients:
        assert write.name in stored.patients or not write.acknowledged, f"{context}: {write.name}"
    # Each registered patient with its one audit event, and no event without its patient.
    assert stored.patient_events == Counter(stored.patients.values()), context
    return stored


def resend(server: Server, world: World, ledger: Ledger, stored: Stored) -> Counter[str]:
    """Send every unacknowledged write again: each is stored exactly once. Counts the re-sent
    writes, and those of them stored before the kill (committed, the answer never sent)."""
    headers = {"Authorization": world.token}
    count: Counter[str] = Counter()
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        for write in [w for w in ledger.batches if not w.acknowledged]:
            was_there = write.body["samples"][0]["sample_key"] in stored.samples
            response = client.post(f"/api/v1/sessions/{world.session_id}/vitals", json=write.body)
            assert response.status_code == 200, response.text
            result = response.json()
            assert result["rejected"] == [], result["rejected"][:1]
            if was_there:
                assert result["stored"] == [] and result["duplicates"] == list(range(BATCH))
            else:
                assert len(result["stored"]) == BATCH and result["duplicates"] == []
            write.acknowledged, write.response, write.resent = True, result, True
            count.update(["re-sent"] + ["stored before"] * was_there)
        for write in [w for w in ledger.patients if not w.acknowledged]:
            response = client.post("/api/v1/patients", json=write.body)
            if write.name in stored.patients:
                assert response.status_code == 422, response.text
                assert response.json()["detail"][0]["loc"] == ["body", "mrn"]
            else:
                assert response.status_code == 201, response.text
            write.acknowledged = write.resent = True
            count.update(["re-sent"] + ["stored before"] * (write.name in stored.patients))
    return count


# --- the test -----------------------------------------------------------------------------------


class Clock:
    """Seconds spent per phase, for the summary line."""

    def __init__(self) -> None:
        self.spent: Counter[str] = Counter()

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.spent[phase] += time.monotonic() - began

    def __str__(self) -> str:
        return ", ".join(f"{k} {v:.1f}s" for k, v in self.spent.items())


def test_killed_server_keeps_every_acknowledged_write_whole(
    database_url: str, password_hash: str, tmp_path: Path
) -> None:
    clock = Clock()
    with clock("start"):
        server = Server(database_url, tmp_path)  # imports while the database is set up
    world = _world(database_url, password_hash)
    ledger = Ledger()
    rng = random.Random(SEED)
    resent: Counter[str] = Counter()
    try:
        stored = check_store(world, ledger, "before the first start")
        for trial in range(TRIALS + 1):
            context = f"trial {trial} (KETACARE_CRASH_SEED={SEED})"
            with clock("start"):
                server.start()
            with clock("re-send"):
                resent.update(resend(server, world, ledger, stored))
            if trial == TRIALS:
                break
            clients = [
                Client(server, world, ledger, kind, trial, rng.randrange(2**32))
                for kind in ("vitals", "patients")
            ]
            with clock("writes"):
                for c in clients:
                    c.start()
                time.sleep(rng.uniform(*KILL_AFTER))
                server.kill()
                for c in clients:
                    c.join(timeout=30)
                    assert not c.is_alive()
            with clock("checks"):
                stored = check_store(world, ledger, context)
        with clock("checks"):
            stored = check_store(world, ledger, "after the last re-send")
    finally:
        server.close()
    # Every write, acknowledged at first or re-sent, is stored exactly once.
    assert len(stored.samples) == len(ledger.batches) * BATCH
    assert len(stored.patients) == len(ledger.patients)
    acknowledged = sum(not w.resent for w in ledger.batches + ledger.patients)
    print(
        f"\n{TRIALS} kills: {len(ledger.batches)} batches and {len(ledger.patients)} patients "
        f"sent, {acknowledged} acknowledged at once, {resent['re-sent']} re-sent after a "
        f"restart ({resent['stored before']} of them stored before the kill); {clock}"
    )
    assert acknowledged > 0 and resent["re-sent"] > 0
