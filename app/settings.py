"""Service configuration, read from `CDP_*` environment variables (or a `.env` file)."""

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.identity.normalize import supported_phone_region

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("cdp", appauthor=False))


class Settings(BaseSettings):
    """Everything the service reads from its environment; see the README's table."""

    model_config = SettingsConfigDict(env_prefix="CDP_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql://user:password@host:port/db; unset: start the embedded server.",
    )
    migration_database_url: str | None = Field(
        default=None,
        description="The schema owner's postgresql:// URL, for migrations and partition "
        "maintenance; unset: CDP_DATABASE_URL's login.",
    )
    db_role: str = Field(
        default="cdp_service",
        pattern=r"^([a-z_][a-z0-9_]{0,62})?$",
        description="The role the service's connections act as (created by the migrations, "
        "no UPDATE/DELETE/TRUNCATE on history tables); empty: the login role's own rights.",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded PostgreSQL keeps its data folder.",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    db_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait for a new database connection to open."
    )
    db_statement_timeout_ms: int = Field(
        default=30_000, ge=0, description="Per-statement limit; 0 disables it."
    )
    default_phone_region: str = Field(
        default="US",
        min_length=2,
        max_length=2,
        description="ISO 3166 region used to read phone numbers written without a country code.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    body_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Longest wait for the next piece of a request body (408 after); 0: none.",
    )
    rate_limit_per_second: float = Field(
        default=0.0,
        ge=0,
        description="Requests per second allowed per API key in each process; 0 disables.",
    )
    rate_limit_burst: int = Field(default=100, ge=1)
    max_requests_in_flight: int = Field(
        default=64,
        ge=0,
        description="Requests each process works on at once; more wait for a slot, then get "
        "503 overloaded (app/core/admission.py). 0: no limit.",
    )
    admission_wait_seconds: float = Field(
        default=0.5,
        ge=0,
        description="How long a request over max_requests_in_flight waits for a slot before "
        "it is refused.",
    )
    loyalty_settle_interval_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often pending points are released and old points expired; 0: never "
        "(run `cdp loyalty expire` instead).",
    )
    idempotency_key_retention_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long an Idempotency-Key is remembered; a retry after that is a new "
        "request.",
    )
    idempotency_purge_interval_seconds: float = Field(
        default=600.0,
        ge=0,
        description="How often each worker deletes Idempotency-Keys past their retention; 0: "
        "never.",
    )
    job_workers: int = Field(
        default=1, ge=0, le=64, description="Job workers per process (run concurrently); 0: none."
    )
    worker_healthcheck_seconds: int = Field(
        default=60,
        ge=1,
        description="With `cdp serve --workers N`: how long the supervisor waits for a worker "
        "to answer its health check before killing and replacing it. A worker answers only "
        "once it has imported the app, which takes more than uvicorn's 5 s default on a busy "
        "machine: with that, starting workers are killed over and over.",
    )
    job_poll_seconds: float = Field(
        default=1.0, gt=0, description="How long an idle job worker waits before looking again."
    )
    segments_schedule_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often each worker enqueues due scheduled segment recalculations; 0: "
        "never.",
    )
    import_dir: Path | None = Field(
        default=None,
        description="Where import files wait for a worker (uploads, FTP downloads); every "
        "process of the service must see the same folder. Unset: <data_dir>/imports.",
    )
    import_max_bytes: int = Field(
        default=2 * 1024**3, ge=1024, description="Largest import file (upload or download)."
    )
    import_ftp_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="FTP hosts imports may reach (JSON list; '.example.com' for a domain); "
        "empty: any.",
    )
    import_ftp_allow_private_addresses: bool = Field(
        default=False,
        description="Let FTP imports reach hosts that resolve to loopback, private or "
        "link-local addresses; otherwise only hosts named in import_ftp_allowed_hosts may.",
    )
    import_schedule_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often each worker polls the due scheduled FTP imports; 0: never.",
    )
    log_level: LogLevel = "INFO"
    log_json: bool = Field(default=True, description="One JSON object per log line.")

    @field_validator("default_phone_region")
    @classmethod
    def _supported_region(cls, region: str) -> str:
        return supported_phone_region(region)
