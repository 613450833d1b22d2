"""Patient use-cases: registration, editing, search, paging, measurements, medicines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import patients as uc
from ketacare.app.errors import Conflict, Forbidden, InvalidInput, NotFound
from ketacare.app.permissions import Actor, Role
from ketacare.store.models import AuditEvent, Patient


def new(mrn: str = "MRN-1", family: str = "Lefèvre", given: str = "Chloé") -> uc.PatientCreate:
    return uc.PatientCreate(
        mrn=mrn, family_name=family, given_name=given, date_of_birth=date(1990, 5, 17), sex="female"
    )


def test_it_registers_a_patient_at_intake_with_an_upper_case_mrn(
    db: Session, world_a: ClinicWorld
) -> None:
    out = uc.create_patient(db, world_a.actor(Role.NURSE), new(mrn="kc-77"))
    assert out.mrn == "KC-77"
    assert out.stage == uc.Stage.INTAKE
    assert out.version == 1


def test_it_refuses_a_duplicate_mrn_in_the_same_clinic_naming_the_field(
    db: Session, world_a: ClinicWorld
) -> None:
    uc.create_patient(db, world_a.actor(Role.NURSE), new(mrn="X-1"))
    with pytest.raises(InvalidInput) as err:
        uc.create_patient(db, world_a.actor(Role.NURSE), new(mrn="x-1", family="Other"))
    assert err.value.field == "mrn"


def test_the_same_mrn_may_exist_in_another_clinic(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    uc.create_patient(db, world_a.actor(Role.NURSE), new(mrn="SHARED-1"))
    out = uc.create_patient(db, world_b.actor(Role.NURSE), new(mrn="SHARED-1"))
    assert out.mrn == "SHARED-1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("date_of_birth", date(2999, 1, 1)),
        ("date_of_birth", date(1850, 1, 1)),
        ("sex", "yes"),
        ("family_name", "   "),
        ("mrn", "has space"),
        ("email", "not-an-email"),
        ("phone", "call me"),
    ],
)
def test_invalid_demographics_are_refused_naming_the_field(field: str, value: object) -> None:
    data = new().model_dump()
    data[field] = value
    with pytest.raises(ValidationError) as err:
        uc.PatientCreate.model_validate(data)
    assert err.value.errors()[0]["loc"][0] == field


def test_an_edit_with_a_stale_version_is_a_conflict_not_a_lost_update(
    db: Session, world_a: ClinicWorld
) -> None:
    nurse = world_a.actor(Role.NURSE)
    created = uc.create_patient(db, nurse, new())
    base = created.model_dump(include=set(uc.PatientFields.model_fields))
    first = uc.update_patient(
        db, nurse, created.id, uc.PatientUpdate(**{**base, "phone": "+1 555 0100", "version": 1})
    )
    assert first.version == 2
    with pytest.raises(Conflict):
        uc.update_patient(
            db,
            nurse,
            created.id,
            uc.PatientUpdate(**{**base, "phone": "+1 555 0199", "version": 1}),
        )
    assert uc.get_chart(db, nurse, created.id).patient.phone == "+1 555 0100"


def test_another_clinics_patient_is_not_found(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    with pytest.raises(NotFound):
        uc.get_chart(db, world_a.actor(Role.NURSE), world_b.patients[0].id)


def test_a_therapist_reads_but_cannot_record_medicines(db: Session, world_a: ClinicWorld) -> None:
    therapist = world_a.actor(Role.THERAPIST)
    pid = world_a.patients[0].id
    assert uc.get_chart(db, therapist, pid).patient.id == pid
    with pytest.raises(Forbidden):
        uc.add_medication(db, therapist, pid, uc.MedicationCreate(name="Vyvanse 50 mg"))


def test_a_researcher_cannot_open_a_chart(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(Forbidden):
        uc.get_chart(db, world_a.actor(Role.RESEARCHER), world_a.patients[0].id)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("lef", ["Lefèvre, Chloé"]),
        ("LEFEVRE", ["Lefèvre, Chloé"]),
        ("chloe", ["Lefèvre, Chloé"]),
        ("smi jo", ["Smith, Jo"]),
        ("jo smi", ["Smith, Jo"]),
        ("smith", ["Smith, Anna", "Smith, Jo"]),
        ("kc-0002", ["Smith, Jo"]),
        ("kc-000", ["Lefèvre, Chloé", "Smith, Anna", "Smith, Jo"]),
        ("%", []),
        ("_", []),
        ("zzz", []),
    ],
)
def test_search_matches_name_starts_and_mrn_prefix(
    db: Session, world_a: ClinicWorld, q: str, expected: list[str]
) -> None:
    nurse = world_a.actor(Role.NURSE)
    uc.create_patient(db, nurse, new(mrn="KC-0001"))
    uc.create_patient(db, nurse, new(mrn="KC-0002", family="Smith", given="Jo"))
    uc.create_patient(db, nurse, new(mrn="KC-0003", family="Smith", given="Anna"))
    page = uc.list_patients(db, nurse, q=q)
    assert [f"{p.family_name}, {p.given_name}" for p in page.items] == expected


def test_search_never_returns_other_clinics_patients(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    page = uc.list_patients(db, world_a.actor(Role.NURSE), q="bfamily")
    assert page.items == []
    page = uc.list_patients(db, world_a.actor(Role.NURSE), q="B-")
    assert page.items == []


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(
        st.sampled_from(["Ng", "Ngo", "Nguyen", "Ñúñez", "nunez", "O'Neil", "Oh"]),
        min_size=0,
        max_size=12,
    ),
    page_size=st.integers(min_value=1, max_value=5),
)
def test_paging_visits_every_patient_once_in_name_order(
    db: Session, world_a: ClinicWorld, names: list[str], page_size: int
) -> None:
    nurse = Actor(clinic_id=world_a.clinic.id, role=Role.SYSTEM, label="t")
    # Hypothesis reuses the database across examples: count what earlier examples left.
    before = db.scalar(
        select(func.count()).select_from(Patient).where(Patient.clinic_id == world_a.clinic.id)
    )
    assert before is not None
    for i, name in enumerate(names):
        uc.create_patient(db, nurse, new(mrn=f"P{before + i}", family=name, given="A"))
    seen: list[uc.PatientSummary] = []
    cursor = None
    while True:
        page = uc.list_patients(db, nurse, cursor=cursor, limit=page_size)
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len({p.id for p in seen}) == len(seen) == before + len(names)


def test_a_garbled_cursor_is_invalid_input(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(InvalidInput) as err:
        uc.list_patients(db, world_a.actor(Role.NURSE), cursor="!!not-a-cursor")
    assert err.value.field == "cursor"


def _measured(db: Session, world: ClinicWorld, days_ago: float, **values: float) -> None:
    """A nurse records a measurement of the first patient, ``days_ago`` days back."""
    when = datetime.now(UTC) - timedelta(days=days_ago)
    uc.add_measurement(
        db,
        world.actor(Role.NURSE),
        world.patients[0].id,
        uc.MeasurementCreate(measured_at=when, **values),
    )


def test_the_chart_shows_the_latest_weight_and_height_separately(
    db: Session, world_a: ClinicWorld
) -> None:
    _measured(db, world_a, 40, weight_kg=80, height_cm=180)
    _measured(db, world_a, 2, weight_kg=77.5)
    _measured(db, world_a, 90, weight_kg=90)
    chart = uc.get_chart(db, world_a.actor(Role.NURSE), world_a.patients[0].id)
    assert chart.latest_weight is not None and chart.latest_weight.weight_kg == 77.5
    assert chart.latest_height is not None and chart.latest_height.height_cm == 180
    assert [m.weight_kg for m in chart.measurements] == [77.5, 80, 90]


def test_a_height_older_than_the_recent_measurements_is_still_the_latest_height(
    db: Session, world_a: ClinicWorld
) -> None:
    # The chart lists the 20 newest measurements; the latest height is found beyond them.
    _measured(db, world_a, 400, weight_kg=85, height_cm=172)
    for day in range(uc.RECENT_MEASUREMENTS + 1):
        _measured(db, world_a, day, weight_kg=80 - day / 10)
    chart = uc.get_chart(db, world_a.actor(Role.NURSE), world_a.patients[0].id)
    assert len(chart.measurements) == uc.RECENT_MEASUREMENTS
    assert all(m.height_cm is None for m in chart.measurements)
    assert chart.latest_height is not None and chart.latest_height.height_cm == 172
    assert chart.latest_weight is not None and chart.latest_weight.weight_kg == 80


def test_a_chart_without_measurements_shows_weight_as_unknown(
    db: Session, world_a: ClinicWorld
) -> None:
    chart = uc.get_chart(db, world_a.actor(Role.NURSE), world_a.patients[0].id)
    assert chart.latest_weight is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"weight_kg": 29.9}, "weight_kg"),
        ({"weight_kg": 300.1}, "weight_kg"),
        ({"height_cm": 119}, "height_cm"),
        ({"height_cm": 231}, "height_cm"),
        ({}, None),
        ({"weight_kg": 70, "measured_at": "2026-01-01T10:00:00"}, "measured_at"),
    ],
)
def test_implausible_measurements_are_refused(data: dict[str, object], field: str | None) -> None:
    with pytest.raises(ValidationError) as err:
        uc.MeasurementCreate.model_validate(data)
    loc = err.value.errors()[0]["loc"]
    assert (loc[0] if loc else None) == field


def test_a_measurement_in_the_future_is_refused(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(InvalidInput) as err:
        uc.add_measurement(
            db,
            world_a.actor(Role.NURSE),
            world_a.patients[0].id,
            uc.MeasurementCreate(measured_at=datetime.now(UTC) + timedelta(hours=2), weight_kg=70),
        )
    assert err.value.field == "measured_at"


def test_stopping_a_medicine_records_the_stop_date_and_keeps_the_row(
    db: Session, world_a: ClinicWorld
) -> None:
    nurse = world_a.actor(Role.NURSE)
    pid = world_a.patients[0].id
    med = uc.add_medication(
        db,
        nurse,
        pid,
        uc.MedicationCreate(name="Concerta 54 mg ER tab", start_date=date(2025, 1, 1)),
    )
    stopped = uc.update_medication(
        db, nurse, pid, med.id, uc.MedicationUpdate(version=med.version, status="stopped")
    )
    assert stopped.status == uc.MedicationStatus.STOPPED
    assert stopped.stop_date == datetime.now(UTC).date()
    assert [m.name for m in uc.list_medications(db, nurse, pid)] == ["Concerta 54 mg ER tab"]
    with pytest.raises(Conflict):
        uc.update_medication(
            db, nurse, pid, med.id, uc.MedicationUpdate(version=med.version, status="active")
        )


def test_a_stop_date_before_the_start_is_refused() -> None:
    with pytest.raises(ValidationError):
        uc.MedicationCreate(name="x", start_date=date(2025, 2, 1), stop_date=date(2025, 1, 1))


def test_research_rows_carry_no_identifying_fields(db: Session, world_a: ClinicWorld) -> None:
    page = uc.list_deidentified(db, world_a.actor(Role.RESEARCHER), secret="s" * 40)
    assert len(page.items) == 3
    row = page.items[0].model_dump()
    assert set(row) == {"pseudonym", "birth_year", "sex", "stage"}
    pseudonyms = {r.pseudonym for r in page.items}
    assert len(pseudonyms) == 3
    assert not any(str(p.id) == ps for p in world_a.patients for ps in pseudonyms)


def test_staff_cannot_use_the_research_view(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(Forbidden):
        uc.list_deidentified(db, world_a.actor(Role.NURSE), secret="s" * 40)


def test_every_use_case_leaves_one_audit_event_with_its_outcome(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    nurse = world_a.actor(Role.NURSE)
    created = uc.create_patient(db, nurse, new(mrn="AUD-1"))
    uc.get_chart(db, nurse, created.id)
    with pytest.raises(NotFound):
        uc.get_chart(db, nurse, world_b.patients[0].id)
    with pytest.raises(Forbidden):
        uc.get_chart(db, world_a.actor(Role.RESEARCHER), created.id)
    with pytest.raises(InvalidInput):
        uc.create_patient(db, nurse, new(mrn="AUD-1"))
    rows = db.execute(
        select(AuditEvent.action, AuditEvent.patient_id, AuditEvent.outcome, AuditEvent.user_id)
        .where(AuditEvent.clinic_id == world_a.clinic.id)
        .order_by(AuditEvent.id)
    ).all()
    assert [(r.action, r.patient_id, r.outcome) for r in rows] == [
        ("patient.create", created.id, "success"),
        ("patient.view", created.id, "success"),
        ("patient.view", world_b.patients[0].id, "not_found"),
        ("patient.view", created.id, "denied"),
        ("patient.create", None, "invalid"),
    ]
    assert rows[0].user_id == world_a.users[Role.NURSE].id
    # The refused registration left no half-made patient behind.
    assert len(uc.list_patients(db, nurse, q="AUD").items) == 1
