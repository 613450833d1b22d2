"""The server's access log, without what a URL can carry of a patient.

Uvicorn logs each request's path with its query string. A query can hold a patient's name (the
patient search) and a questionnaire link's path is the patient's credential, so both are cut
from the line; method, path, status and timing stay for operations. Who read which record is in
the audit trail, not here.
"""

from __future__ import annotations

import logging
import re

# /r/<token>: the self-report link, itself the credential.
_LINK = re.compile(r"^/r/[^/?]+")


def redact(path: str) -> str:
    """``path`` without its query string (shown as ``?…``) or a questionnaire link's token."""
    bare, _, query = path.partition("?")
    return _LINK.sub("/r/…", bare) + ("?…" if query else "")


class RedactPaths(logging.Filter):
    """Rewrites uvicorn's access record: its arguments are (client, method, path, version,
    status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact(args[2]), args[3], args[4])
        return True


def install() -> None:
    """Redact every access line this process logs (once, however often it is called)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactPaths) for f in logger.filters):
        logger.addFilter(RedactPaths())
