"""Record ids in paths and queries must be numbers the database can hold.

A larger number names no record, but the database drivers refuse to bind it (SQLite raises
OverflowError; PostgreSQL's BIGINT is the same size), so it is refused here as invalid input.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from ketacare.web.auth import Principal, optional_principal

MAX_ID = 2**63 - 1  # SQLite INTEGER and PostgreSQL BIGINT
_WHOLE = re.compile(r"[+-]?[0-9]+")


def too_large(value: str) -> bool:
    """A whole number (ASCII digits, as the API parses ids) beyond what an id column holds."""
    text = value.strip()
    if not _WHOLE.fullmatch(text):
        return False
    digits = text.lstrip("+-").lstrip("0")
    return len(digits) > 19 or int(digits or "0") > MAX_ID


async def ids_in_range(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> None:
    """Refuse (422, naming the parameter) a ``*_id`` path or query value too large to be an id.
    Unauthenticated calls pass through so they are answered 401 first."""
    if principal is None:
        return
    for where, params in (("path", request.path_params), ("query", request.query_params)):
        for name, value in params.items():
            if name.endswith("_id") and isinstance(value, str) and too_large(value):
                raise RequestValidationError(
                    [
                        {
                            "loc": (where, name),
                            "msg": f"{name} must be at most {MAX_ID}: no record has a larger id.",
                            "type": "less_than_equal",
                        }
                    ]
                )
