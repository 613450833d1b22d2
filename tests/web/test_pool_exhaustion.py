"""More requests at once than the server has threads, against a pool of two connections: every
request is answered. A connection held from one trip through the thread pool to the next (the
caller's lookup, then the endpoint) would wait for a thread while every thread waits for a
connection, and requests would fail when the pool's wait runs out."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from ketacare.config import Settings
from ketacare.store.db import make_engine
from ketacare.web.main import create_app
from tests.conftest import ClinicWorld, bearer, free_port

# anyio's thread pool has 40 threads: more requests than that at once fill it.
CLIENTS = 90


def test_requests_beyond_the_threads_and_connections_all_succeed(
    engine: Engine, db: Session, world_a: ClinicWorld, settings: Settings
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    db.commit()
    small = make_engine(
        engine.url.render_as_string(hide_password=False),
        pool_size=2,
        max_overflow=0,
        pool_timeout=20,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, small), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    start = threading.Barrier(CLIENTS, timeout=20)

    def one(_n: int) -> int:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            start.wait()
            return client.get("/api/v1/patients", headers=headers).status_code

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = Counter(pool.map(one, range(CLIENTS)))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        small.dispose()
    assert answers == {200: CLIENTS}
