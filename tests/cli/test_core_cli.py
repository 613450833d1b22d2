"""The foundation commands, run in-process against a temporary SQLite database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from ketacare import __version__
from ketacare.cli import app
from ketacare.config import get_settings
from ketacare.store import migrate
from ketacare.store.db import make_engine, make_session_factory
from ketacare.store.models import User

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


def test_rebuilding_the_summaries_of_the_demo_changes_nothing(temp_database: Path) -> None:
    runner.invoke(app, ["demo"])

    def summaries() -> list[tuple]:
        with sqlite3.connect(temp_database) as conn:
            return conn.execute(
                "SELECT f.patient_id, f.protocol_id, s.instrument, s.baseline_total, "
                "s.latest_total FROM patient_first_doses f LEFT JOIN patient_scale_summaries s "
                "ON s.patient_id = f.patient_id ORDER BY 1, 3"
            ).fetchall()

    before = summaries()
    # The demo doses patients and rates them before and after: summaries exist.
    assert len({row[0] for row in before}) >= 3
    assert any(row[3] is not None and row[4] is not None for row in before)
    result = runner.invoke(app, ["db", "rebuild-summaries"])
    assert result.exit_code == 0, result.output
    assert summaries() == before


def test_the_demo_shows_a_transient_hypotension_acknowledged(temp_database: Path) -> None:
    runner.invoke(app, ["demo"])
    with sqlite3.connect(temp_database) as conn:
        alerts = conn.execute(
            "SELECT a.id, a.session_id, a.severity, a.value, v.systolic, v.diastolic "
            "FROM session_alerts a JOIN vital_samples v ON v.id = a.vital_sample_id "
            "WHERE a.code = 'systolic_low'"
        ).fetchall()
        assert [row[2:] for row in alerts] == [("warning", 84.0, 84.0, 50.0)]
        (alert_id, session_id) = alerts[0][:2]
        acks = conn.execute(
            "SELECT text FROM session_events WHERE kind = 'alert_ack' "
            "AND json_extract(detail, '$.alert_id') = ?",
            (alert_id,),
        ).fetchall()
        assert len(acks) == 1 and acks[0][0].startswith("Lay flat with legs raised")
        signed = conn.execute(
            "SELECT signed_at IS NOT NULL, json_extract(discharge, '$.allowed') "
            "FROM treatment_sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        # Back to normal before discharge: signed with every criterion met.
        assert signed == (1, 1)


def test_totp_reset_turns_two_factor_off_and_names_a_wrong_user() -> None:
    runner.invoke(app, ["demo"])
    engine = make_engine(get_settings().effective_database_url)
    with make_session_factory(engine)() as db:
        user = db.scalars(select(User).order_by(User.id)).first()
        assert user is not None
        user.totp_secret, username = "GEZDGNBVGY3TQOJQ", user.username
        db.commit()
    result = runner.invoke(app, ["user", "totp-reset", username])
    assert result.exit_code == 0, result.output
    with make_session_factory(engine)() as db:
        assert db.scalar(select(User.totp_secret).where(User.username == username)) is None
    again = runner.invoke(app, ["user", "totp-reset", username])
    assert again.exit_code == 2 and "does not use two-factor" in again.output
    missing = runner.invoke(app, ["user", "totp-reset", "nobody-here"])
    assert missing.exit_code == 2 and "username:" in missing.output
    engine.dispose()


def test_demo_adds_synthetic_clinics_with_courses_sessions_and_vitals(
    temp_database: Path,
) -> None:
    result = runner.invoke(app, ["demo", "--patients", "41", "--clinics", "2"])
    assert result.exit_code == 0, result.output
    assert "synthetic-1: 21 patients" in result.output
    assert "synthetic-2: 20 patients" in result.output
    with sqlite3.connect(temp_database) as conn:
        per_clinic = dict(
            conn.execute(
                "SELECT c.slug, count(*) FROM patients p JOIN clinics c ON c.id = p.clinic_id "
                "GROUP BY c.slug"
            ).fetchall()
        )
        vitals, dosed = conn.execute(
            "SELECT (SELECT count(*) FROM vital_samples v JOIN clinics c ON c.id = v.clinic_id "
            "WHERE c.slug LIKE 'synthetic-%' AND v.sample_key LIKE 'syn-%-%'), "
            "(SELECT count(*) FROM treatment_sessions s JOIN clinics c ON c.id = s.clinic_id "
            "WHERE c.slug LIKE 'synthetic-%' AND s.dose_started_at IS NOT NULL)"
        ).fetchone()
    assert per_clinic["synthetic-1"] == 21 and per_clinic["synthetic-2"] == 20
    assert dosed > 0 and vitals == 7 * dosed
    again = runner.invoke(app, ["demo", "--patients", "41", "--clinics", "2"])
    assert "synthetic-1: already present" in again.output
    bad = runner.invoke(app, ["demo", "--clinics", "0"])
    assert bad.exit_code == 2 and "--clinics" in bad.output
