"""The de-identified research export: no identifier, free text or real date in any cell, one
keyed date shift per patient, stable pseudonyms, counts computed right, one clinic only."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import research_export as rx
from ketacare.app.errors import Forbidden
from ketacare.app.patients import keyed_id, pseudonym
from ketacare.app.permissions import Actor, Role
from ketacare.clinical.instruments import score
from ketacare.knowledge.instrument_defs import load_instruments
from ketacare.store.models import (
    AdverseEvent,
    Assessment,
    AuditEvent,
    DoseOrder,
    DoseVerification,
    FlagAcknowledgement,
    SessionAlert,
    SessionAmendment,
    SessionEvent,
    TreatmentSession,
    VitalSample,
)

SECRET = "test-secret-key-with-more-than-32-characters"
# A weekday morning in Toronto (the test clinics' zone): local and UTC dates agree.
T0 = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)
TZ = ZoneInfo("America/Toronto")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "research-export.md"


@dataclass
class Built:
    """A small clinic's records, and what the test needs to know about them."""

    world: ClinicWorld
    # Patient id -> the real local dates of its session rows and of its assessment rows, in
    # the order the export lists them.
    session_dates: dict[int, list[date]] = field(default_factory=dict)
    assessment_dates: dict[int, list[date]] = field(default_factory=dict)
    rich_session: int = 0
    secrets: list[str] = field(default_factory=list)  # every identifying or free-text value


def _assessment(
    db: Session,
    world: ClinicWorld,
    patient_index: int,
    instrument: str,
    answers: list[int],
    at: datetime,
    *,
    source: str = "staff",
    session_id: int | None = None,
) -> Assessment:
    patient = world.patients[patient_index]
    result = score(instrument, answers)
    row = Assessment(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        instrument=instrument,
        administered_at=at,
        source=source,
        answers=list(result.answers),
        total=result.total,
        band=result.band,
        positive_screen=result.positive_screen,
        urgent=result.urgent,
        result=result.to_json_dict(),
        knowledge_version=result.knowledge_version,
        session_id=session_id,
    )
    db.add(row)
    db.flush()
    return row


def _session(db: Session, world: ClinicWorld, patient_index: int, at: datetime) -> TreatmentSession:
    patient = world.patients[patient_index]
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id="iv-ketamine",
        scheduled_at=at,
        status="completed",
        number=1,
        gate={"band": "proceed", "reasons": [{"text": "Blood pressure 118/76: proceed."}]},
        prechecks={"band": "proceed", "checks": [], "overall": "proceed"},
        started_at=at + timedelta(minutes=5),
        dose_started_at=at + timedelta(minutes=20),
        dose_ended_at=at + timedelta(minutes=60),
    )
    db.add(row)
    db.flush()
    return row


def _order(
    db: Session, s: TreatmentSession, minutes: int, mg: float | None, mg_kg: float | None
) -> DoseOrder:
    order = DoseOrder(
        clinic_id=s.clinic_id,
        session_id=s.id,
        status="ordered" if mg is not None else "refused",
        dose_mg=mg,
        mg_per_kg=mg_kg,
        inputs={"weight_kg": 70.0},
        output={"steps": ["70 kg x 0.75 mg/kg"]},
        knowledge_version="test",
        ordered_at=s.scheduled_at + timedelta(minutes=minutes),
    )
    db.add(order)
    db.flush()
    return order


def _alert(db: Session, s: TreatmentSession, severity: str, minutes: int) -> None:
    at = s.scheduled_at + timedelta(minutes=minutes)
    vital = VitalSample(
        clinic_id=s.clinic_id, session_id=s.id, measured_at=at, systolic=185, source="manual"
    )
    db.add(vital)
    db.flush()
    db.add(
        SessionAlert(
            clinic_id=s.clinic_id,
            session_id=s.id,
            vital_sample_id=vital.id,
            raised_at=at,
            code="sbp_high",
            severity=severity,
            field="systolic",
            value=185,
            threshold=180,
            text="Systolic 185 mmHg at 10:40, call Dr Quill",
            sources=["ketacare-clinic-convention"],
            knowledge_version="test",
        )
    )


