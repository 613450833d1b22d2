"""Scale curve: latency and SQL statements of the chart page, its outcomes panel and the
worklists as the database grows from 10^3 to 10^5 patients on PostgreSQL.

    KETACARE_BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1/kc_bench \\
        python bench/scale.py [PATIENTS ...]

The PostgreSQL database named there is emptied and grown, one synthetic clinic at a time, to
each total given (10^3, 10^4, 10^5 by default; 10^6 only when it fits the time budget). After
each step the same pages of the first clinic are requested in-process through the ASGI app by a
signed-in prescriber: the same chart, the same day, so only the size of the tables changes. The
paged lists of the newest (largest) clinic are measured too: there the clinic itself grows.
Target: each page's median flat within 1.5x from the smallest size to the largest, and the same
number of statements per request at every size.
"""

from __future__ import annotations

import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import empty_postgres, postgres_url
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, insert, select

from ketacare.app.synthetic import chunks, fill
from ketacare.app.users import hash_password
from ketacare.config import Settings
from ketacare.store.db import make_session_factory
from ketacare.store.models import Assessment, Patient, TherapySession, TreatmentSession, User
from ketacare.web.main import create_app

SIZES = (1_000, 10_000, 100_000)
OPTIONAL = 1_000_000
ROUNDS = 50
WARM = 3
TARGET = 1.5
BUDGET_S = 15 * 60
PASSWORD = "bench-password-1"  # noqa: S105 (a synthetic clinic of the benchmark)
NOTE = {"attendance": "attended", "minutes": 50, "risk_check": {"asked": True, "result": "none"}}
# Rows a page lists, found by their links.
ROW_LINKS = {
    "session worklist": r'href="/sessions/(\d+)"',
    "patient list": r'href="/patients/(\d+)"',
    "therapy worklist": r'href="/therapy/(\d+)"',
}


@dataclass(frozen=True)
class Figure:
    page: str
    patients: int
    median_ms: float
    p95_ms: float
    statements: int
    statements_max: int
    rows: int | None


