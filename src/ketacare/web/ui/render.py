"""Rendering helpers shared by the UI screens."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from ketacare.app.permissions import Permission
from ketacare.web.auth import Principal

M = TypeVar("M", bound=BaseModel)


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    templates = request.app.state.web.templates

    def can(permission: str) -> bool:
        return principal is not None and principal.actor.can(Permission(permission))

    return templates.TemplateResponse(
        request,
        template,
        {"principal": principal, "can": can, "tz": principal.tz if principal else None, **context},
        status_code=status_code,
    )


def form_text(form: FormData, name: str) -> str | None:
    """A submitted text field, stripped; None when absent or blank."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_form(model: type[M], form: FormData, **extra: Any) -> tuple[M | None, dict[str, str]]:
    """Validate a submitted form with the same model the API uses; errors keyed by field."""
    raw: dict[str, Any] = {
        k: v for k, v in form.items() if k in model.model_fields and isinstance(v, str)
    }
    raw.update(extra)
    try:
        return model.model_validate(raw), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "form"
            msg = err["msg"].removeprefix("Value error, ")
            errors.setdefault(field, msg)
        return None, errors
