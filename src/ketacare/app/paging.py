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


def encode_time_cursor(at: datetime, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{row_id}|{at.isoformat()}".encode()).decode()


def decode_time_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        row_id, at = raw.split("|", 1)
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError(at)
        return parsed, int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "cursor", "The page cursor is not valid; start from the first page."
        ) from None


def after_time_cursor(
    cursor: str, at_column: InstrumentedAttribute[datetime], id_column: InstrumentedAttribute[int]
) -> ColumnElement[bool]:
    """Rows after the cursor in (time, id) order."""
    at, last_id = decode_time_cursor(cursor)
    return or_(at_column > at, and_(at_column == at, id_column > last_id))
