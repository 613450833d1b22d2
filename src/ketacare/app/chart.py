"""The chart page: the patient's record and programme panel, read in one audited transaction
(each fact read once: the eligibility view reuses the chart's weight and medicines)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ketacare.app import intake, patients
from ketacare.app.audit import audited
from ketacare.app.interactions import CURRENT
from ketacare.app.patients import PatientChart, _scoped_patient
from ketacare.app.permissions import Actor, Permission, require


@dataclass(frozen=True)
class ChartPage:
    chart: PatientChart
    programme: intake.ProgrammeSummary


def chart_page(db: Session, actor: Actor, patient_id: int) -> ChartPage:
    with audited(db, actor, "patient.view", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        chart = patients.chart_of(db, patient)
        known = intake.Known(
            intake=intake.latest_intake(db, patient.id),
            weight_kg=chart.latest_weight.weight_kg if chart.latest_weight else None,
            medications=[
                m.name for m in sorted(chart.medications, key=lambda m: m.id) if m.status in CURRENT
            ],
        )
        return ChartPage(chart, intake.programme_of(db, patient, known))
