"""Roles and what each may do: the one table that decides. Use-cases call :func:`require`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ketacare.app.errors import Forbidden


class Role(StrEnum):
    ADMIN = "admin"
    PRESCRIBER = "prescriber"
    NURSE = "nurse"
    THERAPIST = "therapist"
    RESEARCHER = "researcher"
    # The local operator at the command line (has the database already): all permissions.
    SYSTEM = "system"


STAFF_ROLES = (Role.ADMIN, Role.PRESCRIBER, Role.NURSE, Role.THERAPIST, Role.RESEARCHER)


class Permission(StrEnum):
    PATIENT_READ = "patient.read"
    PATIENT_WRITE = "patient.write"
    PATIENT_READ_DEIDENTIFIED = "patient.read_deidentified"
    MEASUREMENT_WRITE = "measurement.write"
    MEDICATION_WRITE = "medication.write"
    AUDIT_READ = "audit.read"
    USER_MANAGE = "user.manage"
    TOKEN_MANAGE_OWN = "token.manage_own"  # noqa: S105 (a permission name)  # nosec B105
    INTAKE_WRITE = "intake.write"
    ELIGIBILITY_SIGN = "eligibility.sign"
    ASSESSMENT_WRITE = "assessment.write"
    CONSENT_WRITE = "consent.write"
    SELF_REPORT_INVITE = "self_report.invite"
    SESSION_WRITE = "session.write"
    # Proceeding past a blood-pressure hold is the prescriber's call.
    SESSION_OVERRIDE = "session.override"
    # Planning a course and re-planning it after a missed session.
    COURSE_WRITE = "course.write"
    # Ordering a dose is the prescriber's; a second person (nurse or prescriber) verifies it.
    DOSE_ORDER = "dose.order"
    DOSE_VERIFY = "dose.verify"
    # Signing a session off seals it; later changes are amendments.
    SESSION_SIGN = "session.sign"
    # Psychotherapy (CBT) sessions and their notes.
    THERAPY_WRITE = "therapy.write"
    # Calendar and overrides of the cited clinical defaults.
    SETTINGS_MANAGE = "settings.manage"
    # Screening a typed-in list touches no patient data.
    INTERACTIONS_CHECK = "interactions.check"


P = Permission

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Front desk and clinic management: registers patients, manages staff, reviews the audit
    # trail; does not record clinical measurements or medicines.
    Role.ADMIN: frozenset(
        {
            P.PATIENT_READ,
            P.PATIENT_WRITE,
            P.AUDIT_READ,
            P.USER_MANAGE,
            P.TOKEN_MANAGE_OWN,
            P.INTERACTIONS_CHECK,
            P.SELF_REPORT_INVITE,
            P.SETTINGS_MANAGE,
        }
    ),
    Role.PRESCRIBER: frozenset(
        {
            P.PATIENT_READ,
            P.PATIENT_WRITE,
            P.MEASUREMENT_WRITE,
            P.MEDICATION_WRITE,
            P.TOKEN_MANAGE_OWN,
            P.INTERACTIONS_CHECK,
            P.INTAKE_WRITE,
            P.ELIGIBILITY_SIGN,
            P.ASSESSMENT_WRITE,
            P.CONSENT_WRITE,
            P.SELF_REPORT_INVITE,
            P.SESSION_WRITE,
            P.SESSION_OVERRIDE,
            P.COURSE_WRITE,
            P.DOSE_ORDER,
            P.DOSE_VERIFY,
            P.SESSION_SIGN,
            P.THERAPY_WRITE,
        }
    ),
    Role.NURSE: frozenset(
        {
            P.PATIENT_READ,
            P.PATIENT_WRITE,
            P.MEASUREMENT_WRITE,
            P.MEDICATION_WRITE,
            P.TOKEN_MANAGE_OWN,
            P.INTERACTIONS_CHECK,
            P.INTAKE_WRITE,
            P.ASSESSMENT_WRITE,
            P.CONSENT_WRITE,
            P.SELF_REPORT_INVITE,
            P.SESSION_WRITE,
            P.COURSE_WRITE,
            P.DOSE_VERIFY,
            P.SESSION_SIGN,
        }
    ),
    # Therapists hold the CBT sessions, administer rating scales and send questionnaires.
    Role.THERAPIST: frozenset(
        {
            P.PATIENT_READ,
            P.TOKEN_MANAGE_OWN,
            P.INTERACTIONS_CHECK,
            P.ASSESSMENT_WRITE,
            P.SELF_REPORT_INVITE,
            P.THERAPY_WRITE,
        }
    ),
    # Researchers never see identifying data.
    Role.RESEARCHER: frozenset(
        {P.PATIENT_READ_DEIDENTIFIED, P.TOKEN_MANAGE_OWN, P.INTERACTIONS_CHECK}
    ),
    Role.SYSTEM: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a signed-in user, or the local operator at the command line."""

    clinic_id: int
    role: Role
    label: str
    user_id: int | None = None

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


def allowed(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def require(actor: Actor, permission: Permission) -> None:
    if not actor.can(permission):
        raise Forbidden(f"Your role ({actor.role}) does not allow this ({permission}).")
