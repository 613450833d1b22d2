"""Clinician UI: server-rendered pages, enhanced with HTMX; one module per screen."""

from fastapi import APIRouter, Depends

from ketacare.web.auth import ui_csrf
from ketacare.web.ui import account, admin, intake, interactions, patients, research, signin

router = APIRouter(dependencies=[Depends(ui_csrf)], include_in_schema=False)
for module in (signin, patients, intake, interactions, admin, research, account):
    router.include_router(module.router)
