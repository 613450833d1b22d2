"""Time-based one-time passwords (RFC 6238, the codes of authenticator apps): pure functions.

HMAC-SHA1, 6 digits, 30-second steps: the parameters every common authenticator app assumes.
A code is accepted one step early or late (clock drift between phone and server), and never for
a step at or before the last one accepted (RFC 6238 section 5.2: a code is used once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

DIGITS = 6
STEP_SECONDS = 30
DRIFT_STEPS = 1
ISSUER = "KetaCare"


def new_secret() -> str:
    """A random 160-bit key, base32 as authenticator apps take it (RFC 4226 recommends 160)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def code_at(secret: str, step: int, digits: int = DIGITS) -> str:
    """The code of one time step (RFC 4226 HOTP with the step as counter)."""
    digest = hmac.new(_key(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def step_of(unix_seconds: float) -> int:
    return int(unix_seconds // STEP_SECONDS)


def matching_step(secret: str, code: str, unix_seconds: float, last_step: int | None) -> int | None:
    """The step a code belongs to when it is valid now and not used before; else None."""
    code = code.replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = step_of(unix_seconds)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(code_at(secret, step), code):
            return step
    return None


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    """The otpauth:// address an authenticator app reads (as a QR code or pasted)."""
    label = quote(f"{issuer}:{username}")
    query = urlencode(
        {"secret": secret, "issuer": issuer, "digits": DIGITS, "period": STEP_SECONDS}
    )
    return f"otpauth://totp/{label}?{query}"


def grouped(secret: str) -> str:
    """The key in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
