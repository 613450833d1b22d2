"""Vital-sign ingest: samples per second through the API (a real server process) against the
raw insert rate of the same database, measured in one run.

    python bench/vitals.py                      # SQLite in a temporary directory
    KETACARE_BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1/kc_bench \\
        python bench/vitals.py

The PostgreSQL database named there is emptied. Target: API >= 50% of raw on PostgreSQL.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import POSTGRES_ENV, empty_postgres, free_port
from sqlalchemy import insert

from ketacare.app.users import actor_for, create_api_token, hash_password
from ketacare.store import migrate
from ketacare.store.db import make_engine, make_session_factory
from ketacare.store.models import Clinic, Patient, TreatmentSession, User, VitalSample

# Enough rounds that a busy moment of the shared machine moves the ratio by a point or two.
BATCHES = 400
# API and raw take turns, ROUND batches each.
ROUND = 10
# A monitor gateway sends small batches every few seconds, or larger ones after a gap.
BATCH_SIZES = (50, 100, 250)
JSON = {"content-type": "application/json"}


def _database(tmp: Path) -> str:
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        return f"sqlite:///{tmp / 'bench.db'}"
    empty_postgres(url, migrated=False).dispose()
    return url


def _setup(url: str) -> tuple[str, int, int, int]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    with make_session_factory(engine)() as db:
        clinic = Clinic(slug="bench", name="Bench")
        db.add(clinic)
        db.flush()
        user = User(
            clinic_id=clinic.id,
            username="bench-nurse",
            display_name="Bench",
            role="nurse",
            password_hash=hash_password("bench-password-1"),
        )
        patient = Patient(
            clinic_id=clinic.id,
            mrn="B-1",
            family_name="Bench",
            given_name="Patient",
            family_key="bench",
            given_key="patient",
            name_key="bench patient",
            date_of_birth=date(1990, 1, 1),
            sex="female",
            stage="in_course",
        )
        db.add_all([user, patient])
        db.flush()
        session = TreatmentSession(
            clinic_id=clinic.id,
            patient_id=patient.id,
            protocol_id="iv-ketamine",
            scheduled_at=datetime.now(UTC),
            status="in_progress",
            baseline={"systolic": 120, "diastolic": 80},
        )
        db.add(session)
        db.commit()
        token = create_api_token(db, actor_for(user), "bench").token
        ids = (session.id, clinic.id, user.id)
    engine.dispose()
    return token, *ids


def _readings(i: int) -> dict[str, float]:
    """The readings of a batch's i-th sample: the same on both sides."""
    return {
        "systolic": 120 + i % 30,
        "diastolic": 75 + i % 10,
        "heart_rate": 70 + i % 20,
        "spo2": 97,
        "respiratory_rate": 14,
    }


def _samples(batch: int, size: int, start: datetime) -> list[dict[str, object]]:
    return [
        {
            "measured_at": (start + timedelta(seconds=batch * size + i)).isoformat(),
            **_readings(i),
            "sample_key": f"s{size}-b{batch}-{i}",
        }
        for i in range(size)
    ]


def _raw_rows(ids: tuple[int, int, int], size: int, tag: str) -> list[list[dict[str, object]]]:
    """The rows the API stores for the same batches, whole: readings, source, who recorded
    them (its foreign key is checked on every row, as the API's are) and sample key."""
    session_id, clinic_id, user_id = ids
    start = datetime.now(UTC) - timedelta(days=2)
    return [
        [
            {
                "clinic_id": clinic_id,
                "session_id": session_id,
                "measured_at": start + timedelta(seconds=b * size + i),
                "received_at": datetime.now(UTC),
                **{name: float(value) for name, value in _readings(i).items()},
                "source": "device",
                "recorded_by": user_id,
                "sample_key": f"raw{tag}-{b}-{i}",
            }
            for i in range(size)
        ]
        for b in range(BATCHES)
    ]


def _start_server(url: str, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "KETACARE_DATABASE_URL": url,
        "KETACARE_VAR_DIR": str(tmp),
        "KETACARE_ENVIRONMENT": "development",
    }
    server = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "ketacare", "serve", "--port", str(port), "--no-migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return server, port


def _wait_ready(port: int) -> None:
    for _ in range(600):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not start")


class _Device:
    """One kept-alive HTTP connection, as a monitor gateway holds one. The standard library's
    client costs this process a fraction of what a full-featured one does: what is measured is
    the server's work."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", **JSON}

    def post(self, path: str, body: bytes) -> dict[str, Any]:
        try:
            self.connection.request("POST", path, body=body, headers=self.headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server closes a connection idle for 5 s (between the rounds' set-up); the
            # batch is sent again on a new one (its sample keys make that safe).
            self.connection.close()
            self.connection.request("POST", path, body=body, headers=self.headers)
            response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"the server answered {response.status}: {data[:500]!r}")
        return json.loads(data)

    def close(self) -> None:
        self.connection.close()


def rates(
    url: str, token: str, ids: tuple[int, int, int], tmp: Path
) -> dict[int, tuple[float, float]]:
    """Samples per second through the API and straight into the database. The two alternate
    in rounds, so a busy moment of a shared machine falls on both sides alike."""
    server, port = _start_server(url, tmp)
    engine = make_engine(url)
    path = f"/api/v1/sessions/{ids[0]}/vitals"
    results: dict[int, tuple[float, float]] = {}
    device = _Device(port, token)
    try:
        _wait_ready(port)
        for size in BATCH_SIZES:
            start = datetime.now(UTC) - timedelta(seconds=(BATCHES + 1) * size + 60)
            # Encoded before timing, as the raw side's rows are built before timing: what
            # is measured is the server's work, not this client's JSON encoder.
            payloads = [
                json.dumps({"samples": _samples(b, size, start)}).encode()
                for b in range(BATCHES + 1)
            ]
            raw_batches = _raw_rows(ids, size, str(size))
            # Steady state: the first request loads the knowledge files, and the server
            # warms its drug index in the background for a second or two after start-up.
            device.post(path, payloads.pop())
            time.sleep(3)
            api_time = raw_time = 0.0
            for first in range(0, BATCHES, ROUND):
                began = time.perf_counter()
                for payload in payloads[first : first + ROUND]:
                    assert len(device.post(path, payload)["stored"]) == size
                api_time += time.perf_counter() - began
                began = time.perf_counter()
                for batch in raw_batches[first : first + ROUND]:
                    # One transaction per batch, as the API commits each batch.
                    with engine.begin() as conn:
                        conn.execute(insert(VitalSample), batch)
                raw_time += time.perf_counter() - began
            results[size] = (BATCHES * size / api_time, BATCHES * size / raw_time)
    finally:
        device.close()
        server.terminate()
        server.wait(timeout=10)
        engine.dispose()
    return results


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = _database(tmp)
        token, session_id, clinic_id, user_id = _setup(url)
        measured = rates(url, token, (session_id, clinic_id, user_id), tmp)
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus, {backend}")
    print("API: validation, alerts, audit, one transaction per batch; raw: the same rows")
    print("(readings, source, recorder, key) inserted straight into the same database, one")
    print(f"transaction per batch; the two alternate every {ROUND} batches.")
    print(f"{'samples/batch':>14} {'API samples/s':>14} {'raw samples/s':>14} {'API/raw':>8}")
    for size, (api, raw) in measured.items():
        print(f"{size:>14} {api:>14.0f} {raw:>14.0f} {api / raw:>8.0%}")
    print("target: API >= 50% of raw on PostgreSQL")


if __name__ == "__main__":
    main()
