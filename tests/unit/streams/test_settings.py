"""Settings: environment and flags, clear errors naming the variable, secrets kept secret."""

import pytest
from pydantic import ValidationError

from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings, describe_settings_error


def test_defaults_follow_the_contract(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("KPI_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.broker_url == "kafka://localhost:9092"
    assert settings.web_port == 6066
    assert (settings.topic_crm, settings.topic_kpi_values, settings.topic_dlq) == (
        "crm.events",
        "kpi.values",
        "events.dlq",
    )
    assert settings.max_event_bytes == 64 * 1024
    assert settings.reporting_currency == "EUR"


def test_environment_is_read_and_flags_win(monkeypatch):
    monkeypatch.setenv("KPI_BROKER_URL", "kafka://b1:9092;kafka://b2:9093")
    monkeypatch.setenv("KPI_WEB_PORT", "7000")
    settings = Settings(web_port=7100)
    assert settings.broker_hosts == ["b1:9092", "b2:9093"]
    assert settings.web_port == 7100


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("KPI_BROKER_URL", "localhost:9092", "KPI_BROKER_URL"),
        ("KPI_WEB_PORT", "seventy", "KPI_WEB_PORT"),
        ("KPI_TIMEZONE", "Mars/Olympus", "KPI_TIMEZONE"),
        ("KPI_REDIS_URL", "http://redis", "KPI_REDIS_URL"),
        ("KPI_SECURITY_PROTOCOL", "TLS", "KPI_SECURITY_PROTOCOL"),
    ],
)
def test_a_bad_setting_names_its_variable(monkeypatch, env, value, message):
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert message in describe_settings_error(info.value)


def test_sasl_needs_credentials_and_hides_the_password(monkeypatch):
    monkeypatch.setenv("KPI_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    with pytest.raises(ValidationError):
        Settings()
    settings = Settings(sasl_username="svc", sasl_password="hunter2-secret")
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings.model_dump())
    kwargs = aiokafka_kwargs(settings)
    assert kwargs["sasl_plain_password"] == "hunter2-secret"
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.web_port = 1
