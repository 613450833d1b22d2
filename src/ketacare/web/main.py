"""The web application: JSON API under /api/v1 (OpenAPI at /docs) and the clinician UI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from ketacare import __version__
from ketacare.config import Settings, get_settings
from ketacare.store.db import make_engine, make_session_factory
from ketacare.web import access_log, errors
from ketacare.web.api import device_router
from ketacare.web.api import router as api_router
from ketacare.web.security import SecurityHeaders
from ketacare.web.state import WEB_DIR, WebState
from ketacare.web.ui import router as ui_router
from ketacare.web.ui import selfreport

DESCRIPTION = """
Decision support for ketamine-assisted treatment programmes for adult ADHD.
Psychiatric ketamine use is off-label and no trial of ketamine for ADHD exists; this API
records care and outcomes, it makes no claim of efficacy.

Authenticate with `Authorization: Bearer kc_...` (create a token on your Account page) or with
the browser session (then send the `X-CSRF-Token` header on writes).
"""


def _warm_up() -> None:
    """Read every knowledge file and build the drug index (a few seconds, once per process)
    before the first request. Loaded on demand instead, a first burst of requests would each
    load them at once (the caches hold no lock) and time out together."""
    from ketacare.app.intake import consent_text
    from ketacare.app.reports import load_faq
    from ketacare.clinical.drugs import broad_vocabulary, default_resolver
    from ketacare.clinical.eligibility import EligibilitySettings
    from ketacare.clinical.monitoring import MonitoringSettings
    from ketacare.clinical.stimulants import stimulant_ingredients
    from ketacare.knowledge import knowledge_version
    from ketacare.knowledge.catalog import load_catalog
    from ketacare.knowledge.eligibility_defs import load_contraindications, load_eligibility
    from ketacare.knowledge.fhir_code_defs import load_fhir_codes
    from ketacare.knowledge.instrument_defs import load_instruments
    from ketacare.knowledge.outcome_defs import load_outcomes
    from ketacare.knowledge.protocol_defs import load_monitoring, load_protocols
    from ketacare.knowledge.session_defs import load_session_checks
    from ketacare.knowledge.therapy_defs import load_therapy

    for load in (
        knowledge_version,
        load_catalog,
        load_contraindications,
        load_eligibility,
        load_fhir_codes,
        load_instruments,
        load_outcomes,
        load_protocols,
        load_monitoring,
        load_session_checks,
        load_therapy,
        load_faq,
        consent_text,
        stimulant_ingredients,
        EligibilitySettings.defaults,
        MonitoringSettings.defaults,
        default_resolver,
        broad_vocabulary,
    ):
        load()


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    await anyio.to_thread.run_sync(_warm_up)
    yield


def _pool_options(settings: Settings) -> dict[str, int]:
    if not settings.effective_database_url.startswith("postgresql"):
        return {}  # SQLite: one file, the driver's defaults
    return {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(
        settings.effective_database_url,
        **_pool_options(settings),
    )
    app = FastAPI(
        title="KetaCare",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )
    app.state.web = WebState(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        secret=settings.effective_secret_key(),
    )
    access_log.install()
    # Served over HTTPS (secure cookies): browsers are told to use nothing else for a year.
    app.add_middleware(SecurityHeaders, hsts=settings.cookie_secure)
    errors.install(app)

    # Routes are matched in the order added: the health check a load balancer polls and the
    # route devices send vitals to come first, not after every API and UI route.
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        # async: nothing to wait for, so no trip through the thread pool.
        return {"status": "ok", "version": __version__}

    app.include_router(device_router)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/v1/openapi.json",
            title="KetaCare API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.include_router(api_router)
    app.include_router(ui_router)
    # Patients answer questionnaires without an account: the link itself is the credential.
    app.include_router(selfreport.router)

    return app