def _adverse(
    db: Session, s: TreatmentSession, code: str, severity: str, *, serious: bool = False
) -> None:
    db.add(
        AdverseEvent(
            clinic_id=s.clinic_id,
            session_id=s.id,
            patient_id=s.patient_id,
            code=code,
            severity=severity,
            serious=serious,
            onset_at=s.scheduled_at + timedelta(minutes=45),
            action="Ondansetron 4 mg given by Nurse Ottoline Vance",
            outcome="resolved",
            note="Phoned husband Bartholomew on 555-0199",
            knowledge_version="test",
        )
    )


def populate(db: Session, world: ClinicWorld, *, extra_sessions: int = 1) -> Built:
    """Patient 0: a rich first session (orders, alerts, adverse events, in-session ratings,
    overrides) and ``extra_sessions`` plain ones; patient 1: one session and an urgent PHQ-9;
    patient 2: never dosed, one self-report."""
    built = Built(world)
    # Shift the clinics apart so their real dates differ too.
    start = T0 + timedelta(days=40 * (world.clinic.id - 1))
    for i, p in enumerate(world.patients):
        p.phone, p.email = f"+1 416 555 01{i}{world.clinic.id}", f"pat{i}@example.org"
        p.address = f"{12 + i} Wellesley Street East, Toronto"
        p.created_at = start - timedelta(days=30 + i)
        built.secrets += [p.mrn, p.family_name, p.given_name, p.phone, p.email, p.address]
    p0, p1, p2 = (p.id for p in world.patients)

    rich = _session(db, world, 0, start)
    rich.gate = {"band": "hold", "reasons": [{"text": "Blood pressure 165/95 mmHg: hold."}]}
    rich.gate_override_reason = "Rechecked after 10 minutes with Dr Xavier Quill present"
    rich.prechecks = {"band": "caution", "checks": [], "overall": "hold"}
    rich.end_reason = "Patient asked to stop, felt unreal"
    _order(db, rich, 10, 35.0, 0.5)
    latest = _order(db, rich, 15, 52.5, 0.75)
    _order(db, rich, 18, None, None)  # a refused recalculation: no dose, ignored
    db.add(DoseVerification(clinic_id=rich.clinic_id, order_id=latest.id))
    for severity, minutes in (("warning", 25), ("warning", 30), ("critical", 35)):
        _alert(db, rich, severity, minutes)
    _adverse(db, rich, "nausea", "mild")
    _adverse(db, rich, "nausea", "mild")
    _adverse(db, rich, "hypertension", "moderate", serious=True)
    db.add(
        SessionEvent(
            clinic_id=rich.clinic_id,
            session_id=rich.id,
            kind="paused",
            text="Paused while the patient's sister Philippa rang",
        )
    )
    in_session = start + timedelta(minutes=50)
    _assessment(db, world, 0, "moaas", [4], in_session, session_id=rich.id)
    _assessment(db, world, 0, "cadss", [1] * 23, in_session, session_id=rich.id)
    built.secrets += [rich.gate_override_reason, rich.end_reason]
    built.secrets += ["Ondansetron", "Bartholomew", "555-0199", "Quill", "Philippa"]

    sessions = [rich]
    for n in range(extra_sessions):
        plain = _session(db, world, 0, start + timedelta(days=3 + 2 * n))
        plain.number = 2 + n
        _order(db, plain, 10, 35.0, 0.5)
        sessions.append(plain)
    other = _session(db, world, 1, start + timedelta(days=9))

    baseline = _assessment(db, world, 0, "phq9", [1] * 8 + [0], start - timedelta(days=7))
    gad7 = start + timedelta(days=8)
    _assessment(db, world, 0, "gad7", [2] * 7, gad7, source="self_report")
    urgent = _assessment(db, world, 1, "phq9", [0] * 8 + [2], start + timedelta(days=5))
    _assessment(db, world, 2, "asrs", [3] * 18, start + timedelta(days=1), source="self_report")
    db.add(
        FlagAcknowledgement(
            clinic_id=urgent.clinic_id,
            assessment_id=urgent.id,
            note="Safety plan agreed with Rosalind, crisis line given",
        )
    )
    built.secrets += ["Rosalind"]
    db.flush()

    # Sign last: a signed session accepts nothing more. Signed despite unmet criteria.
    rich.discharge = {
        "allowed": False,
        "criteria": [{"id": "escort", "status": "not_met", "reason": "No escort yet"}],
        "override_reason": "Escort Yolanda Zebrowski arriving, patient alert and walking",
    }
    rich.signed_at = rich.ended_at = start + timedelta(hours=3)
    for s in sessions[1:]:
        s.discharge = {"allowed": True, "criteria": [], "override_reason": None}
        s.signed_at = s.scheduled_at + timedelta(hours=3)
    other.status, other.signed_at = "in_progress", None
    built.secrets += ["Yolanda", "Zebrowski"]
    db.flush()
    db.add(
        SessionAmendment(
            clinic_id=rich.clinic_id, session_id=rich.id, text="Late entry by Nurse Ottoline"
        )
    )
    db.commit()

    built.rich_session = rich.id
    built.session_dates = {
        p0: [local(s.scheduled_at) for s in sessions],
        p1: [local(other.scheduled_at)],
    }
    built.assessment_dates = {
        p0: [local(baseline.administered_at), local(in_session), local(in_session), local(gad7)],
        p1: [local(urgent.administered_at)],
        p2: [local(start + timedelta(days=1))],
    }
    return built


