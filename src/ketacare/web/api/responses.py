"""Error answers every JSON route can give, declared once so the OpenAPI schema lists them."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel


class ErrorOut(BaseModel):
    """A refusal written for the person calling: what is wrong and what to do."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body could not be read: send UTF-8 JSON"},
    401: {"model": ErrorOut, "description": "Sign in, or send an API token"},
    403: {"model": ErrorOut, "description": "Your role may not do this"},
    404: {"model": ErrorOut, "description": "No such record in your clinic"},
}

# Routes whose record may be changed by someone else at the same moment.
CHANGED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "Changed by someone else: reload and try again"}
}


def encoded(value: BaseModel) -> Response:
    """``value`` as the JSON answer, encoded once here. For the routes called most (a device's
    vitals, the patient list, the interaction screen): a route returning the model itself has
    FastAPI validate it again against ``response_model`` in one more trip through the thread
    pool. The route still declares ``response_model`` for the OpenAPI document, and returns
    exactly that model (nothing more is sent than the schema says)."""
    return Response(value.model_dump_json(), media_type="application/json")
