"""Keyset page cursors: where the previous page ended, opaque to the caller.

A keyset page costs the same on the thousandth page as on the first (no OFFSET), and a row
added or removed while someone pages does not shift the rows that follow."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from ketacare.app.errors import InvalidInput


def encode_cursor(key: str, row_id: int) -> str:
    """The last row of a page: its sort key and its id (the tie-breaker)."""
    return base64.urlsafe_b64encode(f"{row_id}|{key}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        row_id, key = raw.split("|", 1)  # the id first: a key may hold the separator
        return key, int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _not_a_cursor() from None


def _not_a_cursor() -> InvalidInput:
    return InvalidInput("cursor", "The page cursor is not valid; start from the first page.")


def encode_time_cursor(at: datetime, row_id: int) -> str:
    return encode_cursor(at.isoformat(), row_id)


def decode_time_cursor(cursor: str) -> tuple[datetime, int]:
    at, row_id = decode_cursor(cursor)
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        raise _not_a_cursor() from None
    if parsed.tzinfo is None:
        raise _not_a_cursor()
    return parsed, row_id


def after_time_cursor(
    cursor: str, at_column: InstrumentedAttribute[datetime], id_column: InstrumentedAttribute[int]
) -> ColumnElement[bool]:
    """Rows after the cursor in (time, id) order."""
    at, last_id = decode_time_cursor(cursor)
    return or_(at_column > at, and_(at_column == at, id_column > last_id))
