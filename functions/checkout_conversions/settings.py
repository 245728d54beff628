"""Every setting the functions read, typed, in one place: one frozen dataclass per concern."""

# Settings are read on each invocation (a few dozen environment lookups, microseconds), so that a
# test or an operator changing a variable sees the effect at once. Secrets are not settings: they
# are read through `secrets.py` when a flow needs them.

import os
from collections.abc import Mapping
from dataclasses import dataclass

from checkout_conversions import destinations
from checkout_conversions.destinations.base import DestinationSettings
from checkout_conversions.purchase import CONTENT_ID_SOURCES, ContentIdSource
from checkout_conversions.secrets import ConfigurationError, SecretRef, SecretSource, SecretStore
from checkout_conversions.values import SettingsReader

DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"


@dataclass(frozen=True)
class Tables:
    sessions: str
    customers: str

    def require(self) -> None:
        missing = [
            name
            for name, value in (
                ("SESSIONS_TABLE_NAME", self.sessions),
                ("CUSTOMERS_TABLE_NAME", self.customers),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(f"{', '.join(missing)} not set")


@dataclass(frozen=True)
class StripeApiSettings:
    """The optional restricted key that reads line items, and how to reach Stripe's API."""

    key: SecretRef
    base: str
    timeout_seconds: float
    content_id_source: ContentIdSource


@dataclass(frozen=True)
class RedriveSettings:
    grace_seconds: int  # a pending delivery is the stream's alone this long
    batch_size: int
    backoff_base_seconds: int
    backoff_cap_seconds: int

    def backoff_seconds(self, attempts: int) -> int:
        """Exponential: base, 2x base, 4x base ... capped at the configured maximum."""
        doubled: int = self.backoff_base_seconds * 2 ** max(attempts - 1, 0)
        return min(doubled, self.backoff_cap_seconds)


@dataclass(frozen=True)
class Settings:
    tables: Tables
    secrets: SecretStore
    webhook_secret: SecretRef
    stripe_api: StripeApiSettings
    require_ad_consent: bool
    # Markers must outlive Stripe's resends (dashboard 15 days, CLI 30) or a resend re-provisions.
    record_retention_days: int
    delivery_max_age_days: int
    redrive: RedriveSettings
    destinations: tuple[DestinationSettings, ...]
    problems: tuple[str, ...] = ()

    @property
    def configured_destinations(self) -> tuple[DestinationSettings, ...]:
        return tuple(destination for destination in self.destinations if destination.configured)

    def destination(self, name: str) -> DestinationSettings:
        for destination in self.destinations:
            if destination.name == name:
                return destination
        names = ", ".join(destination.name for destination in self.destinations)
        raise ValueError(f"no destination {name!r}: one of {names}")

    def known_destination(self, name: str | None) -> DestinationSettings | None:
        """The destination a delivery item names, or None for a name this version does not know."""
        return next((destination for destination in self.destinations if destination.name == name), None)


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    reader = SettingsReader(environ)
    retention_days = reader.integer("RECORD_RETENTION_DAYS", 35, minimum=31, maximum=3650)
    max_age_days = reader.integer("DELIVERY_MAX_AGE_DAYS", 7, minimum=1, maximum=365)
    if max_age_days >= retention_days:
        # TTL would delete a pending delivery before the redrive could send or expire it.
        reader.problems.append(
            f"DELIVERY_MAX_AGE_DAYS={max_age_days} is not below RECORD_RETENTION_DAYS={retention_days}: "
            f"using {retention_days - 1}"
        )
        max_age_days = retention_days - 1
    platforms = destinations.load_all(reader, max_age_days)
    content_id_source = _content_id_source(reader)
    return Settings(
        tables=Tables(reader.text("SESSIONS_TABLE_NAME"), reader.text("CUSTOMERS_TABLE_NAME")),
        secrets=SecretStore(_secret_source(reader), reader.integer("SECRETS_CACHE_SECONDS", 300)),
        webhook_secret=SecretRef("STRIPE_WEBHOOK_SECRET", reader.text("STRIPE_WEBHOOK_SECRET_NAME")),
        stripe_api=StripeApiSettings(
            key=SecretRef("STRIPE_API_KEY", reader.text("STRIPE_API_KEY_NAME")),
            base=reader.text("STRIPE_API_BASE").rstrip("/") or DEFAULT_STRIPE_API_BASE,
            timeout_seconds=reader.seconds("STRIPE_API_TIMEOUT_SECONDS", 5.0, minimum=0.1, maximum=10),
            content_id_source=content_id_source,
        ),
        require_ad_consent=reader.flag("REQUIRE_AD_CONSENT"),
        record_retention_days=retention_days,
        delivery_max_age_days=max_age_days,
        redrive=RedriveSettings(
            grace_seconds=reader.integer("REDRIVE_GRACE_SECONDS", 120),
            batch_size=reader.integer("REDRIVE_BATCH_SIZE", 500, minimum=1, maximum=1000),
            backoff_base_seconds=reader.integer("REDRIVE_BACKOFF_BASE_SECONDS", 60),
            backoff_cap_seconds=reader.integer("REDRIVE_BACKOFF_CAP_SECONDS", 3600),
        ),
        destinations=platforms,
        problems=tuple(reader.problems),  # last: every reading above has added its own
    )


def _secret_source(reader: SettingsReader) -> SecretSource:
    raw = reader.text("SECRETS_SOURCE", "env").lower()
    try:
        return SecretSource(raw)
    except ValueError:
        names = ", ".join(source.value for source in SecretSource)
        raise ConfigurationError(f"SECRETS_SOURCE must be one of {names}") from None


def _content_id_source(reader: SettingsReader) -> ContentIdSource:
    raw = reader.text("CONTENT_ID_SOURCE") or "price"
    try:
        return ContentIdSource.parse(raw)
    except ValueError:
        reader.problems.append(f"CONTENT_ID_SOURCE={raw!r} is not {CONTENT_ID_SOURCES}: using price")
        return ContentIdSource()
