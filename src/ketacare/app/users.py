"""Staff accounts, sign-in with throttling, browser sessions and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from ketacare.app import audit, totp
from ketacare.app.errors import AuthenticationFailed, InvalidInput, NotFound, Throttled
from ketacare.app.permissions import Actor, Permission, Role, require
from ketacare.store.models import ApiToken, Clinic, LoginFailure, User, UserSession

_hasher = PasswordHasher()
# Verifying against this keeps a wrong username as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TOKEN_PREFIX = "kc_"  # noqa: S105 (a public prefix)  # nosec B105


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_password_policy(password: str, username: str, min_length: int) -> None:
    if len(password) < min_length:
        raise InvalidInput("password", f"The password must have at least {min_length} characters.")
    if username and username.lower() in password.lower():
        raise InvalidInput("password", "The password must not contain the username.")
    if len(set(password)) < 5:
        raise InvalidInput("password", "The password must use at least 5 different characters.")


def actor_for(user: User) -> Actor:
    return Actor(
        clinic_id=user.clinic_id, role=Role(user.role), label=user.username, user_id=user.id
    )


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str = Field(min_length=2, max_length=64)
    display_name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str = Field(repr=False)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    clinic_id: int
    username: str
    display_name: str
    role: str
    active: bool


def create_user(
    db: Session, actor: Actor, data: UserCreate, *, min_password_length: int
) -> UserOut:
    with audit.audited(db, actor, "user.create") as note:
        require(actor, Permission.USER_MANAGE)
        username = data.username.lower()
        if not USERNAME_RE.match(username):
            raise InvalidInput(
                "username", "Use 2-64 lower-case letters, digits, dots, dashes or underscores."
            )
        if data.role == Role.SYSTEM:
            raise InvalidInput("role", "The system role is reserved for the command line.")
        check_password_policy(data.password, username, min_password_length)
        if db.scalar(select(User.id).where(User.username == username)) is not None:
            raise InvalidInput("username", f"The username {username!r} is taken.")
        user = User(
            clinic_id=actor.clinic_id,
            username=username,
            display_name=data.display_name,
            role=data.role.value,
            password_hash=hash_password(data.password),
        )
        db.add(user)
        db.flush()
        note.detail = {"user_id": user.id, "username": username, "role": user.role}
        return UserOut.model_validate(user)


@dataclass(frozen=True)
class SignIn:
    user: User
    session_token: str
    csrf_token: str


def _recent_failures(db: Session, username: str, address: str, since: datetime) -> int:
    return (
        db.scalar(
            select(func.count(LoginFailure.id)).where(
                LoginFailure.at >= since,
                or_(LoginFailure.username == username, LoginFailure.address == address),
            )
        )
        or 0
    )


class SecondFactorRequired(Exception):
    """The password was right and the account uses two-factor sign-in: a code is needed next.
    No session is open yet."""

    def __init__(self, user_id: int) -> None:
        super().__init__("An authentication code is needed.")
        self.user_id = user_id


def _throttle(
    db: Session, username: str, address: str, now: datetime, max_failures: int, window: timedelta
) -> None:
    if _recent_failures(db, username, address, now - window) >= max_failures:
        db.rollback()
        raise Throttled(
            "Too many failed sign-in attempts. Wait "
            f"{int(window.total_seconds() // 60)} minutes, or ask an administrator."
        )


def _fail(
    db: Session,
    username: str,
    address: str,
    now: datetime,
    user: User | None,
    message: str,
    action: str = "auth.sign_in",
) -> None:
    db.add(LoginFailure(username=username[:64], address=address[:64], at=now))
    if user is not None:
        db.add(audit.event(actor_for(user), action, "denied", audit.AuditNote()))
    db.commit()
    raise AuthenticationFailed(message)


def _open_session(db: Session, user: User, now: datetime, detail: dict[str, Any]) -> SignIn:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    db.add(
        UserSession(
            user_id=user.id,
            token_hash=_sha256(token),
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
        )
    )
    db.execute(delete(LoginFailure).where(LoginFailure.username == user.username))
    db.add(audit.event(actor_for(user), "auth.sign_in", "success", audit.AuditNote(detail=detail)))
    db.commit()
    return SignIn(user=user, session_token=token, csrf_token=csrf)


def sign_in(
    db: Session,
    username: str,
    password: str,
    *,
    address: str,
    now: datetime,
    max_failures: int,
    window: timedelta,
) -> SignIn:
    """Check a password and open a session. Failures are counted per username and per address;
    past the limit every attempt is refused (even a correct one) until the window has passed.
    An account with two-factor sign-in raises ``SecondFactorRequired`` instead of opening a
    session: ``sign_in_second_factor`` finishes it."""
    username = username.strip().lower()
    _throttle(db, username, address, now, max_failures, window)
    user = db.scalar(select(User).where(User.username == username))
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.active:
        _fail(db, username, address, now, user, "Unknown username or wrong password.")
    assert user is not None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if user.totp_secret:
        db.commit()
        raise SecondFactorRequired(user.id)
    return _open_session(db, user, now, {})


def sign_in_second_factor(
    db: Session,
    user_id: int,
    code: str,
    *,
    address: str,
    now: datetime,
    max_failures: int,
    window: timedelta,
) -> SignIn:
    """The second step: a code from the user's authenticator app, once per time step. Wrong
    codes count as failed sign-ins, throttled like wrong passwords."""
    user = db.get(User, user_id)
    if user is None or not user.active or not user.totp_secret:
        raise AuthenticationFailed("The sign-in has expired; start again with your password.")
    _throttle(db, user.username, address, now, max_failures, window)
    step = totp.matching_step(user.totp_secret, code, now.timestamp(), user.totp_last_step)
    if step is None:
        _fail(
            db,
            user.username,
            address,
            now,
            user,
            "Wrong or already used code: enter the code your authenticator app shows now.",
            "auth.second_factor",
        )
    user.totp_last_step = step
    return _open_session(db, user, now, {"second_factor": "totp"})


def current_user(db: Session, actor: Actor) -> User:
    user = db.get(User, actor.user_id) if actor.user_id else None
    if user is None:
        raise NotFound("No such user.")
    return user


def totp_enabled(db: Session, actor: Actor) -> bool:
    if actor.user_id is None:
        return False
    return db.scalar(select(User.totp_secret).where(User.id == actor.user_id)) is not None


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    grouped: str
    uri: str

    @classmethod
    def of(cls, secret: str, username: str) -> TotpSetup:
        return cls(secret, totp.grouped(secret), totp.provisioning_uri(secret, username))


def totp_setup(user: User) -> TotpSetup:
    """A new key to show the user; nothing is stored until a code from it is confirmed."""
    return TotpSetup.of(totp.new_secret(), user.username)


def enable_totp(db: Session, actor: Actor, secret: str, code: str, *, now: datetime) -> None:
    """Turn two-factor sign-in on, once the user shows a valid code from the new key."""
    with audit.audited(db, actor, "auth.totp.enable") as note:
        user = current_user(db, actor)
        try:
            step = totp.matching_step(secret, code, now.timestamp(), None)
        except ValueError:
            raise InvalidInput("secret", "The key is damaged; start the setup again.") from None
        if step is None:
            raise InvalidInput(
                "code", "That code does not match: enter the 6 digits your app shows now."
            )
        user.totp_secret = secret
        user.totp_last_step = step
        note.detail = {"user_id": user.id}


def disable_totp(
    db: Session, actor: Actor, user_id: int, code: str | None, *, now: datetime
) -> None:
    """Turn two-factor sign-in off: the user with a current code, or an administrator of the
    clinic (or the command line) for someone who lost their phone."""
    with audit.audited(db, actor, "auth.totp.disable") as note:
        user = db.get(User, user_id)
        if user is None or user.clinic_id != actor.clinic_id:
            raise NotFound("No such user in your clinic.")
        note.detail = {"user_id": user.id, "by": "self" if actor.user_id == user.id else "admin"}
        if actor.user_id == user.id:
            if not user.totp_secret:
                raise InvalidInput("code", "Two-factor sign-in is not on.")
            step = totp.matching_step(
                user.totp_secret, code or "", now.timestamp(), user.totp_last_step
            )
            if step is None:
                raise InvalidInput("code", "Enter a current code from your app to turn it off.")
        else:
            require(actor, Permission.USER_MANAGE)
        user.totp_secret = None
        user.totp_last_step = None


@dataclass(frozen=True)
class Caller:
    """The user behind a cookie or token: what a request needs to act for them."""

    user_id: int
    clinic_id: int
    role: Role
    username: str
    display_name: str

    @property
    def actor(self) -> Actor:
        return Actor(
            clinic_id=self.clinic_id, role=self.role, label=self.username, user_id=self.user_id
        )


# Every request resolves its caller: plain column reads (no ORM identity map, no unit of work)
# by statements built once (building a statement and its cache key costs more than running it).
_CALLER_COLUMNS = (User.id, User.clinic_id, User.role, User.username, User.display_name)
_SESSION_BY_HASH = (
    select(
        UserSession.id.label("session_id"),
        UserSession.csrf_token,
        UserSession.last_seen_at,
        User.active,
        *_CALLER_COLUMNS,
    )
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("token_hash"))
)
_TOKEN_BY_HASH = (
    select(
        ApiToken.id.label("token_id"),
        ApiToken.token_hash,
        ApiToken.last_used_at,
        ApiToken.revoked_at,
        User.active,
        *_CALLER_COLUMNS,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def _caller(row: Any) -> Caller:
    return Caller(row.id, row.clinic_id, Role(row.role), row.username, row.display_name)


@dataclass(frozen=True)
class ResolvedSession:
    user: Caller
    session_id: int
    csrf_token: str


def resolve_session(
    db: Session | Connection, token: str, *, now: datetime, idle: timedelta
) -> ResolvedSession | None:
    """The live session for a cookie token, sliding its idle expiry; None when expired."""
    row = db.execute(_SESSION_BY_HASH, {"token_hash": _sha256(token)}).first()
    if row is None:
        return None
    if not row.active or row.last_seen_at + idle < now:
        db.execute(delete(UserSession).where(UserSession.id == row.session_id))
        db.commit()
        return None
    # Touch at most once a minute: a write per request would be wasted work.
    if now - row.last_seen_at > timedelta(seconds=60):
        db.execute(
            update(UserSession).where(UserSession.id == row.session_id).values(last_seen_at=now)
        )
        db.commit()
    return ResolvedSession(_caller(row), row.session_id, row.csrf_token)


def sign_out(db: Session, actor: Actor, session_id: int) -> None:
    db.execute(delete(UserSession).where(UserSession.id == session_id))
    db.add(audit.event(actor, "auth.sign_out", "success", audit.AuditNote()))
    db.commit()


class TokenCreated(BaseModel):
    id: int
    name: str
    token: str = Field(description="Shown once; only its hash is stored.")


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def create_api_token(db: Session, actor: Actor, name: str) -> TokenCreated:
    with audit.audited(db, actor, "token.create") as note:
        require(actor, Permission.TOKEN_MANAGE_OWN)
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise InvalidInput("name", "Give the token a name of 1-100 characters.")
        if actor.user_id is None:
            raise InvalidInput("user", "Tokens belong to a user account.")
        prefix = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        row = ApiToken(user_id=actor.user_id, name=name, prefix=prefix, token_hash=_sha256(token))
        db.add(row)
        db.flush()
        note.detail = {"token_id": row.id, "name": name}
        return TokenCreated(id=row.id, name=name, token=token)


def list_api_tokens(db: Session, actor: Actor) -> list[TokenOut]:
    require(actor, Permission.TOKEN_MANAGE_OWN)
    rows = db.scalars(
        select(ApiToken).where(ApiToken.user_id == actor.user_id).order_by(ApiToken.id)
    ).all()
    return [TokenOut.model_validate(r) for r in rows]


def revoke_api_token(db: Session, actor: Actor, token_id: int, *, now: datetime) -> None:
    with audit.audited(db, actor, "token.revoke") as note:
        require(actor, Permission.TOKEN_MANAGE_OWN)
        note.detail = {"token_id": token_id}
        row = db.scalar(
            select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == actor.user_id)
        )
        if row is None:
            raise NotFound("No such API token.")
        if row.revoked_at is None:
            row.revoked_at = now


def resolve_api_token(db: Session | Connection, token: str, *, now: datetime) -> Caller | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = _sha256(token)
    row = db.execute(_TOKEN_BY_HASH, {"token_hash": digest}).first()
    if row is None or row.revoked_at is not None or not row.active:
        return None
    # Compare again in constant time (the lookup was by hash, this guards the edge cases).
    if not hmac.compare_digest(row.token_hash, digest):
        return None
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        db.execute(update(ApiToken).where(ApiToken.id == row.token_id).values(last_used_at=now))
        db.commit()
    return _caller(row)


def get_clinic(db: Session, clinic_id: int) -> Clinic:
    clinic = db.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound("No such clinic.")
    return clinic


def find_clinic(db: Session, slug: str | None) -> Clinic:
    """The clinic named by slug, or the only clinic when there is just one."""
    if slug:
        clinic = db.scalar(select(Clinic).where(Clinic.slug == slug))
        if clinic is None:
            raise InvalidInput("clinic", f"No clinic with the short name {slug!r}.")
        return clinic
    clinics = db.scalars(select(Clinic).limit(2)).all()
    if len(clinics) != 1:
        raise InvalidInput(
            "clinic", "Name the clinic (--clinic SLUG): there is not exactly one clinic."
        )
    return clinics[0]
