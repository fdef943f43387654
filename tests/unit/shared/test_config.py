"""Settings: defaults, `LEADFLOW_*` environment variables and start-up validation."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from shared.config import KAFKA_DEFAULT_SESSION_TIMEOUT_MS, Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with no LEADFLOW_* variable set, whatever the shell exported."""
    for name in list(os.environ):
        if name.upper().startswith("LEADFLOW_"):
            monkeypatch.delenv(name)


def test_default_topic_names() -> None:
    settings = Settings()
    assert settings.topic_touch_events == "leadflow.touch-events"
    assert settings.topic_lead_changes == "leadflow.lead-changes"
    assert settings.topic_actions == "leadflow.actions"


def test_default_dlq_topics_append_dot_dlq() -> None:
    settings = Settings()
    assert settings.dlq_topic("leadflow.actions") == "leadflow.actions.dlq"
    assert settings.topics == [
        "leadflow.touch-events",
        "leadflow.lead-changes",
        "leadflow.actions",
        "leadflow.touch-events.dlq",
        "leadflow.lead-changes.dlq",
        "leadflow.actions.dlq",
    ]


def test_other_defaults() -> None:
    settings = Settings()
    assert settings.kafka_bootstrap_servers is None
    assert settings.kafka_session_timeout_ms == KAFKA_DEFAULT_SESSION_TIMEOUT_MS
    assert settings.http_host == "127.0.0.1"
    assert settings.http_port == 8000
    assert settings.log_level == "INFO"
    assert settings.group_scoring == "leadflow.scoring"
    assert settings.group_routing == "leadflow.routing"


def test_values_are_read_from_leadflow_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("LEADFLOW_HTTP_PORT", "9001")
    monkeypatch.setenv("LEADFLOW_TOPIC_ACTIONS", "acme.actions")
    monkeypatch.setenv("LEADFLOW_DLQ_SUFFIX", ".dead")
    monkeypatch.setenv("LEADFLOW_KAFKA_SESSION_TIMEOUT_MS", "6000")
    monkeypatch.setenv("LEADFLOW_DATABASE_ECHO", "true")

    settings = Settings()

    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.http_port == 9001
    assert settings.topic_actions == "acme.actions"
    assert settings.dlq_topic(settings.topic_actions) == "acme.actions.dead"
    assert settings.kafka_session_timeout_ms == 6000
    assert settings.database_echo is True


