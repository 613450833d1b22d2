"""Every HTML UI route x every role x own clinic / another clinic / signed out, from the app's
route table (tests/web/ui_routes.py says what each route needs).

Signing in is slow on purpose (argon2), so one module-wide app holds a signed-in browser per
role of clinic A, and each test makes its own fresh patients and records: no test depends on
another or on the order they run in.
"""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, Integer, func, select
from sqlalchemy.orm import Session, sessionmaker

from ketacare.app.permissions import Role, allowed
from ketacare.app.text import fold
from ketacare.config import Settings
from ketacare.store.db import make_engine, make_session_factory
from ketacare.store.models import AuditEvent, Base, Clinic, MedicationEntry, Patient, User
from ketacare.web.main import create_app
from tests.conftest import ROLES, _truncate_all, make_clinic, ui_login
from tests.web.route_table import routes
from tests.web.routes import Target
from tests.web.ui_routes import INNER_IDS, UI_ROUTES, UiCase, build, make_ids, request_for

# Cases checked, by kind, reported at the end of the module.
CASES: Counter[str] = Counter()
_serial = itertools.count(1)


def ui_routes_of(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (m, p)
        for m, p in routes(app)
        if not p.startswith(("/api/", "/static", "/docs")) and p != "/openapi.json"
    }


def permitted(role: Role, case: UiCase) -> bool:
    return case.permission is None or allowed(role, case.permission)


# --- one app, one signed-in browser per role ------------------------------------------------


@dataclass
class Clinics:
    a: int
    b: int
    users_a: dict[Role, User]
    users_b: dict[Role, User]


class Matrix:
    """The module's database and app, and clinic A's signed-in browsers (with CSRF tokens)."""

    def __init__(self, engine: Engine, settings: Settings, password_hash: str, pg: bool) -> None:
        self.engine, self.password_hash, self.pg = engine, password_hash, pg
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        self.app = create_app(settings, engine)
        self._stack = ExitStack()
        self.clients: dict[Role, TestClient] = {}
        self.csrf: dict[Role, str] = {}
        self.clinics: Clinics | None = None
        self.anonymous: TestClient | None = None
        self.login_csrf = ""

    def _client(self) -> TestClient:
        client = TestClient(self.app, base_url="http://testserver", follow_redirects=False)
        return self._stack.enter_context(client)

    def seed(self) -> None:
        if self.pg:
            _truncate_all(self.engine)
        with self.sessions() as db:
            a = make_clinic(db, "ma", self.password_hash)
            b = make_clinic(db, "mb", self.password_hash)
            self.clinics = Clinics(a.clinic.id, b.clinic.id, a.users, b.users)
        self._stack.close()
        for role in ROLES:
            self.clients[role] = self._client()
            self.csrf[role] = ui_login(self.clients[role], f"ma-{role.value}")
        self.anonymous = self._client()
        page = self.anonymous.get("/login").text
        self.login_csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

    def ensure(self, db: Session) -> Clinics:
        """Seeded and signed in; seeded again if another module emptied a shared database."""
        if (
            self.clinics is None
            or db.scalar(select(Clinic.id).where(Clinic.slug == "ma")) != self.clinics.a
        ):
            db.rollback()  # emptying the tables waits for every open transaction
            self.seed()
        assert self.clinics is not None
        return self.clinics

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module")
def matrix(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    password_hash: str,
) -> Iterator[Matrix]:
    folder = tmp_path_factory.mktemp("ui-matrix")
    if backend == "sqlite":
        path = folder / "ketacare.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
    else:
        engine = request.getfixturevalue("pg_engine")
    settings = Settings(
        environment="test",
        var_dir=folder / "var",
        secret_key="test-secret-key-with-more-than-32-characters",
        _env_file=None,  # type: ignore[call-arg]
    )
    m = Matrix(engine, settings, password_hash, pg=backend != "sqlite")
    yield m
    m.close()
    if backend == "sqlite":
        engine.dispose()


