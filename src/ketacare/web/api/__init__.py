"""JSON API under /api/v1, one module per resource."""

from fastapi import APIRouter, Depends

from ketacare.web.api import account, audit, patients, research
from ketacare.web.auth import api_csrf

router = APIRouter(prefix="/api/v1", dependencies=[Depends(api_csrf)])
for module in (patients, audit, research, account):
    router.include_router(module.router)