def local(at: datetime) -> date:
    return at.astimezone(TZ).date()


def export(db: Session, actor: Actor, table: rx.ExportTable) -> list[dict[str, str]]:
    text = "".join(rx.csv_chunks(rx.export_rows(db, actor, table, secret=SECRET)))
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == list(rx.COLUMNS[table])
    return list(reader)


def system(world: ClinicWorld) -> Actor:
    return Actor(world.clinic.id, Role.SYSTEM, "test")


@pytest.fixture
def built(db: Session, world_a: ClinicWorld, world_b: ClinicWorld) -> Built:
    populate(db, world_b)
    return populate(db, world_a)


def _real_dates(built: Built) -> set[str]:
    dates = {
        d for ds in (*built.session_dates.values(), *built.assessment_dates.values()) for d in ds
    }
    for p in built.world.patients:
        dates |= {p.date_of_birth, p.created_at.astimezone(TZ).date()}
    found: set[str] = set()
    for d in dates:
        found |= {
            d.isoformat(),
            d.strftime("%d/%m/%Y"),
            d.strftime("%m/%d/%Y"),
            d.strftime("%Y%m%d"),
        }
    return found


def test_no_identifier_free_text_or_real_date_appears_in_any_cell(
    db: Session, built: Built
) -> None:
    actor = system(built.world)
    cells = [c for t in rx.ExportTable for r in export(db, actor, t) for c in r.values()]
    assert len(cells) > 300
    real = _real_dates(built)
    bands = {b.label for d in load_instruments().values() for b in d.bands}
    for cell in cells:
        for day in real:
            assert day not in cell, f"a real date in {cell!r}"
        assert not re.search(r"\d{1,2}:\d{2}", cell), f"a time of day: {cell!r}"
        for text in built.secrets:
            assert text.lower() not in cell.lower(), f"{text!r} leaked in {cell!r}"
        # Free text would show as words with spaces; only the scales' band labels have them.
        assert " " not in cell or cell in bands, cell


