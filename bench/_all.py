"""Run every benchmark in this directory and write their output to bench/results.md.

    python bench/_all.py

Benchmarks that take a PostgreSQL database use KETACARE_BENCH_POSTGRES_URL; when it is not set
and a server answers on 127.0.0.1:5432 (user postgres, trust), a database of their own,
``ketacare_bench``, is created there and emptied by each benchmark.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
DATABASE = "ketacare_bench"


def _postgres_url() -> str | None:
    if os.environ.get("KETACARE_BENCH_POSTGRES_URL"):
        return os.environ["KETACARE_BENCH_POSTGRES_URL"]
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return None
    from sqlalchemy import create_engine, text

    admin = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}):
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"


def main() -> int:
    env = dict(os.environ)
    url = _postgres_url()
    if url:
        env["KETACARE_BENCH_POSTGRES_URL"] = url
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on `{platform.node()}`: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, {memory:.0f} GiB, Python "
        f"{platform.python_version()}, PostgreSQL {'yes' if url else 'not available'}. "
        "Each figure is compared with a baseline measured in the same run.",
        "",
    ]
    status = 0
    for script in sorted(HERE.glob("[a-z]*.py")):
        print(f"== {script.name}", flush=True)
        done = subprocess.run(  # noqa: S603 (our own interpreter and scripts)
            [sys.executable, str(script)], env=env, capture_output=True, text=True, check=False
        )
        print(done.stdout, end="", flush=True)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            status = 1
        lines += [f"## {script.name}", "", "```", done.stdout.rstrip(), "```", ""]
        if done.returncode:
            lines += [f"failed with exit code {done.returncode}", ""]
    (HERE / "results.md").write_text("\n".join(lines))
    print(f"written to {HERE / 'results.md'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
