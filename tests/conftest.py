"""Shared fixtures. Every database test runs on SQLite and, when KETACARE_TEST_POSTGRES_URL is
set, on that PostgreSQL too. Each test starts from a freshly migrated, empty database."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from ketacare.app.permissions import Actor, Role
from ketacare.app.text import fold
from ketacare.app.users import actor_for, create_api_token, hash_password
from ketacare.config import Settings
from ketacare.store import migrate
from ketacare.store.db import make_engine, make_session_factory
from ketacare.store.models import (
    Base,
    Clinic,
    ConsentRecord,
    EligibilityReview,
    Patient,
    User,
)
from ketacare.web.main import create_app

PG_URL = os.environ.get("KETACARE_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
PASSWORD = "correct-horse-battery"
ROLES = [Role.ADMIN, Role.PRESCRIBER, Role.NURSE, Role.THERAPIST, Role.RESEARCHER]


def pg_url() -> str:
    url = PG_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


@pytest.fixture(scope="session")
def password_hash() -> str:
    # Hashing is deliberately slow; one hash serves every test user.
    return hash_password(PASSWORD)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    engine = make_engine(pg_url())
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "ketacare.db"
        shutil.copyfile(template, path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_engine")
        _truncate_all(eng)
        yield eng


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    session = make_session_factory(engine)()
    yield session
    session.close()


@dataclass
class ClinicWorld:
    """One clinic's staff (a user per role) and patients."""

    clinic: Clinic
    users: dict[Role, User]
    patients: list[Patient] = field(default_factory=list)

    def actor(self, role: Role) -> Actor:
        return actor_for(self.users[role])


def make_clinic(db: Session, slug: str, password_hash: str, n_patients: int = 3) -> ClinicWorld:
    clinic = Clinic(slug=slug, name=f"Clinic {slug.upper()}", timezone="America/Toronto")
    db.add(clinic)
    db.flush()
    users = {}
    for role in ROLES:
        users[role] = User(
            clinic_id=clinic.id,
            username=f"{slug}-{role.value}",
            display_name=f"{role.value.title()} of {slug.upper()}",
            role=role.value,
            password_hash=password_hash,
        )
        db.add(users[role])
    world = ClinicWorld(clinic, users)
    for i in range(n_patients):
        family, given = f"{slug.title()}family{i}", f"Given{i}"
        p = Patient(
            clinic_id=clinic.id,
            mrn=f"{slug.upper()}-{i + 1:04d}",
            family_name=family,
            given_name=given,
            family_key=fold(family),
            given_key=fold(given),
            name_key=f"{fold(family)} {fold(given)}",
            date_of_birth=date(1985, 1, 1 + i),
            sex="female",
            stage="intake",
        )
        db.add(p)
        world.patients.append(p)
    db.commit()
    return world


@pytest.fixture
def world_a(db: Session, password_hash: str) -> ClinicWorld:
    return make_clinic(db, "a", password_hash)


@pytest.fixture
def world_b(db: Session, password_hash: str, world_a: ClinicWorld) -> ClinicWorld:
    return make_clinic(db, "b", password_hash)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        var_dir=tmp_path / "var",
        secret_key="test-secret-key-with-more-than-32-characters",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def client(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, engine)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


def free_port() -> int:
    """A TCP port nothing listens on, for a server process a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bearer(db: Session, user: User) -> dict[str, str]:
    """Authorization header of a fresh API token for ``user``."""
    token = create_api_token(db, actor_for(user), "test").token
    return {"Authorization": f"Bearer {token}"}


def ready_for_dosing(db: Session, patient: Patient) -> None:
    """A signed eligible review and consent given: what every dose checks first."""
    from ketacare.app.intake import consent_text, programme_status

    if programme_status(db, patient.id).review is None:
        db.add(
            EligibilityReview(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,
                computed_decision="eligible",
                final_decision="eligible",
                inputs={},
                output={},
                knowledge_version="test",
            )
        )
        db.add(
            ConsentRecord(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,
                consent_version=consent_text()["version"],
                status="given",
            )
        )
        db.commit()


def ui_login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf, "next": "/patients"},
    )
    assert response.status_code == 303, response.text
    chart = client.get("/account")
    return chart.text.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]
