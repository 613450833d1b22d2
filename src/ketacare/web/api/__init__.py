"""JSON API under /api/v1, one module per resource."""

from fastapi import APIRouter, Depends

from ketacare.web.api import (
    account,
    audit,
    intake,
    interactions,
    patients,
    research,
    sessions,
)
from ketacare.web.auth import api_csrf

router = APIRouter(prefix="/api/v1", dependencies=[Depends(api_csrf)])
for module in (patients, intake, sessions, interactions, audit, research, account):
    router.include_router(module.router)
router.include_router(intake.text_router)