def test_one_shift_per_patient_keeps_intervals_and_differs_between_patients(
    db: Session, built: Built
) -> None:
    actor = system(built.world)
    cid = built.world.clinic.id
    by_patient = {pseudonym(SECRET, cid, pid): pid for pid in (p.id for p in built.world.patients)}
    offsets: dict[int, set[int]] = {}
    for table, dates in (
        (rx.ExportTable.SESSIONS, built.session_dates),
        (rx.ExportTable.ASSESSMENTS, built.assessment_dates),
    ):
        rows = export(db, actor, table)
        for pid, real in dates.items():
            mine = [r for r in rows if by_patient[r["patient"]] == pid]
            assert len(mine) == len(real)
            for row, real_date in zip(mine, real, strict=True):
                shift = (date.fromisoformat(row["date"]) - real_date).days
                offsets.setdefault(pid, set()).add(shift)
    assert all(len(s) == 1 for s in offsets.values()), offsets
    shifts = [next(iter(s)) for s in offsets.values()]
    assert all(1 <= abs(s) <= rx.MAX_SHIFT_DAYS for s in shifts)
    assert len(set(shifts)) == len(shifts), "patients share an offset"
    assert shifts[0] == rx.date_shift_days(SECRET, cid, built.world.patients[0].id)


def test_day_counts_from_the_first_dose_or_else_registration(db: Session, built: Built) -> None:
    rows = export(db, system(built.world), rx.ExportTable.ASSESSMENTS)
    cid = built.world.clinic.id
    p0, _p1, p2 = (pseudonym(SECRET, cid, p.id) for p in built.world.patients)
    first = [r for r in rows if r["patient"] == p0]
    assert [r["day"] for r in first] == ["-7", "0", "0", "8"]
    assert {r["day_zero"] for r in first} == {"first_dose"}
    never_dosed = [r for r in rows if r["patient"] == p2]
    assert [(r["day"], r["day_zero"]) for r in never_dosed] == [("33", "registration")]


def test_pseudonyms_are_stable_across_exports_and_differ_between_clinics(
    db: Session, built: Built, world_b: ClinicWorld
) -> None:
    for table in rx.ExportTable:
        first = export(db, system(built.world), table)
        assert export(db, system(built.world), table) == first
    mine = {r["patient"] for r in export(db, system(built.world), rx.ExportTable.ASSESSMENTS)}
    theirs = {r["patient"] for r in export(db, system(world_b), rx.ExportTable.ASSESSMENTS)}
    assert mine == {pseudonym(SECRET, built.world.clinic.id, p.id) for p in built.world.patients}
    assert not mine & theirs
    # The clinic is part of every key, and a session never looks like a patient.
    assert pseudonym(SECRET, 1, 7) != pseudonym(SECRET, 2, 7)
    assert keyed_id(SECRET, "session", 1, 7) != keyed_id(SECRET, "session", 2, 7)
    assert keyed_id(SECRET, "session", 1, 7) != pseudonym(SECRET, 1, 7)
    assert pseudonym("another-secret-entirely", 1, 7) != pseudonym(SECRET, 1, 7)


def test_session_rows_carry_the_right_dose_counts_and_flags(db: Session, built: Built) -> None:
    rows = export(db, system(built.world), rx.ExportTable.SESSIONS)
    cid = built.world.clinic.id
    assert len(rows) == 3
    rich = next(
        r for r in rows if r["session"] == keyed_id(SECRET, "session", cid, built.rich_session)
    )
    expected = {
        "patient": pseudonym(SECRET, cid, built.world.patients[0].id),
        "sex": "female",
        "age_band": "35-44",
        "protocol": "iv-ketamine",
        "number": "1",
        "day": "0",
        "day_zero": "first_dose",
        "status": "completed",
        "gate_band": "hold",
        "precheck_band": "caution",
        "gate_overridden": "yes",
        # The latest *ordered* order, not the refused recalculation after it.
        "dose_mg": "52.5",
        "mg_per_kg": "0.75",
        "verified": "yes",
        "minutes_dosed": "40",
        "alerts_warning": "2",
        "alerts_critical": "1",
        "ae_mild": "2",
        "ae_moderate": "1",
        "ae_severe": "0",
        "ae_serious": "1",
        "ae_nausea": "2",
        "ae_hypertension": "1",
        "ae_vomiting": "0",
        "ae_unlisted": "0",
        "adverse_events": "nausea/mild=2;hypertension/moderate=1",
        "discharge_allowed": "no",
        "signed": "yes",
        "signed_with_override": "yes",
    }
    assert {k: rich[k] for k in expected} == expected
    plain = next(r for r in rows if r["number"] == "2")
    assert (plain["dose_mg"], plain["verified"], plain["gate_overridden"]) == ("35.0", "no", "no")
    assert (plain["alerts_warning"], plain["ae_mild"], plain["adverse_events"]) == ("0", "0", "")
    assert (plain["discharge_allowed"], plain["signed_with_override"]) == ("yes", "no")
    unsigned = next(r for r in rows if r["status"] == "in_progress")
    assert (unsigned["signed"], unsigned["discharge_allowed"]) == ("no", "")


