"""Runtime settings, read from the environment (prefix ``KETACARE_``) or a ``.env`` file."""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KETACARE_", env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    var_dir: Path = DEFAULT_VAR_DIR
    database_url: str = ""
    secret_key: str = Field(default="", repr=False)
    # A signed-in user is signed out after this many idle minutes.
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Failed logins: after `login_max_failures` within `login_window_minutes` for one username
    # or one address, further attempts are refused until the window has passed.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    password_min_length: int = Field(default=12, ge=8)
    cookie_secure: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    # PostgreSQL connections each server process keeps. A request waits for a free one rather
    # than opening more: opening a connection costs more than most requests, and the server's
    # max_connections must cover every process (processes x pool size, plus tools).
    db_pool_size: int = Field(default=20, ge=1, le=200)
    db_max_overflow: int = Field(default=0, ge=0, le=200)

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_driver(cls, value: str) -> str:
        # A bare postgresql:// URL would pick psycopg2, which is not installed.
        if value.startswith("postgresql://"):
            return "postgresql+psycopg://" + value.removeprefix("postgresql://")
        if value.startswith("postgres://"):
            return "postgresql+psycopg://" + value.removeprefix("postgres://")
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'ketacare.db').as_posix()}"

    def effective_secret_key(self) -> str:
        """The signing secret; production refuses to start without one."""
        if self.secret_key:
            if self.environment == "production" and len(self.secret_key) < 32:
                raise RuntimeError("KETACARE_SECRET_KEY must have at least 32 characters.")
            return self.secret_key
        if self.environment == "production":
            raise RuntimeError(
                "KETACARE_SECRET_KEY is not set; production will not start with a generated secret."
            )
        # Development: keep a generated secret in var/ so sign-ins survive restarts.
        path = self.var_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@cache
def get_settings() -> Settings:
    return Settings()