class Counter:
    """Statements sent to the database, counted per request."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


def _therapy(engine: Engine, clinic_id: int, seed: int) -> int:
    """The CBT programme beside the infusions (fill makes none): a therapy session the day
    after each infusion, signed when it is past, except a few left overdue and unsigned."""
    rng = random.Random(seed)  # synthetic data, not security  # nosec B311
    now = datetime.now(UTC)
    with engine.connect() as conn:
        infusions = conn.execute(
            select(
                TreatmentSession.id,
                TreatmentSession.patient_id,
                TreatmentSession.course_id,
                TreatmentSession.number,
                TreatmentSession.scheduled_at,
            ).where(TreatmentSession.clinic_id == clinic_id)
        ).all()

    def rows() -> Iterator[dict[str, Any]]:
        for sid, pid, course, number, at in infusions:
            when = at + timedelta(days=1)
            done = when < now and rng.random() > 0.02
            yield {
                "clinic_id": clinic_id,
                "patient_id": pid,
                "course_id": course,
                "plan_key": f"cbt-{number}",
                "follows_session_id": sid,
                "scheduled_at": when,
                "minutes": 50,
                "status": "completed" if done else "scheduled",
                "note": NOTE if done else None,
                "signed_at": when + timedelta(hours=1) if done else None,
                "created_at": at,
                "version": 1,
            }

    count = 0
    for batch in chunks(rows()):
        with engine.begin() as conn:
            conn.execute(insert(TherapySession.__table__), batch)  # type: ignore[arg-type]
        count += len(batch)
    return count


def _grow(engine: Engine, step: int, patients: int) -> tuple[int, float]:
    """Add a clinic of ``patients`` patients; its id and the seconds it took to load."""
    began = time.perf_counter()
    filled = fill(engine, patients=patients, vitals_per_session=7, slug=f"scale-{step}", seed=step)
    _therapy(engine, filled.clinic_id, step)
    with make_session_factory(engine)() as db:
        # A session being dosed now, so the day's worklist is never empty.
        last = db.scalar(select(func.max(Patient.id)).where(Patient.clinic_id == filled.clinic_id))
        db.add(
            TreatmentSession(
                clinic_id=filled.clinic_id,
                patient_id=last,
                protocol_id="iv-ketamine",
                scheduled_at=datetime.now(UTC) - timedelta(minutes=30),
                status="in_progress",
                baseline={"systolic": 120, "diastolic": 80},
                started_at=datetime.now(UTC) - timedelta(minutes=20),
            )
        )
        db.add(
            User(
                clinic_id=filled.clinic_id,
                username=f"scale-prescriber-{step}",
                display_name="Scale Prescriber",
                role="prescriber",
                password_hash=hash_password(PASSWORD),
            )
        )
        db.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    return filled.clinic_id, time.perf_counter() - began


def _richest_patient(engine: Engine, clinic_id: int) -> tuple[int, int, int]:
    """The clinic's patient with the most dosed sessions (the lowest id of those): its id,
    dosed sessions and ratings."""
    with engine.connect() as conn:
        sessions = func.count(TreatmentSession.id)
        pid, count = conn.execute(
            select(TreatmentSession.patient_id, sessions)
            .where(
                TreatmentSession.clinic_id == clinic_id,
                TreatmentSession.dose_started_at.is_not(None),
            )
            .group_by(TreatmentSession.patient_id)
            .order_by(sessions.desc(), TreatmentSession.patient_id)
            .limit(1)
        ).one()
        ratings = conn.scalar(select(func.count()).where(Assessment.patient_id == pid))
    return pid, count, ratings or 0


def _sign_in(client: TestClient, step: int) -> None:
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    data = {"username": f"scale-prescriber-{step}", "password": PASSWORD, "csrf_token": csrf}
    done = client.post("/login", data=data)
    if done.status_code != 303:
        raise SystemExit(f"signing in failed: {done.status_code}")


def _measure(
    client: TestClient, counter: Counter, pages: dict[str, str], patients: int
) -> list[Figure]:
    """ROUNDS requests of each page, interleaved (noise of the shared machine falls on all)."""
    times: dict[str, list[float]] = {name: [] for name in pages}
    counts: dict[str, list[int]] = {name: [] for name in pages}
    rows: dict[str, int | None] = {}
    for name, url in pages.items():
        for _ in range(WARM):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{name} {url}: {response.status_code}")
        pattern = ROW_LINKS.get(name)
        rows[name] = len(set(re.findall(pattern, response.text))) if pattern else None
    for _ in range(ROUNDS):
        for name, url in pages.items():
            counter.count = 0
            began = time.perf_counter()
            response = client.get(url)
            times[name].append(time.perf_counter() - began)
            counts[name].append(counter.count)
            if response.status_code != 200:
                raise SystemExit(f"{name} {url}: {response.status_code}")
    return [
        Figure(
            page=name,
            patients=patients,
            median_ms=statistics.median(times[name]) * 1000,
            p95_ms=statistics.quantiles(times[name], n=20)[18] * 1000,
            statements=round(statistics.median(counts[name])),
            statements_max=max(counts[name]),
            rows=rows[name],
        )
        for name in pages
    ]


def _table(title: str, figures: list[Figure], sizes: dict[int, int] | None = None) -> None:
    print(title)
    header = f"{'page':<18} {'patients':>9} {'median ms':>10} {'p95 ms':>8} {'statements':>11}"
    print(f"{header} {'rows':>5}" + (f" {'in clinic':>10}" if sizes else ""))
    for f in figures:
        stmts = f"{f.statements}" + (
            f" (<={f.statements_max})" if f.statements_max > f.statements else ""
        )
        line = (
            f"{f.page:<18} {f.patients:>9} {f.median_ms:>10.1f} {f.p95_ms:>8.1f} {stmts:>11} "
            f"{'' if f.rows is None else f.rows:>5}"
        )
        print(line + (f" {sizes[f.patients]:>10}" if sizes else ""))


def _ratios(figures: list[Figure]) -> bool:
    """Median at the largest size over the smallest, per page; True when all are flat
    (same statements at every size, within TARGET)."""
    flat = True
    for page in dict.fromkeys(f.page for f in figures):
        own = [f for f in figures if f.page == page]
        first, last = own[0], own[-1]
        ratio = last.median_ms / first.median_ms
        same = len({f.statements for f in own}) == 1
        ok = ratio <= TARGET and same
        flat = flat and ok
        verdict = "flat" if ok else "NOT flat"
        stmts = (
            "same statements" if same else "statements " + "/".join(str(f.statements) for f in own)
        )
        print(
            f"  {page:<18} {ratio:5.2f}x  ({last.patients} vs {first.patients} patients; {stmts})"
            f"  {verdict}"
        )
    return flat


@dataclass
class Run:
    """The database as it grows, and what was measured at each size."""

    engine: Engine
    client: TestClient
    counter: Counter
    total: int = 0
    chart: tuple[int, int, int] = (0, 0, 0)
    load_rate: float = 0.0
    fixed: list[Figure] = field(default_factory=list)
    newest: list[Figure] = field(default_factory=list)
    newest_size: dict[int, int] = field(default_factory=dict)
    loads: list[str] = field(default_factory=list)

    def step(self, number: int, size: int) -> None:
        """Grow the database to ``size`` patients, then measure."""
        added = size - self.total
        clinic_id, seconds = _grow(self.engine, number, added)
        self.load_rate, self.total = added / seconds, size
        self.loads.append(f"+{added} in {seconds:.0f} s")
        if number == 1:
            self.chart = _richest_patient(self.engine, clinic_id)
        pid = self.chart[0]
        pages = {
            "chart page": f"/patients/{pid}",
            "outcomes panel": f"/patients/{pid}/outcomes",
            "session worklist": "/sessions",
            "patient list": "/patients",
            "therapy worklist": "/therapy",
        }
        # Signed in afresh at each size: loading a big clinic can outlast the idle limit.
        self.client.cookies.clear()
        _sign_in(self.client, 1)
        self.fixed += _measure(self.client, self.counter, pages, size)
        self.client.cookies.clear()
        _sign_in(self.client, number)
        lists = {k: v for k, v in pages.items() if k in ROW_LINKS}
        self.newest += _measure(self.client, self.counter, lists, size)
        self.newest_size[size] = added


def _report(run: Run, sizes: list[int], version: str, elapsed: float, skipped: str) -> None:
    node = f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus"
    print(f"machine: {node}, PostgreSQL {version}")
    print(
        f"database grown to {', '.join(str(s) for s in sizes)} patients, one synthetic clinic "
        f"per step ({'; '.join(run.loads)}; 7 vitals per dosed session, a therapy session after "
        "each infusion, VACUUM ANALYZE)"
    )
    print(
        f"in-process ASGI requests by a signed-in prescriber, {ROUNDS} per page per size after "
        f"{WARM} to warm up, pages interleaved; statements: SQL statements per request (median)"
    )
    print()
    pid, sessions, ratings = run.chart
    _table(
        f"the first clinic ({sizes[0]} patients) at every size: chart of patient {pid} "
        f"({sessions} dosed sessions, {ratings} ratings), today's worklists, the first pages",
        run.fixed,
    )
    print(f"ratio of medians, largest / smallest size (target: flat, within {TARGET}x):")
    flat = _ratios(run.fixed)
    print()
    _table("the newest clinic (it grows with the database):", run.newest, run.newest_size)
    print(f"ratio of medians, largest / smallest size (target for the paged lists: {TARGET}x):")
    growing_flat = _ratios(run.newest)
    print()
    if skipped:
        print(skipped)
    verdict = "flat" if flat else "NOT flat"
    growing = "flat" if growing_flat else "NOT flat"
    print(
        f"whole benchmark {elapsed / 60:.1f} min; the first clinic's pages: {verdict}; "
        f"the growing clinic's paged lists: {growing}"
    )


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    if sizes != sorted(set(sizes)) or sizes[0] < 1:
        raise SystemExit("give the sizes in increasing order")
    began = time.perf_counter()
    engine = empty_postgres(postgres_url("the scale curve"))
    with engine.connect() as conn:
        version = str(conn.exec_driver_sql("SHOW server_version").scalar())
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            environment="development",
            var_dir=Path(tmp),
            secret_key="scale-benchmark-secret-key-of-more-than-32-chars",  # noqa: S106
            _env_file=None,  # type: ignore[call-arg]
        )
        app = create_app(settings, engine)
        with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
            run = Run(engine, client, Counter(engine))
            for number, size in enumerate(sizes, start=1):
                run.step(number, size)
                print(
                    f"  {size} patients measured, {time.perf_counter() - began:.0f} s",
                    file=sys.stderr,
                )
            skipped = ""
            if sizes[-1] < OPTIONAL:
                # Loading dominates: the next step's time from this step's rate, and a fifth
                # more for VACUUM and the measurements.
                more = (OPTIONAL - run.total) / run.load_rate
                spent = time.perf_counter() - began
                if spent + 1.2 * more < BUDGET_S:
                    run.step(len(sizes) + 1, OPTIONAL)
                    sizes.append(OPTIONAL)
                else:
                    skipped = (
                        f"{OPTIONAL} patients skipped: {OPTIONAL - run.total} more at the "
                        f"{run.load_rate:.0f} patients/s just measured would take about "
                        f"{more / 60:.0f} min to load, beyond the {BUDGET_S // 60} min the whole "
                        f"benchmark is kept under ({spent / 60:.1f} min spent)"
                    )
    engine.dispose()
    _report(run, sizes, version, time.perf_counter() - began, skipped)


if __name__ == "__main__":
    main()
