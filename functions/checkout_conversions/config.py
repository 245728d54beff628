"""Every setting the functions read, in one place.

Settings are re-read on each invocation (a dozen environment lookups, microseconds), so that a test
or an operator changing a variable sees the effect at once. Secrets come through `read_secret`,
which can also read them from SSM Parameter Store or Secrets Manager with a short cache, so that
clearing a platform's token there switches that destination off without a deploy.
"""

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_TIKTOK_API_URL = "https://business-api.tiktok.com/open_api/v1.3/event/track/"
DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
DEFAULT_META_API_BASE_URL = "https://graph.facebook.com"
DEFAULT_META_API_VERSION = "v24.0"
CONTENT_ID_SOURCES = "price, product or metadata:<key>"
MAX_BODY_BYTES = 256 * 1024
SIGNATURE_TOLERANCE_SECONDS = 300
# Values that mean "no token" where the store cannot hold an empty string (SSM parameters).
_DISABLED_VALUES = frozenset({"", "disabled", "none", "off", "-"})
SECRET_SOURCES = ("env", "ssm", "secretsmanager")
ACCESS_TOKEN_VARIABLES = {"tiktok": "TIKTOK_ACCESS_TOKEN", "meta": "META_ACCESS_TOKEN"}


class ConfigurationError(Exception):
    """The deployment is misconfigured: answer 500 and log loudly, never accept an event."""


@dataclass(frozen=True)
class Settings:
    sessions_table: str
    customers_table: str
    secrets_source: str
    secrets_cache_seconds: int
    stripe_webhook_secret_name: str
    tiktok_access_token_name: str
    tiktok_pixel_id: str
    tiktok_event_name: str
    renewal_event_name: str
    tiktok_api_url: str
    tiktok_test_event_code: str
    tiktok_timeout_seconds: float
    tiktok_limited_data_use: bool
    meta_access_token_name: str
    meta_pixel_id: str
    meta_event_name: str
    meta_test_event_code: str
    meta_api_base_url: str
    meta_api_version: str
    meta_timeout_seconds: float
    require_ad_consent: bool
    stripe_api_key_name: str
    stripe_api_base: str
    stripe_api_timeout_seconds: float
    content_id_source: str
    default_phone_country: str
    record_retention_days: int
    redrive_grace_seconds: int
    delivery_max_age_days: int
    redrive_batch_size: int
    redrive_backoff_base_seconds: int
    redrive_backoff_cap_seconds: int
    problems: tuple[str, ...] = ()


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    def text(name: str, default: str = "") -> str:
        return environ.get(name, default).strip()

    problems: list[str] = []

    def number(name: str, default: float, cast=int, minimum: float = 0, maximum: float = 86400):
        """A tuning number; a bad one falls back to its default and is reported, because a typo
        in a platform's or the redrive's setting must never stop provisioning."""
        raw = text(name)
        if not raw:
            return cast(default)
        try:
            value = cast(raw)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not minimum <= value <= maximum:
            problems.append(f"{name}={raw!r} is not a number from {minimum} to {maximum}: using {default}")
            return cast(default)
        return value

    def flag(name: str) -> bool:
        raw = text(name).lower()
        if raw in ("", "false", "0", "no", "off"):
            return False
        if raw in ("true", "1", "yes", "on"):
            return True
        problems.append(f"{name}={raw!r} is not true or false: using false")
        return False

    raw_source = text("CONTENT_ID_SOURCE") or "price"
    kind, colon, key = raw_source.partition(":")
    kind, key = kind.strip().lower(), key.strip()  # a metadata key keeps its case: Stripe's do
    if kind in ("price", "product") and not colon:
        content_id_source = kind
    elif kind == "metadata" and key:
        content_id_source = f"metadata:{key}"
    else:
        problems.append(f"CONTENT_ID_SOURCE={raw_source!r} is not {CONTENT_ID_SOURCES}: using price")
        content_id_source = "price"

    secrets_source = text("SECRETS_SOURCE", "env").lower() or "env"
    if secrets_source not in SECRET_SOURCES:
        raise ConfigurationError(f"SECRETS_SOURCE must be one of {', '.join(SECRET_SOURCES)}")

    retention_days = number("RECORD_RETENTION_DAYS", 35, minimum=31, maximum=3650)
    max_age_days = number("DELIVERY_MAX_AGE_DAYS", 7, minimum=1, maximum=365)
    if max_age_days >= retention_days:
        # TTL would delete a pending delivery before the redrive could send or expire it.
        problems.append(
            f"DELIVERY_MAX_AGE_DAYS={max_age_days} is not below RECORD_RETENTION_DAYS={retention_days}: "
            f"using {retention_days - 1}"
        )
        max_age_days = retention_days - 1

    return Settings(
        sessions_table=text("SESSIONS_TABLE_NAME"),
        customers_table=text("CUSTOMERS_TABLE_NAME"),
        secrets_source=secrets_source,
        secrets_cache_seconds=number("SECRETS_CACHE_SECONDS", 300),
        stripe_webhook_secret_name=text("STRIPE_WEBHOOK_SECRET_NAME"),
        tiktok_access_token_name=text("TIKTOK_ACCESS_TOKEN_NAME"),
        tiktok_pixel_id=text("TIKTOK_PIXEL_ID"),
        tiktok_event_name=text("TIKTOK_EVENT_NAME") or "CompletePayment",
        renewal_event_name=text("RENEWAL_EVENT_NAME"),
        tiktok_api_url=text("TIKTOK_API_URL") or DEFAULT_TIKTOK_API_URL,
        tiktok_test_event_code=text("TIKTOK_TEST_EVENT_CODE"),
        # Each phase of one POST (connect, send, wait, read); the sender's Lambda timeout is 120 s.
        tiktok_timeout_seconds=number("TIKTOK_TIMEOUT_SECONDS", 5.0, float, minimum=0.1, maximum=10),
        tiktok_limited_data_use=flag("TIKTOK_LIMITED_DATA_USE"),
        meta_access_token_name=text("META_ACCESS_TOKEN_NAME"),
        meta_pixel_id=text("META_PIXEL_ID"),
        meta_event_name=text("META_EVENT_NAME") or "Purchase",
        meta_test_event_code=text("META_TEST_EVENT_CODE"),
        meta_api_base_url=text("META_API_BASE_URL").rstrip("/") or DEFAULT_META_API_BASE_URL,
        meta_api_version=text("META_API_VERSION") or DEFAULT_META_API_VERSION,
        meta_timeout_seconds=number("META_TIMEOUT_SECONDS", 5.0, float, minimum=0.1, maximum=10),
        require_ad_consent=flag("REQUIRE_AD_CONSENT"),
        stripe_api_key_name=text("STRIPE_API_KEY_NAME"),
        stripe_api_base=text("STRIPE_API_BASE").rstrip("/") or DEFAULT_STRIPE_API_BASE,
        stripe_api_timeout_seconds=number("STRIPE_API_TIMEOUT_SECONDS", 5.0, float, minimum=0.1, maximum=10),
        content_id_source=content_id_source,
        default_phone_country=text("DEFAULT_PHONE_COUNTRY").upper(),
        # Markers must outlive Stripe's resends (dashboard 15 days, CLI 30) or a resend re-provisions.
        record_retention_days=retention_days,
        redrive_grace_seconds=number("REDRIVE_GRACE_SECONDS", 120),
        delivery_max_age_days=max_age_days,
        redrive_batch_size=number("REDRIVE_BATCH_SIZE", 50, minimum=1, maximum=1000),
        redrive_backoff_base_seconds=number("REDRIVE_BACKOFF_BASE_SECONDS", 60),
        redrive_backoff_cap_seconds=number("REDRIVE_BACKOFF_CAP_SECONDS", 3600),
        problems=tuple(problems),
    )


