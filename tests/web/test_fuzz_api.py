"""Fuzzing every API operation from the app's own OpenAPI schema (schemathesis, in-process ASGI).

Every operation gets generated requests, valid and invalid (schemathesis' coverage cases plus
``KETACARE_FUZZ_EXAMPLES`` random ones), sent with a prescriber's API token to a clinic with a
record of every kind, so that path ids often name a real row. Operations a prescriber may not
call (audit trail, clinic settings, research export) run a second time as a role that may, so
their inside is fuzzed too. Every answer must be below 500 and match what the schema declares:
status code, content type and body. Fixed seed: the same cases on every run of the same test
selection (Hypothesis also draws on string and number constants of the modules loaded, so the
whole suite may try a few cases this file alone does not). A longer run:
``make soak`` (300 random cases per operation; ``KETACARE_FUZZ_EXAMPLES`` sets the number).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role, allowed
from ketacare.app.users import actor_for, create_api_token
from ketacare.config import Settings
from ketacare.store.db import make_engine, make_session_factory
from ketacare.store.models import MedicationEntry
from ketacare.web.main import create_app
from tests.conftest import ClinicWorld, make_clinic
from tests.web.routes import (
    ROUTES,
    Target,
    _course,
    _dosing,
    _own_token,
    _ready_to_sign,
    _session,
    _signed,
    _therapy,
    _urgent_assessment,
    _with_alert,
    _with_order,
)

# Random cases per operation, on top of the coverage cases; `make soak` runs many more.
EXAMPLES = int(
    os.environ.get("KETACARE_FUZZ_EXAMPLES") or (300 if os.environ.get("KETACARE_SOAK") else 25)
)
SEED = int(os.environ.get("KETACARE_FUZZ_SEED", "20260"))
SCHEMA_URL = "/api/v1/openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAIN_ROLE = Role.PRESCRIBER
OTHER_ROLES = (Role.ADMIN, Role.RESEARCHER, Role.NURSE, Role.THERAPIST)
# Cases run and answers seen, per role and operation; reported at the end of the module.
CASES: Counter[tuple[str, str]] = Counter()
STATUSES: Counter[int] = Counter()


def _needs_other(operation: Any) -> bool:
    return _role_for(operation.method.upper(), operation.path) is not None


def _role_for(method: str, path: str) -> Role | None:
    """Who fuzzes an operation the prescriber is refused; None when the prescriber may call it."""
    permission = ROUTES[(method, path)].permission
    if permission is None or allowed(MAIN_ROLE, permission):
        return None
    return next(r for r in OTHER_ROLES if allowed(r, permission))


def _records(db: Session, world: ClinicWorld) -> dict[str, list[int]]:
    """A record of every kind the API addresses by id, in every state a route cares about."""
    patient = world.patients[0]
    med = MedicationEntry(
        clinic_id=world.clinic.id, patient_id=patient.id, name_entered="Strattera 40 mg"
    )
    db.add(med)
    db.commit()
    t = Target(patient.id, med.id, world.users[MAIN_ROLE])
    made: list[dict[str, Any]] = [
        _session("scheduled")(db, t),
        _session("in_progress")(db, t),
        _session("paused")(db, t),
        _with_order(db, t),
        _dosing(db, t),
        _ready_to_sign(db, t),
        _signed(db, t),
        _with_alert(db, t),
        _course(db, Target(world.patients[1].id, med.id, t.caller)),
        _therapy("scheduled")(db, t),
        _therapy("draft")(db, t),
        _therapy("signed")(db, t),
        _urgent_assessment(db, t),
        _own_token(db, t),
    ]
    ids: dict[str, list[int]] = {
        "patient_id": [p.id for p in world.patients],
        "medication_id": [med.id],
    }
    for row in made:
        for name, value in row.items():
            ids.setdefault(name, []).append(value)
    return {name: sorted(set(values)) for name, values in ids.items()}


@dataclass(frozen=True)
class FuzzWorld:
    """A clinic with a record of every kind, stored once and copied for each test."""

    database: Path
    ids: dict[str, list[int]]
    token_ids: frozenset[int]
    headers: dict[Role, dict[str, str]]


# Cases are generated inside each test, after its fixtures chose the records; the hooks read them.
_AIM: dict[str, Any] = {"ids": {}, "token_ids": frozenset()}


def _schema_app() -> Any:
    """The schema does not depend on the data: read it once, from an app on an empty database."""
    config = Settings(environment="test", secret_key="fuzz-schema-only-" + "x" * 32, _env_file=None)  # type: ignore[call-arg]
    return create_app(config, make_engine("sqlite://"))


schema = schemathesis.openapi.from_asgi(
    SCHEMA_URL,
    _schema_app(),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"mode": "all", "max-examples": EXAMPLES},
            # In-process calls are quick; the margin is for a busy test machine, not the app.
            "request-timeout": 60,
        }
    ),
)


@schema.hook
def flatmap_path_parameters(_ctx: Any, params: dict[str, Any] | None) -> Any:
    """Aim most ids at a real record; the rest stay as generated (mostly 404)."""
    if not params:
        return st.just(params)
    choices = {}
    for name, value in params.items():
        pool = _AIM["ids"].get(name)
        if pool and isinstance(value, int) and not isinstance(value, bool):
            choices[name] = st.sampled_from([value, *pool])
        else:
            choices[name] = st.just(value)
    return st.fixed_dictionaries(choices)


@schema.hook
def filter_path_parameters(_ctx: Any, params: dict[str, Any] | None) -> bool:
    # Revoking a token the run authenticates with would end the run early.
    return not params or params.get("token_id") not in _AIM["token_ids"]


@pytest.fixture(scope="module")
def fuzz_world(
    sqlite_template: Path, password_hash: str, tmp_path_factory: pytest.TempPathFactory
) -> FuzzWorld:
    path = tmp_path_factory.mktemp("fuzz") / "world.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    roles = (MAIN_ROLE, *OTHER_ROLES)
    with make_session_factory(engine)() as db:
        world = make_clinic(db, "a", password_hash)
        ids = _records(db, world)
        tokens = {r: create_api_token(db, actor_for(world.users[r]), "fuzz") for r in roles}
    with engine.connect() as conn:  # everything into the main file, which is what is copied
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return FuzzWorld(
        database=path,
        ids=ids,
        token_ids=frozenset(t.id for t in tokens.values()),
        headers={r: {"Authorization": f"Bearer {t.token}"} for r, t in tokens.items()},
    )


@pytest.fixture
def api(fuzz_world: FuzzWorld, settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """The app on a fresh copy of the world: every operation starts from the same records."""
    path = tmp_path / "ketacare.db"
    shutil.copyfile(fuzz_world.database, path)
    engine = make_engine(f"sqlite:///{path}")
    _AIM.update(ids=fuzz_world.ids, token_ids=fuzz_world.token_ids)
    # schemathesis runs the app's start-up (lifespan) before the first request, as a server would.
    yield create_app(settings, engine)
    _AIM.update(ids={}, token_ids=frozenset())
    engine.dispose()


def _send(case: Case, app: Any, world: FuzzWorld, role: Role) -> None:
    CASES[(role.value, case.operation.label)] += 1
    response = case.call_and_validate(app=app, headers=world.headers[role], checks=CHECKS)
    STATUSES[response.status_code] += 1


FUZZ_SETTINGS = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no example database: a run does not depend on earlier runs
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_operation_answers_500_or_outside_its_schema(
    case: Case, api: Any, fuzz_world: FuzzWorld
) -> None:
    _send(case, api, fuzz_world, MAIN_ROLE)


@schema.include(lambda ctx: _needs_other(ctx.operation)).parametrize()
@FUZZ_SETTINGS
def test_operations_refused_to_a_prescriber_hold_for_a_role_allowed_them(
    case: Case, api: Any, fuzz_world: FuzzWorld
) -> None:
    role = _role_for(case.operation.method.upper(), case.operation.path)
    assert role is not None
    _send(case, api, fuzz_world, role)


def test_the_fuzzer_covers_every_api_operation(client: TestClient) -> None:
    spec = client.get(SCHEMA_URL).json()
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert operations == set(ROUTES)
    assert {(o.method.upper(), o.path) for o in _operations(schema)} == operations
    deeper = {
        (o.method.upper(), o.path)
        for o in _operations(schema.include(lambda ctx: _needs_other(ctx.operation)))
    }
    assert deeper == {
        ("GET", "/api/v1/audit"),
        ("PUT", "/api/v1/clinic/settings"),
        ("GET", "/api/v1/research/patients"),
        ("GET", "/api/v1/research/export/assessments.csv"),
        ("GET", "/api/v1/research/export/sessions.csv"),
    }


def _operations(s: Any) -> list[Any]:
    return [result.ok() for result in s.get_all_operations()]


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not CASES:
        return
    per_role: Counter[str] = Counter()
    for (role, _label), n in CASES.items():
        per_role[role] += n
    operations = len({label for _role, label in CASES})
    line = (
        f"fuzz cases run: {sum(CASES.values())} over {operations} operations ("
        + ", ".join(f"{role} {n}" for role, n in sorted(per_role.items()))
        + "); answers: "
        + ", ".join(f"{code} x{n}" for code, n in sorted(STATUSES.items()))
    )
    report = os.environ.get("KETACARE_FUZZ_REPORT")
    if report:
        per_op = "".join(f"{n}\t{role}\t{label}\n" for (role, label), n in sorted(CASES.items()))
        Path(report).write_text(line + "\n" + per_op)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + line)
