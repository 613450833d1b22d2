"""De-identified research export: one CSV row per assessment, one per dosing session.

What leaves the clinic (docs/research-export.md documents every column):
- patients and sessions appear only as keyed hashes (``pseudonym``, ``keyed_id``);
- every date of a patient is moved by one keyed offset of 1 to 180 days, earlier or later,
  so intervals within a patient are kept and no real date is published (times of day are
  dropped; durations are kept as minutes);
- no free text at all (names, record numbers, contact details, notes, reasons, actions), and
  instead of the birth date an age band on the day of each row;
- only the actor's clinic.

Rows are read in batches (``yield_per``), so a large clinic never sits in memory; counts and
the latest dose order are computed by the database in the same query (no query per row).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import Select, Subquery, and_, case, func, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from ketacare.app.audit import audited
from ketacare.app.patients import keyed_id, pseudonym
from ketacare.app.permissions import Actor, Permission, require
from ketacare.clinical.eligibility import age_on
from ketacare.knowledge.instrument_defs import load_instruments
from ketacare.knowledge.session_defs import load_session_checks
from ketacare.store.models import (
    AdverseEvent,
    Assessment,
    Clinic,
    DoseOrder,
    DoseVerification,
    Patient,
    SessionAlert,
    TreatmentSession,
)

# Rows fetched from the database at a time, and CSV rows per chunk of an HTTP download.
BATCH = 500
# Dates move by 1..MAX_SHIFT_DAYS days, earlier or later; never by 0 (that would publish them).
MAX_SHIFT_DAYS = 180
# SessionAlert.severity as clinical.monitoring raises them.
ALERT_SEVERITIES = ("warning", "critical")
# Age on the day of the row, in bands (lower bound, label), oldest first.
AGE_BANDS = ((65, "65+"), (55, "55-64"), (45, "45-54"), (35, "35-44"), (25, "25-34"), (18, "18-24"))


class ExportTable(StrEnum):
    ASSESSMENTS = "assessments"
    SESSIONS = "sessions"


def _item_count() -> int:
    return max(d.item_count for d in load_instruments().values())


ITEM_COLUMNS = tuple(f"item_{n}" for n in range(1, _item_count() + 1))
AE_CODES = tuple(a.code for a in load_session_checks().adverse_events)
AE_SEVERITIES = tuple(s.value for s in load_session_checks().adverse_event_severities)
# Codes no longer in the vocabulary (recorded under an older knowledge version).
UNLISTED = "unlisted"
AE_CODE_COLUMNS = tuple(f"ae_{c}" for c in (*AE_CODES, UNLISTED))

PATIENT_COLUMNS = ("patient", "sex", "age_band")
DATE_COLUMNS = ("date", "day", "day_zero")
COLUMNS: dict[ExportTable, tuple[str, ...]] = {
    ExportTable.ASSESSMENTS: (
        *PATIENT_COLUMNS,
        "instrument",
        *DATE_COLUMNS,
        "source",
        "in_session",
        "session",
        "total",
        "band",
        "positive_screen",
        "urgent",
        "knowledge_version",
        "items",
        *ITEM_COLUMNS,
    ),
    ExportTable.SESSIONS: (
        "session",
        *PATIENT_COLUMNS,
        "protocol",
        "number",
        *DATE_COLUMNS,
        "status",
        "gate_band",
        "precheck_band",
        "gate_overridden",
        "dose_mg",
        "mg_per_kg",
        "verified",
        "minutes_dosed",
        *(f"alerts_{s}" for s in ALERT_SEVERITIES),
        *(f"ae_{s}" for s in AE_SEVERITIES),
        "ae_serious",
        *AE_CODE_COLUMNS,
        "adverse_events",
        "discharge_allowed",
        "signed",
        "signed_with_override",
    ),
}


# --- de-identification ------------------------------------------------------------------------


def date_shift_days(secret: str, clinic_id: int, patient_id: int) -> int:
    """The patient's keyed offset: -180..-1 or 1..180 days, the same for every export while
    the secret is unchanged, and not derivable without it."""
    n = int(keyed_id(secret, "date-shift", clinic_id, patient_id), 16) % (2 * MAX_SHIFT_DAYS)
    return n - MAX_SHIFT_DAYS if n < MAX_SHIFT_DAYS else n - MAX_SHIFT_DAYS + 1


def age_band(date_of_birth: date, on: date) -> str:
    age = age_on(date_of_birth, on)
    return next((label for low, label in AGE_BANDS if age >= low), f"<{AGE_BANDS[-1][0]}")


@dataclass(frozen=True, slots=True)
class _Subject:
    """What every row of one patient needs: pseudonym, offset, and day zero (real date)."""

    pseudonym: str
    shift_days: int
    date_of_birth: date
    sex: str
    day_zero: date
    day_zero_kind: str


class _Subjects:
    """Rows come ordered by patient, so remembering the last one computes each hash once."""

    def __init__(self, secret: str, clinic_id: int, tz: ZoneInfo) -> None:
        self.secret, self.clinic_id, self.tz = secret, clinic_id, tz
        self._last: tuple[int, _Subject] | None = None

    def local(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def get(self, row: Row[Any]) -> _Subject:
        if self._last is None or self._last[0] != row.patient_id:
            if row.first_dose_at is not None:
                zero, kind = self.local(row.first_dose_at), "first_dose"
            else:
                zero, kind = self.local(row.registered_at), "registration"
            subject = _Subject(
                pseudonym(self.secret, self.clinic_id, row.patient_id),
                date_shift_days(self.secret, self.clinic_id, row.patient_id),
                row.date_of_birth,
                row.sex,
                zero,
                kind,
            )
            self._last = (row.patient_id, subject)
        return self._last[1]

    def session(self, session_id: int | None) -> str:
        if session_id is None:
            return ""
        return keyed_id(self.secret, "session", self.clinic_id, session_id)

    def cells(self, subject: _Subject, at: datetime) -> list[str]:
        """patient, sex, age_band, date, day, day_zero (the row's own columns go between)."""
        real = self.local(at)
        shifted = real + timedelta(days=subject.shift_days)
        return [
            subject.pseudonym,
            subject.sex,
            age_band(subject.date_of_birth, real),
            shifted.isoformat(),
            str((real - subject.day_zero).days),
            subject.day_zero_kind,
        ]


def _yes(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _text(value: object) -> str:
    return "" if value is None else str(value)


# --- queries ----------------------------------------------------------------------------------


def _patient_columns(clinic_id: int) -> tuple[Subquery, tuple[Any, ...]]:
    """Columns every row joins in; the subquery is each patient's first dose."""
    first = (
        select(
            TreatmentSession.patient_id.label("patient_id"),
            func.min(TreatmentSession.dose_started_at).label("first_dose_at"),
        )
        .where(
            TreatmentSession.clinic_id == clinic_id, TreatmentSession.dose_started_at.is_not(None)
        )
        .group_by(TreatmentSession.patient_id)
        .subquery("first_dose")
    )
    columns = (
        Patient.id.label("patient_id"),
        Patient.date_of_birth,
        Patient.sex,
        Patient.created_at.label("registered_at"),
        first.c.first_dose_at,
    )
    return first, columns


def _assessments_query(clinic_id: int) -> Select[Any]:
    first, patient = _patient_columns(clinic_id)
    return (
        select(
            *patient,
            Assessment.instrument,
            Assessment.administered_at,
            Assessment.source,
            Assessment.session_id,
            Assessment.total,
            Assessment.band,
            Assessment.positive_screen,
            Assessment.urgent,
            Assessment.knowledge_version,
            Assessment.answers,
        )
        .select_from(Assessment)
        .join(Patient, and_(Patient.id == Assessment.patient_id, Patient.clinic_id == clinic_id))
        .outerjoin(first, first.c.patient_id == Assessment.patient_id)
        .where(Assessment.clinic_id == clinic_id)
        .order_by(Assessment.patient_id, Assessment.administered_at, Assessment.id)
    )


def _count(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _sessions_query(clinic_id: int) -> Select[Any]:
    first, patient = _patient_columns(clinic_id)
    ts = TreatmentSession
    # The latest order that was actually ordered (a refused calculation carries no dose).
    ranked = (
        select(
            DoseOrder.id,
            DoseOrder.session_id,
            DoseOrder.dose_mg,
            DoseOrder.mg_per_kg,
            func.row_number()
            .over(
                partition_by=DoseOrder.session_id,
                order_by=(DoseOrder.ordered_at.desc(), DoseOrder.id.desc()),
            )
            .label("rank"),
        )
        .where(DoseOrder.clinic_id == clinic_id, DoseOrder.status == "ordered")
        .subquery("orders")
    )
    alerts = (
        select(
            SessionAlert.session_id,
            *(_count(SessionAlert.severity == s).label(f"alerts_{s}") for s in ALERT_SEVERITIES),
        )
        .where(SessionAlert.clinic_id == clinic_id)
        .group_by(SessionAlert.session_id)
        .subquery("alerts")
    )
    # One count per (code, severity): the per-code, per-severity and joint columns derive
    # from these.
    ae = AdverseEvent
    code_conditions = [ae.code == c for c in AE_CODES] + [ae.code.not_in(AE_CODES)]
    events = (
        select(
            ae.session_id,
            *(
                _count(and_(code, ae.severity == s)).label(f"ae_{i}_{j}")
                for i, code in enumerate(code_conditions)
                for j, s in enumerate(AE_SEVERITIES)
            ),
            _count(ae.serious.is_(True)).label("ae_serious"),
        )
        .where(ae.clinic_id == clinic_id)
        .group_by(ae.session_id)
        .subquery("events")
    )
    return (
        select(
            *patient,
            ts.id.label("session_id"),
            ts.protocol_id,
            ts.number,
            ts.scheduled_at,
            ts.status,
            ts.gate["band"].as_string().label("gate_band"),
            ts.prechecks["band"].as_string().label("precheck_band"),
            ts.gate_override_reason.is_not(None).label("gate_overridden"),
            ts.dose_started_at,
            ts.dose_ended_at,
            ts.discharge["allowed"].as_boolean().label("discharge_allowed"),
            ts.signed_at.is_not(None).label("signed"),
            ts.discharge["override_reason"].as_string().is_not(None).label("discharge_override"),
            ranked.c.dose_mg,
            ranked.c.mg_per_kg,
            DoseVerification.id.is_not(None).label("verified"),
            *(alerts.c[f"alerts_{s}"] for s in ALERT_SEVERITIES),
            *(c for c in events.c if c.name != "session_id"),
        )
        .select_from(ts)
        .join(Patient, and_(Patient.id == ts.patient_id, Patient.clinic_id == clinic_id))
        .outerjoin(first, first.c.patient_id == ts.patient_id)
        .outerjoin(ranked, and_(ranked.c.session_id == ts.id, ranked.c.rank == 1))
        .outerjoin(DoseVerification, DoseVerification.order_id == ranked.c.id)
        .outerjoin(alerts, alerts.c.session_id == ts.id)
        .outerjoin(events, events.c.session_id == ts.id)
        .where(ts.clinic_id == clinic_id)
        .order_by(ts.patient_id, ts.scheduled_at, ts.id)
    )


# --- rows -------------------------------------------------------------------------------------


def _assessment_row(subjects: _Subjects, row: Row[Any]) -> list[str]:
    subject = subjects.get(row)
    patient, sex, band, shifted, day, zero = subjects.cells(subject, row.administered_at)
    answers = [str(a) for a in row.answers]
    if len(answers) > len(ITEM_COLUMNS):
        raise ValueError(f"{row.instrument}: {len(answers)} answers do not fit the item columns")
    return [
        patient,
        sex,
        band,
        row.instrument,
        shifted,
        day,
        zero,
        row.source,
        _yes(row.session_id is not None),
        subjects.session(row.session_id),
        str(row.total),
        _text(row.band),
        _yes(row.positive_screen),
        _yes(row.urgent),
        row.knowledge_version,
        str(len(answers)),
        *answers,
        *([""] * (len(ITEM_COLUMNS) - len(answers))),
    ]


def _session_row(subjects: _Subjects, row: Row[Any]) -> list[str]:
    subject = subjects.get(row)
    patient, sex, band, shifted, day, zero = subjects.cells(subject, row.scheduled_at)
    minutes = ""
    if row.dose_started_at is not None and row.dose_ended_at is not None:
        minutes = str(round((row.dose_ended_at - row.dose_started_at).total_seconds() / 60))
    pairs = [
        [int(getattr(row, f"ae_{i}_{j}") or 0) for j in range(len(AE_SEVERITIES))]
        for i in range(len(AE_CODES) + 1)
    ]
    joint = ";".join(
        f"{code}/{severity}={pairs[i][j]}"
        for i, code in enumerate((*AE_CODES, UNLISTED))
        for j, severity in enumerate(AE_SEVERITIES)
        if pairs[i][j]
    )
    return [
        subjects.session(row.session_id),
        patient,
        sex,
        band,
        row.protocol_id,
        _text(row.number),
        shifted,
        day,
        zero,
        row.status,
        _text(row.gate_band),
        _text(row.precheck_band),
        _yes(row.gate_overridden),
        _text(row.dose_mg),
        _text(row.mg_per_kg),
        _yes(row.verified),
        minutes,
        *(str(int(getattr(row, f"alerts_{s}") or 0)) for s in ALERT_SEVERITIES),
        *(str(sum(p[j] for p in pairs)) for j in range(len(AE_SEVERITIES))),
        str(int(row.ae_serious or 0)),
        *(str(sum(p)) for p in pairs),
        joint,
        _yes(row.discharge_allowed),
        _yes(row.signed),
        _yes(bool(row.signed and row.discharge_override)),
    ]


QUERIES = {ExportTable.ASSESSMENTS: _assessments_query, ExportTable.SESSIONS: _sessions_query}
ROWS = {ExportTable.ASSESSMENTS: _assessment_row, ExportTable.SESSIONS: _session_row}


# --- use-case ---------------------------------------------------------------------------------


def export_rows(
    db: Session, actor: Actor, table: ExportTable, *, secret: str
) -> Generator[list[str], None, None]:
    """The header, then one list of cells per row, read lazily. The permission is checked
    when the header is asked for, so a face takes the header before it starts answering.

    One audit event per export, with the number of rows handed out and whether the reader
    took them all (a download can be cut short)."""
    with audited(db, actor, "research.export") as note:
        require(actor, Permission.PATIENT_READ_DEIDENTIFIED)
        note.detail = {"table": table.value, "rows": 0, "complete": False}
        zone = db.scalar(select(Clinic.timezone).where(Clinic.id == actor.clinic_id))
        subjects = _Subjects(secret, actor.clinic_id, ZoneInfo(zone or "UTC"))
        to_cells = ROWS[table]
        result = None
        try:
            yield list(COLUMNS[table])
            result = db.execute(QUERIES[table](actor.clinic_id).execution_options(yield_per=BATCH))
            for row in result:
                note.detail["rows"] += 1
                yield to_cells(subjects, row)
        except GeneratorExit:
            return  # the reader stopped; the event records what it was given
        finally:
            if result is not None:
                result.close()
        note.detail["complete"] = True


def csv_chunks(
    rows: Iterator[list[str]], rows_per_chunk: int = BATCH
) -> Generator[str, None, None]:
    """CSV text for a streamed download: the header on its own first (so taking it runs the
    permission check), then ``rows_per_chunk`` rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    try:
        for n, row in enumerate(rows):
            writer.writerow(row)
            if n % rows_per_chunk == 0:  # the header (n == 0), then every full chunk
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue()
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def write_csv(rows: Iterable[list[str]], stream: TextIO) -> int:
    """Write the rows to an open text file (``newline=""``); returns the rows after the header."""
    writer = csv.writer(stream)
    count = -1
    try:
        for row in rows:
            writer.writerow(row)
            count += 1
    finally:
        # A failed write still ends the export (and records it) before the caller goes on.
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    return max(count, 0)
