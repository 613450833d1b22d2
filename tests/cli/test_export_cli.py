"""``ketacare export csv --deidentify``, run in-process against the test database (SQLite and,
when configured, PostgreSQL)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from tests.app.test_research_export import SECRET, Built, populate
from tests.conftest import ClinicWorld
from typer.testing import CliRunner

from ketacare.app import research_export as rx
from ketacare.app.patients import pseudonym
from ketacare.cli import app
from ketacare.config import get_settings
from ketacare.store.models import Assessment, AuditEvent, TreatmentSession

runner = CliRunner()


@pytest.fixture(autouse=True)
def cli_database(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command opens its own connection to the test database, with the test secret."""
    monkeypatch.setenv("KETACARE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("KETACARE_SECRET_KEY", SECRET)
    monkeypatch.setenv("KETACARE_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def built(db: Session, world_a: ClinicWorld, world_b: ClinicWorld) -> Built:
    populate(db, world_b)
    return populate(db, world_a)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_the_export_writes_both_tables_of_the_named_clinic(
    db: Session, built: Built, tmp_path: Path
) -> None:
    out = tmp_path / "export" / "a"
    result = runner.invoke(app, ["export", "csv", "--deidentify", "--clinic", "a", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["assessments.csv", "sessions.csv"]
    cid = built.world.clinic.id
    counts = {
        "assessments": db.scalar(select(func.count()).where(Assessment.clinic_id == cid)),
        "sessions": db.scalar(select(func.count()).where(TreatmentSession.clinic_id == cid)),
    }
    for table, n in counts.items():
        rows = read(out / f"{table}.csv")
        assert len(rows) == n
        assert f"{table}.csv: {n} rows" in result.output
        assert list(rows[0]) == list(rx.COLUMNS[rx.ExportTable(table)])
    mine = {pseudonym(SECRET, cid, p.id) for p in built.world.patients}
    # The same pseudonyms as the researchers' list and the web download: one secret.
    assert {r["patient"] for r in read(out / "assessments.csv")} == mine
    assert {r["patient"] for r in read(out / "sessions.csv")} <= mine
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "research.export")).all()
    assert [(e.clinic_id, e.actor.startswith("cli:"), e.detail["rows"]) for e in events] == [
        (cid, True, counts["assessments"]),
        (cid, True, counts["sessions"]),
    ]


def test_two_runs_give_identical_files_and_one_table_can_be_chosen(
    built: Built, tmp_path: Path
) -> None:
    for name in ("one", "two"):
        args = ["export", "csv", "--deidentify", "--clinic", "b", "-o", str(tmp_path / name)]
        assert runner.invoke(app, args).exit_code == 0
    for table in ("assessments.csv", "sessions.csv"):
        assert (tmp_path / "one" / table).read_bytes() == (tmp_path / "two" / table).read_bytes()
    only = tmp_path / "only"
    args = [
        "export",
        "csv",
        "--deidentify",
        "--clinic",
        "a",
        "--table",
        "sessions",
        "-o",
        str(only),
    ]
    assert runner.invoke(app, args).exit_code == 0
    assert [p.name for p in only.iterdir()] == ["sessions.csv"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--clinic", "a"], "--deidentify"),
        (["--deidentify", "--clinic", "nowhere"], "--clinic"),
        (["--deidentify"], "--clinic"),  # two clinics: which one?
        (["--deidentify", "--clinic", "a", "--table", "patients"], "--table"),
        (["--deidentify", "--clinic", "a", "--since", "2025-01-01"], "--since"),
    ],
)
def test_bad_input_exits_2_naming_the_option(
    built: Built, tmp_path: Path, args: list[str], option: str
) -> None:
    result = runner.invoke(app, ["export", "csv", *args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert not (tmp_path / "out" / "assessments.csv").exists()


def test_an_output_that_is_a_file_is_refused(built: Built, tmp_path: Path) -> None:
    target = tmp_path / "taken.csv"
    target.write_text("keep me")
    result = runner.invoke(
        app, ["export", "csv", "--deidentify", "--clinic", "a", "--output", str(target)]
    )
    assert result.exit_code == 2
    assert "--output" in result.output and "is a file" in result.output
    assert target.read_text() == "keep me"
