"""The permission table, role by role."""

from __future__ import annotations

import pytest

from ketacare.app.errors import Forbidden
from ketacare.app.permissions import ROLE_PERMISSIONS, Actor, Permission, Role, allowed, require

P = Permission
EXPECTED: dict[Role, set[Permission]] = {
    Role.ADMIN: {
        P.PATIENT_READ,
        P.PATIENT_WRITE,
        P.AUDIT_READ,
        P.USER_MANAGE,
        P.TOKEN_MANAGE_OWN,
        P.INTERACTIONS_CHECK,
        P.SELF_REPORT_INVITE,
        P.SETTINGS_MANAGE,
    },
    Role.PRESCRIBER: {
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
    },
    Role.NURSE: {
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
    },
    Role.THERAPIST: {
        P.PATIENT_READ,
        P.TOKEN_MANAGE_OWN,
        P.INTERACTIONS_CHECK,
        P.ASSESSMENT_WRITE,
        P.SELF_REPORT_INVITE,
        P.THERAPY_WRITE,
    },
    Role.RESEARCHER: {P.PATIENT_READ_DEIDENTIFIED, P.TOKEN_MANAGE_OWN, P.INTERACTIONS_CHECK},
    Role.SYSTEM: set(Permission),
}


def test_every_role_has_an_entry() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)


@pytest.mark.parametrize(
    ("role", "permission"), [(r, p) for r in Role for p in Permission], ids=str
)
def test_the_table_grants_exactly_what_the_matrix_says(role: Role, permission: Permission) -> None:
    assert allowed(role, permission) is (permission in EXPECTED[role])


def test_only_prescribers_sign_eligibility() -> None:
    assert {r for r in Role if allowed(r, P.ELIGIBILITY_SIGN)} == {Role.PRESCRIBER, Role.SYSTEM}


def test_researchers_never_read_identified_data() -> None:
    assert not allowed(Role.RESEARCHER, P.PATIENT_READ)
    assert not allowed(Role.RESEARCHER, P.PATIENT_WRITE)


def test_only_staff_who_treat_record_measurements_and_medicines() -> None:
    writers = {r for r in Role if allowed(r, P.MEDICATION_WRITE)}
    assert writers == {Role.PRESCRIBER, Role.NURSE, Role.SYSTEM}


def test_require_refuses_with_a_message_naming_role_and_permission() -> None:
    actor = Actor(clinic_id=1, role=Role.THERAPIST, label="t")
    with pytest.raises(Forbidden, match=r"therapist.*medication\.write"):
        require(actor, P.MEDICATION_WRITE)
    require(actor, P.PATIENT_READ)