@dataclass
class Fresh:
    """This test's own records: a new patient with a medicine in each clinic."""

    db: Session
    clinics: Clinics
    a: tuple[int, int]
    b: tuple[int, int]

    def target(self, role: Role, other: bool = False) -> Target:
        (pid, med), users = (
            (self.b, self.clinics.users_b) if other else (self.a, self.clinics.users_a)
        )
        return Target(pid, med, users[role])


def _patient(db: Session, clinic_id: int, tag: str) -> tuple[int, int]:
    n = next(_serial)
    family, given = f"Matrix{tag}family{n:04d}", f"Matrix{tag}given{n:04d}"
    patient = Patient(
        clinic_id=clinic_id,
        mrn=f"M{tag}-{n:05d}",
        family_name=family,
        given_name=given,
        family_key=fold(family),
        given_key=fold(given),
        name_key=f"{fold(family)} {fold(given)}",
        date_of_birth=date(1970 + n % 30, 1 + n % 12, 1 + n % 28),
        sex="female",
        stage="intake",
        phone=f"+1 555 01{n:05d}",
        email=f"matrix{tag.lower()}{n}@example.org",
    )
    db.add(patient)
    db.flush()
    med = MedicationEntry(
        clinic_id=clinic_id, patient_id=patient.id, name_entered="Strattera 40 mg"
    )
    db.add(med)
    db.commit()
    return patient.id, med.id


@pytest.fixture
def fresh(matrix: Matrix) -> Iterator[Fresh]:
    db = matrix.sessions()
    clinics = matrix.ensure(db)
    yield Fresh(db, clinics, _patient(db, clinics.a, "A"), _patient(db, clinics.b, "B"))
    db.close()


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not CASES:
        return
    line = f"ui matrix: {sum(CASES.values())} route x role x clinic cases checked (" + ", ".join(
        f"{kind} {n}" for kind, n in sorted(CASES.items())
    )
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line + ")")


# --- what a request changed, and what a page shows -------------------------------------------

# The trail grows on every request; sessions and sign-in failures are not clinic records.
_UNTRACKED = {"audit_events", "user_sessions", "login_failures"}


def fingerprint(db: Session) -> dict[str, tuple[Any, ...]]:
    """Per table: rows, non-empty values per nullable column, and the sum of version counters.
    A refused request must leave every one of them as it was."""
    out: dict[str, tuple[Any, ...]] = {}
    for table in Base.metadata.sorted_tables:
        if table.name in _UNTRACKED:
            continue
        columns = [func.count()]
        columns += [func.count(c) for c in table.c if c.nullable]
        columns += [
            func.coalesce(func.sum(c), 0)
            for c in table.c
            if c.name.endswith("version") and isinstance(c.type, Integer)
        ]
        out[table.name] = tuple(db.execute(select(*columns).select_from(table)).one())
    db.rollback()
    return out


def last_audit_id(db: Session) -> int:
    value = db.scalar(select(func.max(AuditEvent.id))) or 0
    db.rollback()
    return value


def events_since(db: Session, after: int, user: User) -> list[tuple[str, str, int | None]]:
    """(action, outcome, patient id) of the audit events the user's request appended."""
    rows = db.execute(
        select(AuditEvent.action, AuditEvent.outcome, AuditEvent.patient_id)
        .where(AuditEvent.id > after, AuditEvent.user_id == user.id)
        .order_by(AuditEvent.id)
    ).all()
    db.rollback()
    return [(a, o, p) for a, o, p in rows]


def identifiers(db: Session) -> set[str]:
    """Every identifying value of every patient: names, MRN, phone, email, full birth date."""
    found: set[str] = set()
    for p in db.scalars(select(Patient)):
        dob = p.date_of_birth
        found |= {p.family_name, p.given_name, p.mrn, dob.isoformat()}
        found |= {dob.strftime("%d/%m/%Y"), dob.strftime("%m/%d/%Y"), dob.strftime("%B %d, %Y")}
        found |= {v for v in (p.phone, p.email) if v}
    db.rollback()
    return found


def assert_deidentified(db: Session, response: Response) -> None:
    shown = sorted(v for v in identifiers(db) if v in response.text)
    assert not shown, f"identifying values on a researcher's page: {shown[:5]}"