def test_env_var_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("leadflow_http_port", "9002")
    assert Settings().http_port == 9002


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PORT", "9003")
    assert Settings().http_port == 8000


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_bootstrap_servers_is_treated_as_unset(
    monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    monkeypatch.setenv("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS", blank)
    assert Settings().kafka_bootstrap_servers is None


def test_blank_tansu_bin_is_treated_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_TANSU_BIN", "")
    assert Settings().tansu_bin is None


def test_bootstrap_servers_splits_a_comma_list_and_trims(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS", " k1:9092, k2:9092 ,,k3:9093 ")
    assert Settings().bootstrap_servers == ["k1:9092", "k2:9092", "k3:9093"]


def test_single_bootstrap_server_is_a_one_element_list() -> None:
    assert Settings(kafka_bootstrap_servers="localhost:9092").bootstrap_servers == [
        "localhost:9092"
    ]


def test_bootstrap_servers_raises_a_clear_error_when_unset() -> None:
    settings = Settings()
    with pytest.raises(RuntimeError, match="LEADFLOW_KAFKA_BOOTSTRAP_SERVERS"):
        _ = settings.bootstrap_servers


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("LEADFLOW_HTTP_PORT", "70000", "http_port"),
        ("LEADFLOW_HTTP_PORT", "-1", "http_port"),
        ("LEADFLOW_HTTP_PORT", "eighty", "http_port"),
        ("LEADFLOW_TOPIC_TOUCH_EVENTS", "touch events", "topic_touch_events"),
        ("LEADFLOW_TOPIC_LEAD_CHANGES", "lead/changes", "topic_lead_changes"),
        ("LEADFLOW_GROUP_ROUTING", "routing group", "group_routing"),
        ("LEADFLOW_KAFKA_SESSION_TIMEOUT_MS", "10", "kafka_session_timeout_ms"),
        ("LEADFLOW_KAFKA_SESSION_TIMEOUT_MS", "300001", "kafka_session_timeout_ms"),
        ("LEADFLOW_CONSUMER_MAX_ATTEMPTS", "0", "consumer_max_attempts"),
        ("LEADFLOW_LOG_LEVEL", "verbose", "log_level"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as exc:
        Settings()
    assert [err["loc"] for err in exc.value.errors()] == [(field,)]


def test_topic_name_longer_than_200_characters_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(topic_actions="a" * 201)


def test_topic_name_of_200_allowed_characters_is_accepted() -> None:
    name = "A.b_c-9" * 28 + "abcd"
    assert len(name) == 200
    assert Settings(topic_actions=name).topic_actions == name


@pytest.mark.parametrize("level", ["debug", "Warning", "error"])
def test_lower_case_log_level_is_accepted_and_upper_cased(
    monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    monkeypatch.setenv("LEADFLOW_LOG_LEVEL", level)
    assert Settings().log_level == level.upper()


def test_bootstrap_servers_of_only_commas_raises_like_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS", " , ")
    with pytest.raises((RuntimeError, ValidationError)):
        _ = Settings().bootstrap_servers


def test_dlq_suffix_with_a_space_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_DLQ_SUFFIX", " dead letters")
    with pytest.raises(ValidationError):
        Settings()


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.http_port = 1  # type: ignore[misc]


@pytest.mark.parametrize("name", [".", ".."])
def test_topic_names_kafka_refuses_are_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("LEADFLOW_TOPIC_ACTIONS", name)
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
        (" 2h ", 7200.0),
    ],
)
def test_durations_read_seconds_or_suffixed_values(
    monkeypatch: pytest.MonkeyPatch, raw: str, seconds: float
) -> None:
    monkeypatch.setenv("LEADFLOW_DEDUPE_WINDOW_S", raw)
    assert Settings().dedupe_window_s == seconds


def test_bad_duration_is_refused_naming_the_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_DEDUPE_WINDOW_S", "a while")
    with pytest.raises(ValidationError, match="15m"):
        Settings()


@pytest.mark.parametrize(("raw", "value"), [("OFF", "off"), ("false", "off"), ("1", "on")])
def test_auth_switch_accepts_common_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, value: str
) -> None:
    monkeypatch.setenv("LEADFLOW_AUTH", raw)
    assert Settings().auth == value


def test_auth_is_on_and_sources_unconfigured_by_default() -> None:
    settings = Settings()
    assert settings.auth == "on"
    assert settings.segment_write_key is None and settings.shopify_webhook_secret is None


def test_segment_event_map_is_read_as_json_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_SEGMENT_EVENT_MAP", '{"Lead Captured": "form_submit"}')
    assert Settings().segment_event_map == {"Lead Captured": "form_submit"}
    monkeypatch.setenv("LEADFLOW_SEGMENT_EVENT_MAP", '{"Lead Captured": "Form Submit"}')
    with pytest.raises(ValidationError, match="lower-case"):
        Settings()


def test_source_secrets_are_hidden_when_settings_are_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADFLOW_SHOPIFY_WEBHOOK_SECRET", "shpss_topsecret")
    settings = Settings()
    assert "shpss_topsecret" not in repr(settings)
    assert settings.shopify_webhook_secret.get_secret_value() == "shpss_topsecret"


@pytest.mark.parametrize(
    ("value", "seconds"), [("shopify", 36_000), ("Klaviyo", 14_400), ("90m", 5_400), ("0", 0)]
)
def test_the_cart_delay_takes_a_platform_preset_or_a_duration(
    monkeypatch: pytest.MonkeyPatch, value: str, seconds: float
) -> None:
    monkeypatch.setenv("LEADFLOW_ABANDONED_CART_DELAY", value)
    assert Settings().abandoned_cart_delay == seconds


def test_an_unknown_cart_delay_preset_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_ABANDONED_CART_DELAY", "mailchimp")
    with pytest.raises(ValidationError, match="abandoned_cart_delay"):
        Settings()


# --- vendor sources: Segment batches and Shopify shops -------------------------------------------


def test_segment_takes_a_full_webhooks_actions_batch_by_default() -> None:
    settings = Settings()
    assert settings.segment_batch_max_events == 4_000
    assert settings.segment_max_body_bytes > settings.max_body_bytes


@pytest.mark.parametrize(
    "value",
    [
        '{"Acme-EU.myshopify.com": "eu-secret-1", "acme-us.myshopify.com": "us-secret-2"}',
        "acme-eu.myshopify.com=eu-secret-1, Acme-US.myshopify.com=us-secret-2",
    ],
)
def test_shop_secrets_are_read_from_json_or_pairs(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LEADFLOW_SHOPIFY_WEBHOOK_SECRETS", value)
    shops = Settings().shopify_webhook_secrets
    assert {k: v.get_secret_value() for k, v in shops.items()} == {
        "acme-eu.myshopify.com": "eu-secret-1",
        "acme-us.myshopify.com": "us-secret-2",
    }


def test_an_empty_shop_secrets_variable_is_no_shop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_SHOPIFY_WEBHOOK_SECRETS", "")
    assert Settings().shopify_webhook_secrets == {}


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ('{"acme": "s3cr3t-value"}', "'acme' is not a shop domain"),
        ('{"acme.myshopify.com": " "}', "secret of 'acme.myshopify.com' is empty"),
        ("acme.myshopify.com", "shop=secret pairs"),
        ('{"acme.myshopify.com": ', "is not a JSON object"),
    ],
)
def test_bad_shop_secrets_are_refused_at_start_without_the_secret(
    monkeypatch: pytest.MonkeyPatch, value: str, named: str
) -> None:
    monkeypatch.setenv("LEADFLOW_SHOPIFY_WEBHOOK_SECRETS", value)
    with pytest.raises(ValidationError) as exc:
        Settings()
    assert "shopify_webhook_secrets" in str(exc.value)
    assert named in str(exc.value)
    assert "s3cr3t-value" not in str(exc.value)


def test_a_placeholder_shop_secret_is_a_weak_secret_naming_the_shop() -> None:
    settings = Settings(
        secret_key="a-long-random-secret-key-for-tests",
        shopify_webhook_secrets={
            "acme.myshopify.com": "changeme",
            "b.myshopify.com": "9f8e7d6c5b4a",
        },
    )
    assert settings.weak_secrets() == [
        "LEADFLOW_SHOPIFY_WEBHOOK_SECRETS: the secret of acme.myshopify.com is a well-known "
        "placeholder"
    ]
