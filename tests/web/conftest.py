"""Fixtures of the web tests that need a real server rather than the in-process client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from sqlalchemy import Engine

from ketacare.config import Settings
from ketacare.web.main import create_app
from tests.conftest import free_port


@pytest.fixture
def live_server(engine: Engine, settings: Settings) -> Iterator[str]:
    """uvicorn serving the test database on a free port, in a thread; requests run in its
    thread pool, so several clients really run at once."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