def victim_values(db: Session, patient_id: int) -> list[str]:
    p = db.get(Patient, patient_id)
    assert p is not None
    return [p.family_name, p.given_name, p.mrn]


def send(
    client: TestClient, method: str, url: str, form: dict[str, Any] | None, csrf: str
) -> Response:
    if method == "GET":
        return client.get(url)
    return client.post(url, data={**(form or {}), "csrf_token": csrf})


# --- the table covers the app -----------------------------------------------------------------


def test_the_ui_route_table_covers_every_ui_route(matrix: Matrix) -> None:
    assert ui_routes_of(matrix.app) == set(UI_ROUTES)


def test_the_identifier_check_catches_a_page_that_shows_patients(
    matrix: Matrix, fresh: Fresh
) -> None:
    """The researcher checks below are not vacuous: a nurse's patient list fails them."""
    page = matrix.clients[Role.NURSE].get("/patients", params={"q": "matrixafamily"})
    with pytest.raises(AssertionError, match="identifying values"):
        assert_deidentified(fresh.db, page)
    research = matrix.clients[Role.RESEARCHER].get("/research")
    assert research.status_code == 200
    assert_deidentified(fresh.db, research)
    assert str(date(1985, 1, 1).year) in research.text  # the seeded patients, by birth year


# --- own clinic: exactly what the permission table allows -------------------------------------

GET_CASES = [(p, r) for (m, p) in sorted(UI_ROUTES) if m == "GET" for r in ROLES]


@pytest.mark.parametrize(("path", "role"), GET_CASES, ids=lambda v: str(v))
def test_each_role_opens_exactly_the_pages_the_permission_table_allows(
    matrix: Matrix, fresh: Fresh, path: str, role: Role
) -> None:
    case = UI_ROUTES[("GET", path)]
    url, _ = build(fresh.db, "GET", path, fresh.target(role))
    response = matrix.clients[role].get(url)
    CASES["own clinic GET"] += 1
    expected = case.ok if permitted(role, case) else 403
    assert response.status_code == expected, response.text[:500]
    if role is Role.RESEARCHER and not case.public:
        assert_deidentified(fresh.db, response)


POST_CASES = [
    (p, r)
    for (m, p) in sorted(UI_ROUTES)
    if m == "POST" and UI_ROUTES[(m, p)].exercised
    for r in ROLES
]


@pytest.mark.parametrize(("path", "role"), POST_CASES, ids=lambda v: str(v))
def test_forms_do_what_the_permission_table_allows_and_a_refusal_writes_nothing(
    matrix: Matrix, fresh: Fresh, path: str, role: Role
) -> None:
    case = UI_ROUTES[("POST", path)]
    user = fresh.clinics.users_a[role]
    url, form = build(fresh.db, "POST", path, fresh.target(role))
    before, audit_mark = fingerprint(fresh.db), last_audit_id(fresh.db)
    response = send(matrix.clients[role], "POST", url, form, matrix.csrf[role])
    after = fingerprint(fresh.db)
    CASES["own clinic POST"] += 1
    if permitted(role, case):
        assert response.status_code == case.ok, response.text[:500]
        assert (after != before) is case.writes
        if role is Role.RESEARCHER and not case.public:
            assert_deidentified(fresh.db, response)
    else:
        assert response.status_code == 403, response.text[:500]
        assert after == before
        assert "denied" in [o for _a, o, _p in events_since(fresh.db, audit_mark, user)]


# --- another clinic's records: not found, nothing shown, nothing written ---------------------

# /r/{token}: the patient's own link is the credential, whoever holds it
# (tests/web/test_intake_pages.py).
AIMED = [
    (m, p)
    for (m, p) in sorted(UI_ROUTES)
    if "{" in p and not p.startswith("/r/") and UI_ROUTES[(m, p)].exercised
]


