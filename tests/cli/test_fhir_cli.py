"""``ketacare fhir export``, run in-process against the test database (SQLite and, when
configured, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld
from typer.testing import CliRunner

from ketacare.cli import app
from ketacare.config import get_settings
from ketacare.store.models import AuditEvent, BodyMeasurement
from ketacare.store.types import utcnow

runner = CliRunner()


@pytest.fixture(autouse=True)
def cli_database(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KETACARE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("KETACARE_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def worlds(db: Session, world_a: ClinicWorld, world_b: ClinicWorld) -> ClinicWorld:
    for world in (world_a, world_b):
        for patient in world.patients:
            db.add(
                BodyMeasurement(
                    clinic_id=world.clinic.id,
                    patient_id=patient.id,
                    measured_at=utcnow(),
                    weight_kg=70.0 + patient.id,
                )
            )
    db.commit()
    return world_a


def test_one_patient_goes_to_stdout_as_a_bundle(db: Session, worlds: ClinicWorld) -> None:
    patient = worlds.patients[1]
    result = runner.invoke(app, ["fhir", "export", str(patient.id), "--clinic", "a"])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    assert bundle["type"] == "collection"
    assert bundle["entry"][0]["resource"]["identifier"][0]["value"] == patient.mrn
    weights = [
        e["resource"]["valueQuantity"]["value"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    ]
    assert weights == [70.0 + patient.id]
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "fhir.export")).one()
    assert (event.patient_id, event.outcome, event.actor.startswith("cli:")) == (
        patient.id,
        "success",
        True,
    )


def test_all_patients_go_to_a_file_in_one_bundle_of_the_named_clinic(
    worlds: ClinicWorld, world_b: ClinicWorld, tmp_path: Path
) -> None:
    target = tmp_path / "clinic-a.json"
    result = runner.invoke(app, ["fhir", "export", "--all", "--clinic", "a", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"to {target}" in result.stderr
    bundle = json.loads(target.read_text(encoding="utf-8"))
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls))
    mrns = [
        e["resource"]["identifier"][0]["value"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Patient"
    ]
    assert mrns == [p.mrn for p in worlds.patients]
    assert not any(p.mrn in target.read_text() for p in world_b.patients)
    assert [u for u in urls if u.startswith("Organization/")] == [
        f"Organization/org-{worlds.clinic.id}"
    ]
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["fhir", "export", "--clinic", "a"], "PATIENT_ID"),
        (["fhir", "export", "1", "--all", "--clinic", "a"], "PATIENT_ID"),
        (["fhir", "export", "0", "--clinic", "a"], "PATIENT_ID"),
        (["fhir", "export", "999999", "--clinic", "a"], "PATIENT_ID"),
        (["fhir", "export", "1", "--clinic", "nope"], "--clinic"),
        (["fhir", "export", "1", "--clinic", "a", "-o", "/nonexistent-dir/x.json"], "--output"),
    ],
)
def test_bad_input_exits_2_naming_the_argument(
    worlds: ClinicWorld, args: list[str], names: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {names}:")


def test_another_clinics_patient_is_not_exported(
    worlds: ClinicWorld, world_b: ClinicWorld, tmp_path: Path
) -> None:
    target = tmp_path / "x.json"
    victim = world_b.patients[0]
    result = runner.invoke(
        app, ["fhir", "export", str(victim.id), "--clinic", "a", "-o", str(target)]
    )
    assert result.exit_code == 2
    assert f"No patient {victim.id} in your clinic" in result.stderr
    assert not target.exists()
