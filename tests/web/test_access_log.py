"""The server's access log names no patient and no questionnaire link."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ketacare.web.access_log import redact
from tests.conftest import free_port


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/api/v1/patients?q=smith+jo", "/api/v1/patients?…"),
        ("/r/Zq3-x_9?lang=en", "/r/…?…"),
        ("/r/Zq3-x_9", "/r/…"),
        ("/patients/12", "/patients/12"),
        ("/report?", "/report"),
        ("/records/r/7", "/records/r/7"),
    ],
)
def test_query_strings_and_link_tokens_are_cut(path: str, logged: str) -> None:
    assert redact(path) == logged


def _get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_running_server_logs_requests_without_names_or_link_tokens(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "KETACARE_DATABASE_URL": f"sqlite:///{tmp_path / 'log.db'}",
        "KETACARE_VAR_DIR": str(tmp_path),
        "KETACARE_ENVIRONMENT": "development",
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "ketacare", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(300):
                try:
                    if _get(port, "/healthz") == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            assert _get(port, "/r/the-link-token-itself?lang=en") == 404
            assert _get(port, "/api/v1/patients?q=Smithson") == 401
        finally:
            server.terminate()
            server.wait(timeout=20)
    text = log.read_text()
    assert '"GET /r/…?… HTTP/1.1" 404' in text
    assert '"GET /api/v1/patients?… HTTP/1.1" 401' in text
    assert "the-link-token-itself" not in text
    assert "Smithson" not in text