def require_tables(settings: Settings) -> None:
    missing = [
        name
        for name, value in (
            ("SESSIONS_TABLE_NAME", settings.sessions_table),
            ("CUSTOMERS_TABLE_NAME", settings.customers_table),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(f"{', '.join(missing)} not set")


def webhook_secrets(settings: Settings, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The accepted Stripe signing secrets (comma-separated: rotation, test and live endpoints)."""
    raw = read_secret(settings, "STRIPE_WEBHOOK_SECRET", settings.stripe_webhook_secret_name, environ)
    secrets = [part.strip() for part in raw.split(",") if part.strip()]
    if not secrets:
        raise ConfigurationError("STRIPE_WEBHOOK_SECRET is not set: refusing every event")
    return secrets


def access_token(settings: Settings, destination: str, environ: Mapping[str, str] = os.environ) -> str:
    """A destination's token (TIKTOK_ACCESS_TOKEN, META_ACCESS_TOKEN), or "" when it is switched
    off (unset, empty, or a value like 'disabled')."""
    variable = ACCESS_TOKEN_VARIABLES[destination]
    stored_name = getattr(settings, f"{destination}_access_token_name")
    token = read_secret(settings, variable, stored_name, environ)
    return "" if token.strip().lower() in _DISABLED_VALUES else token.strip()


def stripe_api_key(settings: Settings, environ: Mapping[str, str] = os.environ) -> str:
    """The restricted key that reads line items, or "" when none is configured (then no contents
    are sent). Optional: with SSM or Secrets Manager, an empty STRIPE_API_KEY_NAME means none."""
    if settings.secrets_source != "env" and not settings.stripe_api_key_name:
        return ""
    key = read_secret(settings, "STRIPE_API_KEY", settings.stripe_api_key_name, environ)
    return "" if key.strip().lower() in _DISABLED_VALUES else key.strip()


def read_secret(settings: Settings, env_name: str, stored_name: str, environ: Mapping[str, str]) -> str:
    if settings.secrets_source == "env":
        return environ.get(env_name, "")
    if not stored_name:
        raise ConfigurationError(f"{env_name}_NAME must name the {settings.secrets_source} entry")
    return _read_stored_secret(settings.secrets_source, stored_name, settings.secrets_cache_seconds)


_secret_providers: dict[str, Any] = {}


def _read_stored_secret(source: str, name: str, max_age: int) -> str:
    # Imported here: with plain environment variables (the default) the Parameters utility and its
    # clients are never needed, so they stay off the cold-start path.
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    provider = _secret_providers.get(source) or _secret_providers.setdefault(source, _new_provider(source))
    try:
        if source == "ssm":
            value = provider.get(name, decrypt=True, max_age=max_age)
        else:
            value = provider.get(name, max_age=max_age)
    except GetParameterError as error:
        raise ConfigurationError(f"cannot read {source} entry {name!r}: {error}") from None
    return value if isinstance(value, str) else ""


def _new_provider(source: str) -> Any:
    """A provider (and its cache) per container, with the same bounded timeouts and retries as
    the DynamoDB client: botocore's defaults (60 s connect, 60 s read) would outlast the webhook."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

    from checkout_conversions.clients import AWS_CLIENT_CONFIG

    if source == "ssm":
        return SSMProvider(boto_config=AWS_CLIENT_CONFIG)
    return SecretsProvider(boto_config=AWS_CLIENT_CONFIG)
