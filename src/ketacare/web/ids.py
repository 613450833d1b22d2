"""Record ids in paths and queries must be numbers the database can hold.

Ids are INTEGER columns: PostgreSQL's hold up to 2^31-1 (a larger value is "out of range"),
SQLite's driver refuses anything past 2^63-1. A larger number names no record in either, so it
is refused here as invalid input instead of reaching the database.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from ketacare.web.auth import Principal, optional_principal

MAX_ID = 2**31 - 1  # PostgreSQL INTEGER, the smaller of the two
_WHOLE = re.compile(r"[+-]?[0-9]+")


def too_large(value: str) -> bool:
    """A whole number (ASCII digits, as the API parses ids) beyond what an id column holds."""
    text = value.strip()
    if not _WHOLE.fullmatch(text):
        return False
    digits = text.lstrip("+-").lstrip("0")
    return len(digits) > 10 or int(digits or "0") > MAX_ID


async def ids_in_range(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> None:
    """Refuse (422, naming the parameter) a ``*_id`` path or query value too large to be an id.
    Unauthenticated calls pass through so they are answered 401 first."""
    if principal is not None:
        check_ids(request)


def check_ids(request: Request) -> None:
    """Refuse (422, naming the parameter) a ``*_id`` path or query value too large to be an id."""
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
