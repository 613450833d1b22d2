"""Accounts, sign-in throttling, idle sessions, API tokens, the audit listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.conftest import PASSWORD, ClinicWorld

from ketacare.app import audit, users
from ketacare.app.errors import AuthenticationFailed, Forbidden, InvalidInput, NotFound, Throttled
from ketacare.app.permissions import Role
from ketacare.store.models import AuditEvent, UserSession

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def sign_in(
    db: Session,
    username: str,
    password: str = PASSWORD,
    *,
    address: str = "10.0.0.1",
    now: datetime = NOW,
) -> users.SignIn:
    return users.sign_in(
        db, username, password, address=address, now=now, max_failures=5, window=WINDOW
    )


def test_a_correct_password_opens_a_session_stored_only_as_a_hash(
    db: Session, world_a: ClinicWorld
) -> None:
    result = sign_in(db, "A-Nurse")
    assert result.user.username == "a-nurse"
    stored = db.scalars(select(UserSession.token_hash)).all()
    assert len(stored) == 1
    assert result.session_token not in stored[0]


def test_a_wrong_password_and_an_unknown_user_fail_the_same_way(
    db: Session, world_a: ClinicWorld
) -> None:
    with pytest.raises(AuthenticationFailed) as first:
        sign_in(db, "a-nurse", "wrong-password-123")
    with pytest.raises(AuthenticationFailed) as second:
        sign_in(db, "nobody", "wrong-password-123")
    assert first.value.message == second.value.message


def test_five_failures_throttle_even_the_right_password_until_the_window_passes(
    db: Session, world_a: ClinicWorld
) -> None:
    for i in range(5):
        with pytest.raises(AuthenticationFailed):
            sign_in(db, "a-nurse", f"guess-{i}-xxxxxxx", now=NOW + timedelta(minutes=i))
    with pytest.raises(Throttled):
        sign_in(db, "a-nurse", now=NOW + timedelta(minutes=5))
    assert sign_in(db, "a-nurse", now=NOW + timedelta(minutes=4 + 16)).user.username == "a-nurse"


def test_failures_from_one_address_throttle_every_username_from_it(
    db: Session, world_a: ClinicWorld
) -> None:
    for i in range(5):
        with pytest.raises(AuthenticationFailed):
            sign_in(db, f"user{i}", "nope-nope-nope", address="203.0.113.9")
    with pytest.raises(Throttled):
        sign_in(db, "a-admin", address="203.0.113.9")
    assert sign_in(db, "a-admin", address="198.51.100.1").user.username == "a-admin"


def test_a_session_expires_after_the_idle_time_and_slides_while_used(
    db: Session, world_a: ClinicWorld
) -> None:
    token = sign_in(db, "a-nurse").session_token
    idle = timedelta(minutes=30)
    assert users.resolve_session(db, token, now=NOW + timedelta(minutes=29), idle=idle) is not None
    assert users.resolve_session(db, token, now=NOW + timedelta(minutes=58), idle=idle) is not None
    assert users.resolve_session(db, token, now=NOW + timedelta(minutes=89), idle=idle) is None
    assert users.resolve_session(db, token, now=NOW + timedelta(minutes=90), idle=idle) is None


def test_signing_out_ends_the_session(db: Session, world_a: ClinicWorld) -> None:
    result = sign_in(db, "a-nurse")
    resolved = users.resolve_session(db, result.session_token, now=NOW, idle=WINDOW)
    assert resolved is not None
    users.sign_out(db, users.actor_for(result.user), resolved.session_id)
    assert users.resolve_session(db, result.session_token, now=NOW, idle=WINDOW) is None


def test_a_deactivated_user_cannot_sign_in(db: Session, world_a: ClinicWorld) -> None:
    world_a.users[Role.NURSE].active = False
    db.commit()
    with pytest.raises(AuthenticationFailed):
        sign_in(db, "a-nurse")


def test_api_tokens_resolve_until_revoked(db: Session, world_a: ClinicWorld) -> None:
    actor = world_a.actor(Role.NURSE)
    created = users.create_api_token(db, actor, "pump gateway")
    assert created.token.startswith("kc_")
    assert users.resolve_api_token(db, created.token, now=NOW).user_id == actor.user_id
    assert users.resolve_api_token(db, created.token + "x", now=NOW) is None
    users.revoke_api_token(db, actor, created.id, now=NOW)
    assert users.resolve_api_token(db, created.token, now=NOW) is None


def test_a_user_cannot_revoke_someone_elses_token(db: Session, world_a: ClinicWorld) -> None:
    created = users.create_api_token(db, world_a.actor(Role.NURSE), "mine")
    with pytest.raises(NotFound):
        users.revoke_api_token(db, world_a.actor(Role.PRESCRIBER), created.id, now=NOW)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-1", "at least 12"),
        ("zz-a-nurse-zz-99", "username"),
        ("aaaaaaaaaaaaaaa", "different"),
    ],
)
def test_the_password_policy(password: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as err:
        users.check_password_policy(password, "a-nurse", 12)
    assert err.value.field == "password"


def test_only_admins_add_users_and_the_new_user_joins_the_admins_clinic(
    db: Session, world_a: ClinicWorld
) -> None:
    data = users.UserCreate(
        username="New.Nurse", display_name="New", role=Role.NURSE, password="a-long-passphrase"
    )
    with pytest.raises(Forbidden):
        users.create_user(db, world_a.actor(Role.NURSE), data, min_password_length=12)
    out = users.create_user(db, world_a.actor(Role.ADMIN), data, min_password_length=12)
    assert (out.username, out.clinic_id, out.role) == ("new.nurse", world_a.clinic.id, "nurse")
    assert sign_in(db, "new.nurse", "a-long-passphrase").user.id == out.id


def test_the_audit_listing_is_admin_only_and_clinic_scoped(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    sign_in(db, "a-nurse")
    sign_in(db, "b-nurse")
    with pytest.raises(Forbidden):
        audit.list_events(db, world_a.actor(Role.NURSE), audit.AuditFilter())
    page = audit.list_events(
        db, world_a.actor(Role.ADMIN), audit.AuditFilter(action="auth.sign_in")
    )
    assert [e.actor for e in page.items] == ["a-nurse"]
    denied = audit.list_events(db, world_a.actor(Role.ADMIN), audit.AuditFilter(outcome="denied"))
    assert [e.action for e in denied.items] == ["audit.list"]


def test_the_audit_listing_pages_newest_first(db: Session, world_a: ClinicWorld) -> None:
    for _ in range(7):
        sign_in(db, "a-therapist")
    admin = world_a.actor(Role.ADMIN)
    first = audit.list_events(db, admin, audit.AuditFilter(action="auth.sign_in", limit=5))
    second = audit.list_events(
        db, admin, audit.AuditFilter(action="auth.sign_in", limit=5, before_id=first.next_before_id)
    )
    ids = [e.id for e in first.items + second.items]
    assert len(ids) == 7 and ids == sorted(ids, reverse=True)
    assert second.next_before_id is None
    assert (
        db.scalar(select(AuditEvent.id).where(AuditEvent.action == "audit.list").limit(1))
        is not None
    )
