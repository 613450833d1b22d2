"""What the web faces share for the app's lifetime: settings, database, signer, templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from itsdangerous import Signer
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session, sessionmaker

from ketacare import __version__
from ketacare.config import Settings
from ketacare.store.models import Clinic

WEB_DIR = Path(__file__).resolve().parent


@dataclass
class WebState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    secret: str
    signer: Signer = field(init=False)
    templates: Jinja2Templates = field(init=False)
    # Single reads outside any transaction (who is calling): no BEGIN, no ROLLBACK.
    autocommit: Engine = field(init=False)
    _clinic_tz: dict[int, tuple[str, ZoneInfo]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.signer = Signer(self.secret, salt="ketacare.session")
        self.autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.templates = Jinja2Templates(directory=WEB_DIR / "templates")
        self.templates.env.globals["version"] = __version__
        self.templates.env.filters["local"] = _local_time

    def clinic(self, db: Session | Connection, clinic_id: int) -> tuple[str, ZoneInfo]:
        """Clinic name and time zone; cached, they change rarely."""
        if clinic_id not in self._clinic_tz:
            row = db.execute(
                select(Clinic.name, Clinic.timezone).where(Clinic.id == clinic_id)
            ).one()
            self._clinic_tz[clinic_id] = (row.name, ZoneInfo(row.timezone))
        return self._clinic_tz[clinic_id]


def _local_time(
    value: datetime | None, tz: ZoneInfo | None = None, fmt: str = "%Y-%m-%d %H:%M"
) -> str:
    """Times are stored in UTC and shown in the clinic's zone."""
    if value is None:
        return ""
    return value.astimezone(tz).strftime(fmt) if tz else value.strftime(fmt)
