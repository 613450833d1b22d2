"""Clinician UI: server-rendered pages, enhanced with HTMX; one module per screen."""

from fastapi import APIRouter, Depends

from ketacare.web.auth import ui_csrf
from ketacare.web.ids import ids_in_range
from ketacare.web.ui import (
    account,
    admin,
    courses,
    dashboard,
    evidence,
    intake,
    interactions,
    outcomes,
    patients,
    reports,
    research,
    sessions,
    settings,
    signin,
    therapy,
)

router = APIRouter(dependencies=[Depends(ui_csrf), Depends(ids_in_range)], include_in_schema=False)
for module in (signin, patients, intake, interactions, admin, research, account):
    router.include_router(module.router)
router.include_router(courses.router)
router.include_router(settings.router)
router.include_router(therapy.router)
router.include_router(outcomes.router)
router.include_router(sessions.list_router)
router.include_router(sessions.router)
router.include_router(reports.router)
router.include_router(evidence.router)
router.include_router(dashboard.router)
