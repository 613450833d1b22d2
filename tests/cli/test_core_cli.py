"""The foundation commands, run in-process against a temporary SQLite database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ketacare import __version__
from ketacare.cli import app
from ketacare.config import get_settings
from ketacare.store import migrate

runner = CliRunner()


@pytest.fixture(autouse=True)
def temp_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KETACARE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("KETACARE_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "var" / "ketacare.db"
    get_settings.cache_clear()


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == __version__


def test_db_upgrade_creates_the_database_file(temp_database: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"revision {migrate.head_revision()}" in result.output
    assert temp_database.exists()


def test_demo_twice_adds_nothing_the_second_time() -> None:
    first = runner.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    assert "created: 30 patients" in first.output
    assert "kc-demo-vitals" in first.output
    second = runner.invoke(app, ["demo"])
    assert "already present, nothing added: 30 patients" in second.output
    listed = json.loads(runner.invoke(app, ["patients", "list", "--json"]).output)
    assert len(listed) == 30
    assert len({p["mrn"] for p in listed}) == 30
    assert set(listed[0]) == {"id", "mrn", "name"}


def test_patients_list_searches_and_prints_a_table() -> None:
    runner.invoke(app, ["demo"])
    result = runner.invoke(app, ["patients", "list", "--q", "KC-01001"])
    assert result.exit_code == 0
    assert "KC-01001" in result.output
    assert "1 patients" in result.output


def test_user_add_creates_a_user_who_can_sign_in() -> None:
    runner.invoke(app, ["db", "upgrade"])
    result = runner.invoke(
        app,
        [
            "user",
            "add",
            "mira",
            "--role",
            "nurse",
            "--name",
            "Mira N",
            "--clinic",
            "north",
            "--create-clinic",
            "North Clinic",
            "--password",
            "a-long-passphrase",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "user mira (nurse) added to clinic north" in result.output
    token = runner.invoke(app, ["user", "token", "mira"])
    assert token.exit_code == 0
    assert token.output.startswith("kc_")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--password", "short"], "password"),
        (["--role", "wizard"], "role"),
    ],
)
def test_user_add_with_bad_input_exits_2_naming_the_field(args: list[str], message: str) -> None:
    runner.invoke(app, ["demo"])
    base = {"--role": "nurse", "--password": "a-long-passphrase"}
    base[args[0]] = args[1]
    flat = [x for kv in base.items() for x in kv]
    result = runner.invoke(app, ["user", "add", "zed", "--name", "Zed", "--clinic", "demo", *flat])
    assert result.exit_code == 2
    assert message in result.output


def test_the_installed_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ketacare", "version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == __version__
    script = Path(sys.executable).parent / "ketacare"
    assert script.exists()
