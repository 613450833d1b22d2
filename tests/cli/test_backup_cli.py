"""Online backup and restore of the SQLite database: a consistent copy while the database is
written, checked before it is trusted; a restore brings back exactly what the copy held."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ketacare.cli import app
from ketacare.config import get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KETACARE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("KETACARE_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "var" / "ketacare.db"
    get_settings.cache_clear()


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_backup_taken_during_writes_restores_exactly(var: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    patients = _count(var, "patients")
    stop = threading.Event()

    def write() -> None:
        # Another process-like writer appends audit rows while the copy is taken.
        conn = sqlite3.connect(var, timeout=10)
        while not stop.is_set():
            conn.execute(
                "INSERT INTO audit_events (at, clinic_id, actor, action, outcome) "
                "VALUES (CURRENT_TIMESTAMP, 1, 'test', 'test.write', 'success')"
            )
            conn.commit()
        conn.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copy = tmp_path / "copy.db"
        result = runner.invoke(app, ["backup", str(copy)])
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    assert f"{patients} patients" in result.output and "integrity check ok" in result.output
    copied_audit = _count(copy, "audit_events")
    assert copied_audit <= _count(var, "audit_events")

    # Changes after the backup are undone by the restore.
    with sqlite3.connect(var) as conn:
        conn.execute("DELETE FROM self_report_links")
        conn.execute("UPDATE patients SET family_name = 'Changed'")
    refused = runner.invoke(app, ["restore", str(copy)])
    assert refused.exit_code == 2 and "--yes" in refused.output
    restored = runner.invoke(app, ["restore", str(copy), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert _count(var, "patients") == patients
    assert _count(var, "audit_events") == copied_audit
    with sqlite3.connect(var) as conn:
        assert (
            conn.execute("SELECT count(*) FROM patients WHERE family_name = 'Changed'").fetchone()[
                0
            ]
            == 0
        )
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_bad_backup_and_restore_requests_exit_2_naming_the_argument(
    var: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = runner.invoke(app, ["backup", str(tmp_path / "x.db")])
    assert missing.exit_code == 2 and "database:" in missing.output
    runner.invoke(app, ["db", "upgrade"])
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"")
    exists = runner.invoke(app, ["backup", str(taken)])
    assert exists.exit_code == 2 and "file:" in exists.output and "exists" in exists.output
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    bad = runner.invoke(app, ["restore", str(junk), "--yes"])
    assert bad.exit_code == 2 and "file:" in bad.output
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    foreign = runner.invoke(app, ["restore", str(other), "--yes"])
    assert foreign.exit_code == 2 and "not a KetaCare database" in foreign.output
    monkeypatch.setenv("KETACARE_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/x")
    get_settings.cache_clear()
    pg = runner.invoke(app, ["backup", str(tmp_path / "pg.db")])
    assert pg.exit_code == 2 and "pg_dump" in pg.output
