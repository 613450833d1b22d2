"""Patients, their body measurements and medication lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from ketacare.app import patients as uc
from ketacare.web.api.responses import CHANGED, encoded
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(prefix="/patients", tags=["patients"])

PatientId = Annotated[int, Query(ge=1)]


@router.get("", response_model=uc.PatientPage, summary="List or search patients")
def list_patients(
    db: DbSession,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(max_length=100, description="Name words or MRN prefix")] = "",
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> Response:
    return encoded(uc.list_patients(db, principal.actor, q=q, cursor=cursor, limit=limit))


@router.post("", response_model=uc.PatientOut, status_code=status.HTTP_201_CREATED)
def create_patient(
    db: DbSession, principal: CurrentPrincipal, body: uc.PatientCreate
) -> uc.PatientOut:
    return uc.create_patient(db, principal.actor, body)


@router.get("/{patient_id}", response_model=uc.PatientChart, summary="The patient's chart")
def get_patient(db: DbSession, principal: CurrentPrincipal, patient_id: int) -> uc.PatientChart:
    return uc.get_chart(db, principal.actor, patient_id)


@router.put(
    "/{patient_id}", response_model=uc.PatientOut, responses={409: {"description": "Stale version"}}
)
def update_patient(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: uc.PatientUpdate
) -> uc.PatientOut:
    return uc.update_patient(db, principal.actor, patient_id, body)


@router.get("/{patient_id}/measurements", response_model=list[uc.MeasurementOut])
def list_measurements(
    db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> list[uc.MeasurementOut]:
    return uc.list_measurements(db, principal.actor, patient_id)


@router.post(
    "/{patient_id}/measurements",
    response_model=uc.MeasurementOut,
    status_code=status.HTTP_201_CREATED,
)
def add_measurement(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: uc.MeasurementCreate
) -> uc.MeasurementOut:
    return uc.add_measurement(db, principal.actor, patient_id, body)


@router.get("/{patient_id}/medications", response_model=list[uc.MedicationOut])
def list_medications(
    db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> list[uc.MedicationOut]:
    return uc.list_medications(db, principal.actor, patient_id)


@router.post(
    "/{patient_id}/medications",
    response_model=uc.MedicationOut,
    status_code=status.HTTP_201_CREATED,
)
def add_medication(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: uc.MedicationCreate
) -> uc.MedicationOut:
    return uc.add_medication(db, principal.actor, patient_id, body)


@router.patch(
    "/{patient_id}/medications/{medication_id}",
    response_model=uc.MedicationOut,
    responses=CHANGED,
)
def update_medication(
    db: DbSession,
    principal: CurrentPrincipal,
    patient_id: int,
    medication_id: int,
    body: uc.MedicationUpdate,
) -> uc.MedicationOut:
    return uc.update_medication(db, principal.actor, patient_id, medication_id, body)
