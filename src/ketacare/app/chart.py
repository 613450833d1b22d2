"""The chart page: the patient's record and programme panel, read in one audited transaction
(each fact read once: the eligibility view reuses the chart's weight and medicines)."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ketacare.app import intake, patients
from ketacare.app.audit import audited
from ketacare.app.clinic_settings import effective_settings
from ketacare.app.interactions import CURRENT
from ketacare.app.patients import MedicationStatus, PatientChart, _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.clinical.interactions import StoppedMedication, max_washout_days
from ketacare.store.types import utcnow


@dataclass(frozen=True)
class ChartPage:
    chart: PatientChart
    programme: intake.ProgrammeSummary


def chart_page(db: Session, actor: Actor, patient_id: int) -> ChartPage:
    with audited(db, actor, "patient.view", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        chart = patients.chart_of(db, patient)
        listed = sorted(chart.medications, key=lambda m: m.id)
        settings = effective_settings(db, patient.clinic_id)  # the clinic, read once
        today = utcnow().astimezone(ZoneInfo(settings.timezone)).date()
        known = intake.Known(
            intake=intake.latest_intake(db, patient.id),
            weight_kg=chart.latest_weight.weight_kg if chart.latest_weight else None,
            medications=[m.name for m in listed if m.status in CURRENT],
            # Stopped medicines that may still be in a washout (the screen decides which are).
            stopped=[
                StoppedMedication(m.name, m.stop_date)
                for m in listed
                if m.status == MedicationStatus.STOPPED
                and (m.stop_date is None or (today - m.stop_date).days <= max_washout_days())
            ],
            today=today,
            settings=settings.eligibility,
        )
        return ChartPage(chart, intake.programme_of(db, patient, known))
