"""Errors a use-case raises; each face turns them into its own answer (HTTP status, exit code)."""

from __future__ import annotations


class DomainError(Exception):
    """Base: a message written for a clinician, and the audit outcome it records."""

    outcome = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The record does not exist *for this actor* (other clinics' rows are not found, not
    forbidden, so their existence is not revealed)."""

    outcome = "not_found"


class Forbidden(DomainError):
    outcome = "denied"


class InvalidInput(DomainError):
    """Input that parsed but breaks a rule; ``field`` names the offending field."""

    outcome = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Conflict(DomainError):
    """Someone else changed the record since it was read: reload and apply the change again."""

    outcome = "conflict"


class AuthenticationFailed(DomainError):
    outcome = "denied"


class Throttled(DomainError):
    outcome = "throttled"
