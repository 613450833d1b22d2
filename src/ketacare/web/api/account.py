"""The caller's own account and API tokens."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from ketacare.app import users as uc
from ketacare.store.types import utcnow
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(tags=["account"])


class Me(BaseModel):
    user_id: int | None
    username: str
    display_name: str
    role: str
    clinic_id: int
    clinic_name: str


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)


@router.get("/me", response_model=Me)
def me(principal: CurrentPrincipal) -> Me:
    a = principal.actor
    return Me(
        user_id=a.user_id,
        username=a.label,
        display_name=principal.display_name,
        role=a.role.value,
        clinic_id=a.clinic_id,
        clinic_name=principal.clinic_name,
    )


@router.get("/tokens", response_model=list[uc.TokenOut])
def list_tokens(db: DbSession, principal: CurrentPrincipal) -> list[uc.TokenOut]:
    return uc.list_api_tokens(db, principal.actor)


@router.post("/tokens", response_model=uc.TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(db: DbSession, principal: CurrentPrincipal, body: TokenRequest) -> uc.TokenCreated:
    return uc.create_api_token(db, principal.actor, body.name)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(db: DbSession, principal: CurrentPrincipal, token_id: int) -> None:
    uc.revoke_api_token(db, principal.actor, token_id, now=utcnow())
