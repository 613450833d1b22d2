"""``ketacare fhir import FILE``, run in-process against the test database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld
from typer.testing import CliRunner

from ketacare.cli import app
from ketacare.config import get_settings
from ketacare.store.models import AuditEvent, BodyMeasurement, MedicationEntry, Patient

DATA = Path(__file__).parents[1] / "interop" / "data" / "other_ehr_bundle.json"
runner = CliRunner()


@pytest.fixture(autouse=True)
def cli_database(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KETACARE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("KETACARE_SECRET_KEY", "test-secret-key-with-more-than-32-characters")
    monkeypatch.setenv("KETACARE_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_it_imports_and_prints_the_report_then_changes_nothing_the_second_time(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    result = runner.invoke(app, ["fhir", "import", str(DATA), "--clinic", "a"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "Imported a transaction Bundle from https://ehr.lakeside-psychiatry.example/fhir"
    )
    observation = next(line for line in lines if line.startswith("Observation "))
    assert observation.split()[1:] == ["2", "0", "0", "2", "0", "0"]
    assert "3 findings:" in lines
    assert any("entry[8].resource.valueQuantity.unit" in line for line in lines)
    patient = db.scalar(select(Patient).where(Patient.mrn == "LP-48213"))
    assert patient is not None and patient.clinic_id == world_a.clinic.id
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "fhir.import"))
    assert event is not None and event.actor.startswith("cli:")

    rows = [
        db.scalar(select(func.count()).select_from(m)) for m in (MedicationEntry, BodyMeasurement)
    ]
    again = runner.invoke(app, ["fhir", "import", str(DATA), "--clinic", "a"])
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1] == "Nothing changed."
    assert rows == [
        db.scalar(select(func.count()).select_from(m)) for m in (MedicationEntry, BodyMeasurement)
    ]


def test_json_output_for_scripts(db: Session, world_a: ClinicWorld) -> None:
    result = runner.invoke(app, ["fhir", "import", str(DATA), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["counts"]["MedicationStatement"]["created"] == 2
    assert [f["code"] for f in report["findings"]] == [
        "unknown_code",
        "unknown_unit",
        "unsupported_resource",
    ]
    assert len(report["entries"]) == 10


def test_stdin_is_read_with_a_dash(db: Session, world_a: ClinicWorld) -> None:
    result = runner.invoke(app, ["fhir", "import", "-", "--json"], input=DATA.read_text())
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"]["Patient"]["created"] == 1


def test_a_malformed_file_exits_2_naming_the_problem(
    db: Session, world_a: ClinicWorld, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    data = json.loads(DATA.read_text())
    data["entry"][6]["resource"]["onsetDateTime"] = "in the spring"
    bad.write_text(json.dumps(data))
    result = runner.invoke(app, ["fhir", "import", str(bad)])
    assert result.exit_code == 2
    assert "entry[6].resource.onsetDateTime" in result.output
    truncated = tmp_path / "cut.json"
    truncated.write_text(DATA.read_text()[:200])
    cut = runner.invoke(app, ["fhir", "import", str(truncated)])
    assert cut.exit_code == 2 and "not valid JSON" in cut.output
    assert db.scalar(select(func.count()).select_from(MedicationEntry)) == 0


def test_a_missing_file_or_unknown_clinic_exits_2(
    db: Session, world_a: ClinicWorld, tmp_path: Path
) -> None:
    missing = runner.invoke(app, ["fhir", "import", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "FILE: cannot read" in missing.output
    clinic = runner.invoke(app, ["fhir", "import", str(DATA), "--clinic", "zz"])
    assert clinic.exit_code == 2 and "--clinic" in clinic.output
