"""Two-factor sign-in: RFC 6238 codes, the password step that opens no session on its own,
codes used once, throttled like passwords, turned on and off with the audit trail."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import PASSWORD, ClinicWorld, ui_login

from ketacare.app import totp
from ketacare.app import users as uc
from ketacare.app.errors import AuthenticationFailed, Forbidden, InvalidInput, NotFound, Throttled
from ketacare.app.permissions import Role
from ketacare.store.models import AuditEvent, User, UserSession

# RFC 6238 appendix B: the SHA-1 key "12345678901234567890", 8-digit codes.
RFC_KEY = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
LIMITS = {"max_failures": 5, "window": timedelta(minutes=15)}


@pytest.mark.parametrize(("unix", "code"), RFC_VECTORS)
def test_codes_match_the_rfc_6238_test_vectors(unix: int, code: str) -> None:
    assert totp.code_at(RFC_KEY, totp.step_of(unix), digits=8) == code
    assert totp.code_at(RFC_KEY, totp.step_of(unix)) == code[-6:]


@given(st.integers(min_value=2, max_value=10**9), st.text(max_size=12))
def test_only_the_current_codes_and_never_a_used_step_are_accepted(step: int, junk: str) -> None:
    now = step * 30 + 15
    assert totp.matching_step(RFC_KEY, totp.code_at(RFC_KEY, step), now, None) == step
    assert totp.matching_step(RFC_KEY, totp.code_at(RFC_KEY, step - 1), now, None) == step - 1
    assert totp.matching_step(RFC_KEY, totp.code_at(RFC_KEY, step), now, step) is None
    stale = totp.code_at(RFC_KEY, step - 2)
    if stale not in {totp.code_at(RFC_KEY, s) for s in (step - 1, step, step + 1)}:
        assert totp.matching_step(RFC_KEY, stale, now, None) is None
    if not re.fullmatch(r"[0-9 ]+", junk):
        assert totp.matching_step(RFC_KEY, junk, now, None) is None


def test_the_provisioning_uri_names_the_user_and_the_key() -> None:
    uri = totp.provisioning_uri("ABCDEF", "n.nurse")
    assert uri == (
        "otpauth://totp/KetaCare%3An.nurse?secret=ABCDEF&issuer=KetaCare&digits=6&period=30"
    )
    assert totp.grouped("ABCDEFGHIJ") == "ABCD EFGH IJ"


def _now() -> datetime:
    return datetime.now(UTC)


def _enable(db: Session, world: ClinicWorld, role: Role = Role.NURSE) -> tuple[User, str]:
    user = world.users[role]
    secret = totp.new_secret()
    with pytest.raises(InvalidInput) as wrong:
        uc.enable_totp(db, world.actor(role), secret, "000000", now=_now())
    assert wrong.value.field == "code"
    now = _now()
    uc.enable_totp(
        db, world.actor(role), secret, totp.code_at(secret, totp.step_of(now.timestamp())), now=now
    )
    return user, secret


def _sessions(db: Session, user: User) -> int:
    return db.scalar(select(func.count()).where(UserSession.user_id == user.id)) or 0


def test_the_password_alone_opens_no_session_and_a_code_is_used_once(
    db: Session, world_a: ClinicWorld
) -> None:
    user, secret = _enable(db, world_a)
    before = _sessions(db, user)
    with pytest.raises(uc.SecondFactorRequired) as needed:
        uc.sign_in(db, user.username, PASSWORD, address="10.0.0.1", now=_now(), **LIMITS)
    assert needed.value.user_id == user.id
    assert _sessions(db, user) == before
    # The code used to turn it on was for this step: it cannot sign in again.
    now = _now() + timedelta(seconds=30)
    code = totp.code_at(secret, totp.step_of(now.timestamp()))
    result = uc.sign_in_second_factor(db, user.id, code, address="10.0.0.1", now=now, **LIMITS)
    assert result.user.id == user.id and _sessions(db, user) == before + 1
    with pytest.raises(AuthenticationFailed):
        uc.sign_in_second_factor(db, user.id, code, address="10.0.0.1", now=now, **LIMITS)
    actions = db.scalars(
        select(AuditEvent.action + ":" + AuditEvent.outcome).where(AuditEvent.user_id == user.id)
    ).all()
    assert "auth.totp.enable:success" in actions
    assert "auth.sign_in:success" in actions and "auth.second_factor:denied" in actions


def test_wrong_codes_are_throttled_like_wrong_passwords(db: Session, world_a: ClinicWorld) -> None:
    user, secret = _enable(db, world_a)
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            uc.sign_in_second_factor(
                db, user.id, "123456", address="10.0.0.2", now=_now(), **LIMITS
            )
    now = _now() + timedelta(seconds=60)
    right = totp.code_at(secret, totp.step_of(now.timestamp()))
    with pytest.raises(Throttled):
        uc.sign_in_second_factor(db, user.id, right, address="10.0.0.2", now=now, **LIMITS)


def test_turning_it_off_needs_a_code_or_an_administrator(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    user, _ = _enable(db, world_a)
    with pytest.raises(InvalidInput):
        uc.disable_totp(db, world_a.actor(Role.NURSE), user.id, "000000", now=_now())
    with pytest.raises(Forbidden):
        uc.disable_totp(db, world_a.actor(Role.THERAPIST), user.id, None, now=_now())
    with pytest.raises(NotFound):
        uc.disable_totp(db, world_b.actor(Role.ADMIN), user.id, None, now=_now())
    uc.disable_totp(db, world_a.actor(Role.ADMIN), user.id, None, now=_now())
    db.expire_all()
    assert db.get(User, user.id).totp_secret is None  # type: ignore[union-attr]
    assert uc.sign_in(db, user.username, PASSWORD, address="10.0.0.3", now=_now(), **LIMITS)


def _csrf(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_the_browser_flow_sets_up_and_then_asks_for_the_code(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    nurse = world_a.users[Role.NURSE]
    csrf = ui_login(client, nurse.username)
    page = client.post("/account/totp/setup", data={"csrf_token": csrf})
    assert page.status_code == 200 and 'id="tf-key"' in page.text
    key = page.text.split('id="tf-key">', 1)[1].split("<", 1)[0].replace(" ", "")
    pending = page.text.split('name="pending" value="', 1)[1].split('"', 1)[0]
    wrong = client.post(
        "/account/totp/enable", data={"csrf_token": csrf, "pending": pending, "code": "000000"}
    )
    assert wrong.status_code == 422 and "does not match" in wrong.text
    code = totp.code_at(key, totp.step_of(_now().timestamp()))
    on = client.post(
        "/account/totp/enable", data={"csrf_token": csrf, "pending": pending, "code": code}
    )
    assert on.status_code == 303
    assert "On: signing in asks for a code" in client.get("/account").text
    client.post("/logout", data={"csrf_token": csrf})
    client.cookies.clear()

    login = client.get("/login")
    step1 = client.post(
        "/login",
        data={"username": nurse.username, "password": PASSWORD, "csrf_token": _csrf(login.text)},
    )
    assert step1.status_code == 200 and "Authentication code" in step1.text
    assert "kc_session" not in step1.headers.get("set-cookie", "")
    challenge = step1.text.split('name="challenge" value="', 1)[1].split('"', 1)[0]
    bad = client.post(
        "/login/code",
        data={"csrf_token": _csrf(login.text), "challenge": challenge + "x", "code": "1"},
    )
    assert bad.status_code == 401 and "expired" in bad.text
    later = _now() + timedelta(seconds=30)
    step2 = client.post(
        "/login/code",
        data={
            "csrf_token": _csrf(login.text),
            "challenge": challenge,
            "code": totp.code_at(key, totp.step_of(later.timestamp())),
            "next": "/patients",
        },
    )
    # The code of the next step is accepted (one step of clock drift).
    assert step2.status_code == 303, step2.text
    cookie = step2.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/patients").status_code == 200
