"""JSON API under /api/v1, one module per resource."""

from fastapi import APIRouter, Depends

from ketacare.web.api import (
    account,
    audit,
    clinic,
    courses,
    dashboard,
    fhir,
    fhir_import,
    intake,
    interactions,
    outcomes,
    patients,
    reports,
    research,
    sessions,
    therapy,
)
from ketacare.web.api.responses import ERRORS
from ketacare.web.auth import api_csrf

router = APIRouter(prefix="/api/v1", dependencies=[Depends(api_csrf)], responses=ERRORS)
for module in (patients, intake, sessions, interactions, audit, research, account):
    router.include_router(module.router)
router.include_router(intake.text_router)
router.include_router(therapy.router)
router.include_router(courses.router)
router.include_router(clinic.router)
router.include_router(outcomes.router)
router.include_router(reports.router)
router.include_router(dashboard.router)
router.include_router(fhir.router)
router.include_router(fhir_import.router)
