"""API under load: requests per second and latency percentiles of KetaCare's busiest requests,
beside a bare FastAPI endpoint served the same way (uvicorn, same workers) in the same run, and
the memory of each server worker afterwards.

    KETACARE_BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1/kc_bench \\
        python bench/load.py [PATIENTS]

Needs `wrk` (Debian package wrk). The PostgreSQL database named there is emptied and filled
with a synthetic clinic (10^4 patients by default). Targets: each request >= 40% of the bare
rate, p99 < 100 ms at 50 concurrent connections, < 250 MB per worker.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from _common import empty_postgres, free_port, postgres_url
from sqlalchemy import select

from ketacare.app.synthetic import fill
from ketacare.app.users import actor_for, create_api_token, hash_password
from ketacare.store.db import make_engine, make_session_factory
from ketacare.store.models import Patient, TreatmentSession, User

HERE = Path(__file__).parent
WORKERS = 2
CONNECTIONS = 50
SECONDS = 10
# A user's pause between requests in the paced runs (uniform, half to one and a half times).
THINK_MS = 1000
PASSWORD = "bench-password-1"  # noqa: S105 (a synthetic clinic of the benchmark)
MEDICINES = '{"medications": ["Vyvanse 50 mg", "sertraline 100 mg", "Xanax 0.5 mg prn"]}'


@dataclass(frozen=True)
class Result:
    name: str
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def _setup(url: str, patients: int) -> tuple[str, int, int]:
    """A synthetic clinic, a nurse with an API token, a patient, and a session being dosed."""
    engine = make_engine(url)
    filled = fill(engine, patients=patients, vitals_per_session=7)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    with make_session_factory(engine)() as db:
        nurse = User(
            clinic_id=filled.clinic_id,
            username="load-nurse",
            display_name="Load Nurse",
            role="nurse",
            password_hash=hash_password(PASSWORD),
        )
        db.add(nurse)
        db.flush()
        patient_id = db.scalar(
            select(Patient.id).where(Patient.clinic_id == filled.clinic_id).order_by(Patient.id)
        )
        assert patient_id is not None
        session = TreatmentSession(
            clinic_id=filled.clinic_id,
            patient_id=patient_id,
            protocol_id="iv-ketamine",
            scheduled_at=datetime.now(UTC),
            status="in_progress",
            baseline={"systolic": 120, "diastolic": 80},
        )
        db.add(session)
        db.commit()
        token = create_api_token(db, actor_for(nurse), "load").token
        ids = (patient_id, session.id)
    engine.dispose()
    return token, *ids


def _serve(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 404):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the server on port {port} did not start")


def _seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def _wrk(
    name: str, url: str, script: str | None, headers: dict[str, str], *, think_ms: int = 0
) -> Result:
    """wrk against ``url``: every connection sends its next request as soon as the last is
    answered (saturation), or after a think time of ``think_ms`` on average (a user)."""
    if think_ms:
        script = (script or "") + (
            f"\ndelay = function() return math.random({think_ms // 2}, {think_ms * 3 // 2}) end\n"
        )
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "--timeout", "5s"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    if script:
        command += ["-s", lua.name]
    out = subprocess.run(  # noqa: S603 (wrk with our own arguments)
        [*command, url], capture_output=True, text=True, check=True
    ).stdout
    Path(lua.name).unlink()
    if "Latency Distribution" not in out:
        raise SystemExit(f"{name}: wrk printed no latencies:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    out = out.split("Latency Distribution", 1)[1]
    p50 = _seconds(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    sockets = re.search(r"Socket errors:.*", out)
    if sockets:
        errors += sum(int(n) for n in re.findall(r"\d+", sockets.group(0)))
    return Result(name, rate, p50 * 1000, p99 * 1000, errors)


def _vitals_script(path: str) -> str:
    # Each request a device batch of 10 readings with keys of its own (nothing is a re-send).
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return f"""
counter = 0
request = function()
  counter = counter + 1
  local id = tostring(counter) .. "-" .. tostring(math.random(1, 1000000000))
  local samples = {{}}
  for i = 1, 10 do
    samples[i] = string.format('{{"measured_at":"{at}","systolic":121,"diastolic":79,' ..
      '"heart_rate":72,"spo2":98,"respiratory_rate":14,"sample_key":"w%s-%d"}}', id, i)
  end
  local body = '{{"samples":[' .. table.concat(samples, ",") .. ']}}'
  -- wrk.format replaces the headers given with -H: keep them (the token) and add the type.
  local headers = {{}}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", "{path}", headers, body)
