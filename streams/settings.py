"""The one frozen settings object, built from flags and KPI_* environment variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    # Redis credentials and TLS files (TLS itself is the `rediss://` scheme); the password
    # may also sit in the URL, but a separate secret keeps it out of process listings.
    redis_username: str | None = None
    redis_password: SecretStr | None = None
    redis_ssl_cafile: Path | None = None
    redis_ssl_certfile: Path | None = None
    redis_ssl_keyfile: Path | None = None
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
    # History goes in here: its partitions keep a stream time of their own, so a replay of
    # last year is not too late for a pipeline whose live topics are at today.
    topic_backfill: str = "events.backfill"
    topic_reps: str = "sales.reps"
    topic_kpi_values: str = "kpi.values"
    topic_kpi_alerts: str = "kpi.alerts"
    topic_dlq: str = "events.dlq"
    topic_partitions: int = Field(4, ge=1, le=1024)
    topic_replication_factor: int = Field(1, ge=1)

    # --- consumer group behaviour -----------------------------------------
    session_timeout_s: float = Field(30.0, gt=0)
    heartbeat_interval_s: float = Field(3.0, gt=0)
    # How long a fetch may wait at the broker for data. Kafka answers a waiting fetch as soon
    # as a record arrives; the embedded broker only when the wait is over, so a record the
    # worker wrote to its own internal topic would sit there up to Faust's 1,500 ms.
    fetch_max_wait_ms: int = Field(20, ge=1, le=5000)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    # How often done input offsets are committed (Faust's 2.8 s by default). Lag 0 waits for
    # the commit, so a drained backlog waited up to that long to show it; a commit is one
    # small request, and a crash re-reads less.
    commit_interval_s: float = Field(0.5, gt=0, le=60)

    # --- input limits (contract section 3) -----------------------------------
    max_event_bytes: int = Field(64 * 1024, ge=256)
    lateness_s: float = Field(7 * 86400, ge=0)
    future_skew_s: float = Field(300, ge=0)
    dedup_horizon_s: float = Field(8 * 86400, ge=0)
    # How long (wall time) the watermark waits for an input partition that has sent nothing
    # yet: until it sends, its events may be of any age. A partition that stays empty stops
    # holding orphan expiry and alert judging back after this.
    input_wait_s: float = Field(10.0, ge=0, le=3600)

    # --- KPI semantics -------------------------------------------------------
    timezone: str = "UTC"
    reporting_currency: str = "EUR"
    # Units of the reporting currency per unit of each currency, as a JSON object of
    # decimal strings; needed for a reporting currency without shipped rates.
    exchange_rates: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # Parsed by our own validator (NoDecode) so a bad value gets our message, not pydantic's.
    stages: Annotated[tuple[str, ...], NoDecode] = DEFAULT_STAGES
    customer_lifetime_days: float = Field(1095, gt=0)
    thresholds_file: Path | None = None
    reps_file: Path | None = None

    # --- outputs -------------------------------------------------------------
    flush_interval_s: float = Field(1.0, gt=0, le=60)
    # While more than ten batches wait for the steps, flushes are at least this far apart.
    catch_up_flush_s: float = Field(30.0, ge=0, le=600)
    batch_max: int = Field(5000, ge=1)
    max_series_per_kpi: int = Field(2000, ge=1)
    redis_prefix: str = "kpi"

    @field_validator("stages", mode="before")
    @classmethod
    def _stages_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _json_value(
                value, list, 'a JSON list of stage names, e.g. ["prospecting","qualified","proposal"]'
            )
        return value

    @field_validator("exchange_rates", mode="before")
    @classmethod
    def _rates_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _json_value(value, dict, 'a JSON object of rates, e.g. {"EUR": "162.4", "USD": "150.2"}')
        return value

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
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"redis", "rediss", "unix"} or (
            parts.scheme != "unix" and not parts.hostname
        ):
            raise ValueError(
                f"expected redis://HOST:PORT/DB (rediss:// for TLS, unix:///PATH), got {value!r}"
            )
        return value

    @field_validator("reps_file", "thresholds_file", "redis_ssl_cafile", "redis_ssl_certfile",
                     "redis_ssl_keyfile", "ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {str(value)!r}")
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
    def _currency(self) -> Settings:
        from streams.currency import DEFAULT_RATES_IN_EUR, Rates

        try:
            rates = Rates(self.reporting_currency, self.exchange_rates)
        except ValueError as exc:
            raise ValueError(f"KPI_REPORTING_CURRENCY / KPI_EXCHANGE_RATES: {exc}") from None
        if len(rates.rates) < 2 and self.reporting_currency not in DEFAULT_RATES_IN_EUR:
            raise ValueError(
                f"KPI_REPORTING_CURRENCY: no exchange rates for {self.reporting_currency}; rates are "
                f"shipped for {', '.join(sorted(DEFAULT_RATES_IN_EUR))}. Give the others with "
                'KPI_EXCHANGE_RATES, e.g. \'{"EUR": "162.4", "USD": "150.2"}\' '
                f"(units of {self.reporting_currency} per unit)"
            )
        return self

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


def _json_value(text: str, kind: type, shape: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"not JSON; expected {shape}") from None
    if not isinstance(value, kind):
        raise ValueError(f"expected {shape}")
    return value


SECRET_FIELDS = {"sasl_password", "ssl_key_password", "redis_password"}


def describe_settings_error(exc: Exception) -> str:
    """One line per bad setting, naming the environment variable, never echoing secrets."""
    import re

    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        # pydantic-settings' SettingsError names the field it could not parse.
        found = re.search(r'field "(\w+)"', str(exc))
        if found:
            return f"KPI_{found.group(1).upper()}: cannot be parsed (JSON expected)"
        return str(exc)
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        name = f"KPI_{field.upper()}" if field else "settings"
        message = err["msg"].removeprefix("Value error, ")
        if field not in SECRET_FIELDS and "input" in err and err["type"] != "value_error" and not message.startswith("KPI_"):
            message += f" (got {str(err['input'])[:60]!r})"
        lines.append(message if message.startswith("KPI_") else f"{name}: {message}")
    return "\n".join(lines)