def test_assessment_rows_keep_scores_items_and_the_session_link(db: Session, built: Built) -> None:
    rows = export(db, system(built.world), rx.ExportTable.ASSESSMENTS)
    cid = built.world.clinic.id
    assert len(rows) == 6
    rich = keyed_id(SECRET, "session", cid, built.rich_session)
    sessions = {r["session"] for r in export(db, system(built.world), rx.ExportTable.SESSIONS)}
    rated = [r for r in rows if r["in_session"] == "yes"]
    assert {r["instrument"] for r in rated} == {"moaas", "cadss"}
    assert {r["session"] for r in rated} == {rich} and rich in sessions
    cadss = next(r for r in rated if r["instrument"] == "cadss")
    assert cadss["items"] == "23" and cadss["item_23"] == "1" and cadss["total"] == "23"
    urgent = next(r for r in rows if r["urgent"] == "yes")
    assert (urgent["instrument"], urgent["item_9"], urgent["item_10"]) == ("phq9", "2", "")
    assert (urgent["session"], urgent["in_session"]) == ("", "no")
    asrs = next(r for r in rows if r["instrument"] == "asrs")
    assert (asrs["source"], asrs["positive_screen"], asrs["band"]) == ("self_report", "yes", "")
    assert {r["knowledge_version"] for r in rows} == {score("gad7", [0] * 7).knowledge_version}


def test_another_clinics_rows_never_appear(db: Session, built: Built, world_b: ClinicWorld) -> None:
    theirs_p = {pseudonym(SECRET, built.world.clinic.id, p.id) for p in world_b.patients}
    theirs_s = {
        keyed_id(SECRET, "session", built.world.clinic.id, sid)
        for sid in db.scalars(
            select(TreatmentSession.id).where(TreatmentSession.clinic_id == world_b.clinic.id)
        )
    }
    for table in rx.ExportTable:
        rows = export(db, system(built.world), table)
        assert not {r["patient"] for r in rows} & theirs_p
        assert not {r["session"] for r in rows} & theirs_s
    counts = {t: len(export(db, system(built.world), t)) for t in rx.ExportTable}
    assert counts == {rx.ExportTable.ASSESSMENTS: 6, rx.ExportTable.SESSIONS: 3}


def test_only_researchers_and_the_command_line_may_export(db: Session, built: Built) -> None:
    world = built.world
    assert export(db, world.actor(Role.RESEARCHER), rx.ExportTable.SESSIONS)
    for role in (Role.ADMIN, Role.PRESCRIBER, Role.NURSE, Role.THERAPIST):
        with pytest.raises(Forbidden, match=r"patient\.read_deidentified"):
            export(db, world.actor(role), rx.ExportTable.ASSESSMENTS)
    denied = db.scalars(
        select(AuditEvent.actor).where(
            AuditEvent.action == "research.export", AuditEvent.outcome == "denied"
        )
    ).all()
    assert len(denied) == 4