end
"""


def _worker_memory_mb(pid: int) -> list[tuple[float, float]]:
    """Resident and peak resident memory of each server worker (the children of uvicorn's
    supervisor, not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    sizes = []
    for child in children or [str(pid)]:
        if b"resource_tracker" in Path(f"/proc/{child}/cmdline").read_bytes():
            continue
        status = Path(f"/proc/{child}/status").read_text()
        now = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
        peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
        sizes.append((now / 1024, peak / 1024))
    return sizes


def _session_cookie(base: str) -> str:
    with httpx.Client(base_url=base) as client:
        page = client.get("/login")
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/login", data={"username": "load-nurse", "password": PASSWORD, "csrf_token": csrf}
        )
        return f"kc_session={client.cookies['kc_session']}"


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    patients = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    url = postgres_url("the load test")
    empty_postgres(url).dispose()
    began = time.perf_counter()
    token, patient_id, session_id = _setup(url, patients)
    loaded = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "KETACARE_DATABASE_URL": url,
            "KETACARE_VAR_DIR": tmp,
            "KETACARE_ENVIRONMENT": "development",
        }
        bare_port, app_port = free_port(), free_port()
        common = ["--workers", str(WORKERS), "--log-level", "warning"]
        bare = _serve(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(HERE),
                "_bare_app:app",
                "--port",
                str(bare_port),
                *common,
            ],
            env,
            bare_port,
        )
        app = _serve(
            [
                sys.executable,
                "-m",
                "ketacare",
                "serve",
                "--port",
                str(app_port),
                "--no-migrate",
                "--workers",
                str(WORKERS),
            ],
            env,
            app_port,
        )
        base = f"http://127.0.0.1:{app_port}"
        try:
            time.sleep(3)  # the workers warm their drug index in the background
            auth = {"Authorization": f"Bearer {token}"}
            cookie = {"Cookie": _session_cookie(base)}
            screen = (
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = '{MEDICINES}'\n"
            )
            baseline = _wrk("bare FastAPI endpoint", f"http://127.0.0.1:{bare_port}/bare", None, {})
            # The least a request for patient data does: the caller looked up, an audit event
            # committed. No KetaCare request can do better than this, whatever it shows.
            floor = _wrk(
                "bare + lookup + audit commit", f"http://127.0.0.1:{bare_port}/floor", None, {}
            )
            targets = [
                ("patient list (API)", f"{base}/api/v1/patients", None, auth),
                ("chart page (HTML)", f"{base}/patients/{patient_id}", None, cookie),
                ("interaction screen (API)", f"{base}/api/v1/interactions/screen", screen, auth),
                (
                    "vitals ingest, 10 per batch",
                    base,
                    _vitals_script(f"/api/v1/sessions/{session_id}/vitals"),
                    auth,
                ),
            ]
            results = [_wrk(*target) for target in targets]
            paced = [_wrk(*target, think_ms=THINK_MS) for target in targets]
            memory = _worker_memory_mb(app.pid)
        finally:
            for server in (app, bare):
                server.terminate()
                server.wait(timeout=20)
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus, postgresql")
    print(
        f"{patients} synthetic patients (loaded in {loaded:.0f} s); {WORKERS} uvicorn workers "
        f"each; wrk, {CONNECTIONS} connections, {SECONDS} s per request"
    )
    print(f"{'request':<30} {'req/s':>8} {'vs bare':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in [baseline, floor, *results]:
        print(
            f"{r.name:<30} {r.rate:>8.0f} {r.rate / baseline.rate:>8.0%} {r.p50_ms:>8.1f} "
            f"{r.p99_ms:>8.1f} {r.errors:>7}"
        )
    print(
        f"\n{CONNECTIONS} users, each waiting {THINK_MS / 2000:g}-{THINK_MS * 3 / 2000:g} s "
        "between requests (offered load about "
        f"{CONNECTIONS * 1000 / THINK_MS:.0f} req/s):"
    )
    print(f"{'request':<30} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in paced:
        print(f"{r.name:<30} {r.rate:>8.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>7}")
    print(
        "worker memory after the runs (peak): "
        + ", ".join(f"{now:.0f} MB ({peak:.0f} MB)" for now, peak in memory)
    )
    print("targets: >= 40% of the bare rate, p99 < 100 ms, < 250 MB per worker")
    print(
        "(saturation: each connection sends its next request as soon as the last is answered, "
        f"so latency is about {CONNECTIONS} / rate whatever each request costs)"
    )


if __name__ == "__main__":
    main()
