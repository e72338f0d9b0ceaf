"""The one frozen settings object, built from flags and KPI_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STAGES = ("prospecting", "qualified", "meeting", "demo", "proposal", "negotiation")


class Settings(BaseSettings):
    """Everything the pipeline can be told; see README "Settings" for the full list."""

    model_config = SettingsConfigDict(
        env_prefix="KPI_",
        frozen=True,
        extra="forbid",
        env_ignore_empty=True,
    )

    # --- connections -------------------------------------------------------
    broker_url: str = "kafka://localhost:9092"
    redis_url: str | None = None
    web_host: str = "0.0.0.0"
    web_port: int = Field(6066, ge=1, le=65535)
    app_id: str = "kpi-pipeline"
    data_dir: Path = Path(".kpi-pipeline")

    # --- Kafka security: passed through to aiokafka, never logged ------------
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None

    # --- topics ------------------------------------------------------------
    topic_crm: str = "crm.events"
    topic_billing: str = "billing.events"
    topic_reps: str = "sales.reps"
    topic_kpi_values: str = "kpi.values"
    topic_kpi_alerts: str = "kpi.alerts"
    topic_dlq: str = "events.dlq"
    topic_partitions: int = Field(4, ge=1, le=1024)
    topic_replication_factor: int = Field(1, ge=1)

    # --- consumer group behaviour -----------------------------------------
    session_timeout_s: float = Field(30.0, gt=0)
    heartbeat_interval_s: float = Field(3.0, gt=0)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"

    # --- input limits (contract section 3) -----------------------------------
    max_event_bytes: int = Field(64 * 1024, ge=256)
    lateness_s: float = Field(7 * 86400, ge=0)
    future_skew_s: float = Field(300, ge=0)
    dedup_horizon_s: float = Field(8 * 86400, ge=0)

    # --- KPI semantics -------------------------------------------------------
    timezone: str = "UTC"
    reporting_currency: str = "EUR"
    stages: tuple[str, ...] = DEFAULT_STAGES
    customer_lifetime_days: float = Field(1095, gt=0)
    thresholds_file: Path | None = None
    reps_file: Path | None = None

    # --- outputs -------------------------------------------------------------
    flush_interval_s: float = Field(1.0, gt=0, le=60)
    batch_max: int = Field(2000, ge=1)
    batch_within_s: float = Field(0.2, gt=0)
    max_series_per_kpi: int = Field(2000, ge=1)
    redis_prefix: str = "kpi"

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        for url in value.split(";"):
            parts = urlsplit(url)
            if parts.scheme != "kafka" or not parts.hostname or not parts.port:
                raise ValueError(
                    f"expected kafka://HOST:PORT (several separated by ';'), got {url!r}"
                )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("expected redis://HOST:PORT[/DB], rediss://… or unix://…")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)")
        return value

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value) or {"won", "lost"} & set(value):
            raise ValueError("stages must be a non-empty list of distinct names, without won/lost")
        return value

    @model_validator(mode="after")
    def _security(self) -> Settings:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(
                "security_protocol SASL_* needs KPI_SASL_USERNAME and KPI_SASL_PASSWORD"
            )
        return self

    @property
    def broker_hosts(self) -> list[str]:
        """host:port pairs for plain aiokafka clients."""
        return [urlsplit(url).netloc for url in self.broker_url.split(";")]


def describe_settings_error(exc: Exception) -> str:
    """One line per bad setting, naming the environment variable, never echoing secrets."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "settings"
        name = f"KPI_{loc.upper()}" if err["loc"] else "settings"
        lines.append(f"{name}: {err['msg']}")
    return "\n".join(lines)