def _events(db: Session) -> list[AuditEvent]:
    return list(
        db.scalars(
            select(AuditEvent).where(AuditEvent.action == "research.export").order_by(AuditEvent.id)
        )
    )


def test_each_export_is_one_audit_event_with_its_row_count(db: Session, built: Built) -> None:
    actor = built.world.actor(Role.RESEARCHER)
    export(db, actor, rx.ExportTable.ASSESSMENTS)
    export(db, actor, rx.ExportTable.SESSIONS)
    events = _events(db)
    assert [(e.outcome, e.detail) for e in events] == [
        ("success", {"table": "assessments", "rows": 6, "complete": True}),
        ("success", {"table": "sessions", "rows": 3, "complete": True}),
    ]
    assert {(e.clinic_id, e.user_id) for e in events} == {
        (built.world.clinic.id, built.world.users[Role.RESEARCHER].id)
    }


def test_a_reader_stopping_early_is_recorded_with_the_rows_it_took(
    db: Session, built: Built
) -> None:
    rows = rx.export_rows(
        db, built.world.actor(Role.RESEARCHER), rx.ExportTable.ASSESSMENTS, secret=SECRET
    )
    next(rows), next(rows), next(rows)  # the header and two rows
    rows.close()
    (event_,) = _events(db)
    assert event_.detail == {"table": "assessments", "rows": 2, "complete": False}


def test_chunks_hold_the_header_alone_then_batches(db: Session, built: Built) -> None:
    rows = rx.export_rows(db, system(built.world), rx.ExportTable.ASSESSMENTS, secret=SECRET)
    chunks = list(rx.csv_chunks(rows, rows_per_chunk=4))
    assert [c.count("\r\n") for c in chunks] == [1, 4, 2]
    assert chunks[0].startswith("patient,sex,age_band,instrument,date,")


@pytest.fixture
def statements(db: Session) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def _selects(db: Session, world: ClinicWorld, seen: list[str]) -> dict[rx.ExportTable, int]:
    found = {}
    for table in rx.ExportTable:
        seen.clear()
        export(db, system(world), table)
        found[table] = sum(s.lstrip().upper().startswith("SELECT") for s in seen)
    return found


def test_the_number_of_queries_does_not_grow_with_the_rows(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld, statements: list[str]
) -> None:
    populate(db, world_a, extra_sessions=1)
    populate(db, world_b, extra_sessions=12)
    assert db.scalar(select(func.count()).select_from(TreatmentSession)) == 17
    small, large = _selects(db, world_a, statements), _selects(db, world_b, statements)
    assert small == large
    assert all(n <= 2 for n in small.values()), small  # the clinic's zone, then the rows


def test_the_date_shift_is_never_zero_and_spans_both_directions() -> None:
    shifts = {rx.date_shift_days(SECRET, 1, pid) for pid in range(1, 3000)}
    assert 0 not in shifts
    assert min(shifts) == -rx.MAX_SHIFT_DAYS and max(shifts) == rx.MAX_SHIFT_DAYS
    assert len(shifts) == 2 * rx.MAX_SHIFT_DAYS


@pytest.mark.parametrize(
    ("born", "on", "band"),
    [
        (date(2008, 6, 1), date(2026, 5, 31), "<18"),
        (date(2008, 6, 1), date(2026, 6, 1), "18-24"),
        (date(1991, 3, 10), date(2025, 3, 10), "25-34"),
        (date(1990, 3, 10), date(2025, 3, 10), "35-44"),
        (date(1960, 1, 1), date(2025, 1, 1), "65+"),
    ],
)
def test_age_bands(born: date, on: date, band: str) -> None:
    assert rx.age_band(born, on) == band


def test_the_documentation_describes_every_column() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for columns in rx.COLUMNS.values():
        for name in columns:
            if name.startswith("item_"):
                continue
            assert f"`{name}`" in text, name
    assert f"`item_1` … `{rx.ITEM_COLUMNS[-1]}`" in text
