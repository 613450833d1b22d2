"""Clinic dashboard at scale: 10^5 patients and 10^6 assessments on PostgreSQL, and the time of
the dashboard (all its statements) for the default 90-day period and for all time, beside the
time of counting the clinic's assessments (a full pass over the biggest table) in the same run.

    KETACARE_BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1/kc_bench \\
        python bench/outcomes.py [PATIENTS]

The PostgreSQL database named there is emptied. Without it the benchmark runs on SQLite with
10^4 patients. Target: dashboard under 1 s at 10^5 patients on PostgreSQL.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from ketacare.app.dashboard import DashboardFilter, clinic_dashboard
from ketacare.app.permissions import Actor, Role
from ketacare.app.synthetic import fill
from ketacare.store import migrate
from ketacare.store.db import make_engine, make_session_factory
from ketacare.store.models import Assessment

RUNS = 5


def _url(tmp: Path) -> tuple[str, int]:
    url = os.environ.get("KETACARE_BENCH_POSTGRES_URL", "")
    if not url:
        return f"sqlite:///{tmp / 'outcomes.db'}", 10_000
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url, 100_000


def _median(fn: object) -> float:
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        url, patients = _url(Path(tmp_name))
        if len(sys.argv) > 1:
            patients = int(sys.argv[1])
        engine = make_engine(url)
        migrate.upgrade(engine)
        began = time.perf_counter()
        filled = fill(engine, patients=patients)
        load = time.perf_counter() - began
        if engine.dialect.name == "postgresql":
            # The state autovacuum keeps a table in: statistics and the visibility map (so
            # counts can read indexes only).
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        actor = Actor(filled.clinic_id, Role.SYSTEM, "bench")
        with make_session_factory(engine)() as db:

            def dashboard(flt: DashboardFilter) -> None:
                clinic_dashboard(db, actor, flt)

            def count() -> None:
                db.scalar(
                    select(func.count(Assessment.id)).where(
                        Assessment.clinic_id == filled.clinic_id
                    )
                )

            dashboard(DashboardFilter())  # warm the caches once
            recent = _median(lambda: dashboard(DashboardFilter()))
            whole = _median(lambda: dashboard(DashboardFilter(date_from=date(2020, 1, 1))))
            scan = _median(count)
        engine.dispose()
    backend = url.split(":")[0]
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus, {backend}")
    print(
        f"{filled.patients} patients, {filled.assessments} assessments, {filled.sessions} "
        f"sessions, {filled.alerts} alerts, {filled.adverse_events} adverse events "
        f"(loaded in {load:.0f} s)"
    )
    print(f"dashboard, last 90 days:      {recent * 1000:8.0f} ms (median of {RUNS})")
    print(f"dashboard, all time:          {whole * 1000:8.0f} ms")
    print(f"count of all assessments:     {scan * 1000:8.0f} ms (one pass over the table)")
    print(f"ratio dashboard (90 days) / count: {recent / scan:.2f}")
    print("target: dashboard under 1 s at 10^5 patients on PostgreSQL")


if __name__ == "__main__":
    main()
