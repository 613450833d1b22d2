"""A real server process and Debian's chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: `make test` installs it (apt-get install chromium)."
        )
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ketacare demo` then `ketacare serve` on a free port, as a user would run them."""
    var = tmp_path_factory.mktemp("e2e-var")
    env = {**os.environ, "KETACARE_VAR_DIR": str(var), "KETACARE_ENVIRONMENT": "development"}
    env.pop("KETACARE_DATABASE_URL", None)
    cli = [sys.executable, "-m", "ketacare"]
    subprocess.run([*cli, "demo"], env=env, check=True, capture_output=True)
    port = _free_port()
    log = (var / "server.log").open("w")
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--no-migrate"], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"server did not start: {(var / 'server.log').read_text()}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
