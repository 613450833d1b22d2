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
from ketacare.web.ids import ids_in_range

router = APIRouter(prefix="/api/v1", dependencies=[Depends(api_csrf)], responses=ERRORS)
# Served apart, with its checks made in the route itself (see sessions.device_router).
device_router = sessions.device_router
# Ids too large for the database are invalid input. The FHIR read routes parse their own ids
# and answer with OperationOutcomes.
IDS = [Depends(ids_in_range)]
for module in (patients, intake, sessions, interactions, audit, research, account):
    router.include_router(module.router, dependencies=IDS)
router.include_router(intake.text_router)
router.include_router(therapy.router, dependencies=IDS)
router.include_router(courses.router, dependencies=IDS)
router.include_router(clinic.router, dependencies=IDS)
router.include_router(outcomes.router, dependencies=IDS)
router.include_router(reports.router, dependencies=IDS)
router.include_router(dashboard.router, dependencies=IDS)
router.include_router(fhir.router)
router.include_router(fhir_import.router, dependencies=IDS)