def _not_reached(
    matrix: Matrix,
    fresh: Fresh,
    method: str,
    path: str,
    role: Role,
    url: str,
    form: Any,
    *,
    strict: bool,
) -> None:
    """The request finds nothing: 404 (403 when the role may not do it at all, refused before
    any lookup, so nothing is revealed), no data of the other clinic's patient, no write."""
    case = UI_ROUTES[(method, path)]
    shown = victim_values(fresh.db, fresh.b[0])
    before, audit_mark = fingerprint(fresh.db), last_audit_id(fresh.db)
    response = send(matrix.clients[role], method, url, form, matrix.csrf[role])
    expected = (404,) if permitted(role, case) else (403, 404)
    assert response.status_code in expected, response.text[:500]
    leaked = [v for v in shown if v in response.text]
    assert not leaked, leaked
    assert fingerprint(fresh.db) == before
    events = events_since(fresh.db, audit_mark, fresh.clinics.users_a[role])
    # Reading the caller's own record (to show the refusal on its page) is fine; nothing of
    # the other clinic's patient is.
    reached = [(a, o) for a, o, pid in events if o == "success" and (pid == fresh.b[0] or strict)]
    assert not reached, reached


@pytest.mark.parametrize(
    ("method", "path", "role"), [(m, p, r) for m, p in AIMED for r in ROLES], ids=lambda v: str(v)
)
def test_no_role_reaches_another_clinics_records_through_any_page_or_form(
    matrix: Matrix, fresh: Fresh, method: str, path: str, role: Role
) -> None:
    # The ids (and the caller whose token is revoked) are all clinic B's; the browser is A's.
    url, form = build(fresh.db, method, path, fresh.target(role, other=True))
    CASES["other clinic"] += 1
    _not_reached(matrix, fresh, method, path, role, url, form, strict=True)


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [(m, p, r) for m, p in sorted(INNER_IDS) for r in ROLES],
    ids=lambda v: str(v),
)
def test_an_own_record_cannot_carry_another_clinics_record_inside_it(
    matrix: Matrix, fresh: Fresh, method: str, path: str, role: Role
) -> None:
    """Clinic A's patient or session with clinic B's medicine, course, order, alert, ..."""
    own, other = fresh.target(role), fresh.target(role, other=True)
    inner = INNER_IDS[(method, path)]
    theirs = make_ids(fresh.db, method, path, other)[inner]
    ids = {**make_ids(fresh.db, method, path, own), inner: theirs}
    url, form = request_for(fresh.db, method, path, own, ids)
    CASES["other clinic, inside an own record"] += 1
    _not_reached(matrix, fresh, method, path, role, url, form, strict=False)


# --- signed out ---------------------------------------------------------------------------------

# Signing in itself (POST /login, /login/code) is left out: failures would lock the address.
ALL_CASES = [
    (m, p)
    for (m, p) in sorted(UI_ROUTES)
    if UI_ROUTES[(m, p)].exercised or not UI_ROUTES[(m, p)].public
]


@pytest.mark.parametrize(("method", "path"), ALL_CASES, ids=lambda v: str(v))
def test_signed_out_browsers_are_sent_to_sign_in(
    matrix: Matrix, fresh: Fresh, method: str, path: str
) -> None:
    case = UI_ROUTES[(method, path)]
    url, form = build(fresh.db, method, path, fresh.target(Role.NURSE))
    before = fingerprint(fresh.db)
    # The login form's CSRF pair passes the form check, so the sign-in check answers.
    anonymous = matrix.anonymous
    assert anonymous is not None
    response = send(anonymous, method, url, form, matrix.login_csrf)
    CASES["signed out"] += 1
    if case.public:
        assert response.status_code == case.signed_out, response.text[:500]
        return
    assert response.status_code == 303, response.text[:500]
    assert response.headers["location"] == "/login?next=" + quote(url)
    assert fingerprint(fresh.db) == before
    if method == "GET":
        htmx = anonymous.get(url, headers={"HX-Request": "true"})
        assert (htmx.status_code, htmx.headers.get("hx-redirect")) == (401, "/login")
    else:
        assert anonymous.post(url, data=form or {}).status_code == 403  # no CSRF token
