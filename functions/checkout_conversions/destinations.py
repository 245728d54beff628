"""The ad platforms a purchase is reported to, and what decides whether each one gets it.

Each destination has its own delivery item in the Sessions table, keyed `<session or invoice
id>#<destination>` and written in the provisioning transaction: its own state, claims, attempts
and stored purchase, its own partition of RedriveIndex (`redrive_queue` = its name) and its own
event source mapping on the stream. So one destination being down, slow or switched off never
delays or repeats another. An item keyed by the bare session id, with no `destination`, was
recorded before there were two: it is TikTok's delivery.

The settings of a destination are named after it (`<name>_pixel_id`, `<name>_test_event_code`,
`<name>_event_name`, `<name>_timeout_seconds` in config.Settings; its token
`<NAME>_ACCESS_TOKEN`). Its send side (building the request, POSTing it, reading the answer) is
the module `sender_module` names, imported only by the sender and the redrive: the webhook only
starts deliveries and imports none of it.

Adding a destination: a send-side module with `prepare` and `post` (tiktok.py, meta.py), its
settings, an entry in ALL, and its event source mapping, schedule and alarms in template.yaml.
DynamoDB Streams serves two readers per shard: a third mapping would be throttled, so a third
destination means one mapping for all of them first (the sender already handles any mix).
"""

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from checkout_conversions.config import Settings

RENEWAL = "renewal"  # `delivery_kind` of a subscription renewal's delivery; a purchase has none


@dataclass(frozen=True)
class Destination:
    name: str  # "tiktok": the delivery key's suffix, its RedriveIndex partition, its settings' prefix
    label: str  # "TikTok": its metrics (TikTokSent, TikTokFailed ...) and log lines
    sender_module: str
    max_age_days: int | None = None  # the platform's own limit on an event's age, if it has one

    @property
    def variable_prefix(self) -> str:
        return self.name.upper()

    def setting(self, settings: Settings, name: str) -> Any:
        return getattr(settings, f"{self.name}_{name}")

    def pixel_id(self, settings: Settings) -> str:
        return self.setting(settings, "pixel_id")

    def test_event_code(self, settings: Settings) -> str:
        return self.setting(settings, "test_event_code")

    def timeout_seconds(self, settings: Settings) -> float:
        return self.setting(settings, "timeout_seconds")

    def enabled(self, settings: Settings) -> bool:
        """Part of this deployment: its pixel is configured (its token is checked at send time)."""
        return bool(self.pixel_id(settings))

    def max_age_seconds(self, settings: Settings) -> int:
        days = settings.delivery_max_age_days
        if self.max_age_days is not None:
            days = min(days, self.max_age_days)
        return days * 86400

    def delivery_key(self, event_id: str) -> str:
        return f"{event_id}#{self.name}"

    def module(self) -> ModuleType:
        return importlib.import_module(self.sender_module)


TIKTOK = Destination("tiktok", "TikTok", "checkout_conversions.tiktok")  # and renewals (subscriptions.py)
# Meta refuses a whole request holding an event older than 7 days.
META = Destination("meta", "Meta", "checkout_conversions.meta", max_age_days=7)
ALL = (TIKTOK, META)
_BY_NAME = {destination.name: destination for destination in ALL}


def by_name(name: str) -> Destination:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"no destination {name!r}: one of {', '.join(_BY_NAME)}") from None


def recorded(name: str | None) -> Destination | None:
    """The destination a delivery item names, or None for a name this version does not know:
    such a delivery is never sent to another. An item with no `destination` at all was recorded
    before there were two: TikTok's (the caller tells absent from unreadable)."""
    return _BY_NAME.get(name) if name else None


def enabled(settings: Settings) -> tuple[Destination, ...]:
    return tuple(destination for destination in ALL if destination.enabled(settings))


# ---------------------------------------------------------------------- deciding


def skip_reason_at_provisioning(
    destination: Destination,
    settings: Settings,
    livemode: bool,
    event_time: int,
    now: int,
    ad_consent: str | None,
) -> str | None:
    """Why a new session's delivery will never be sent, as far as the settings and the buyer's
    choice tell without reading a token (the webhook has no access to them)."""
    if ad_consent == "denied":
        return "the buyer denied ad measurement (ad_consent=denied)"
    if settings.require_ad_consent and ad_consent != "granted":
        return "no ad consent given (REQUIRE_AD_CONSENT is true, ad_consent is not granted)"
    return settings_skip_reason(destination, settings, livemode) or too_old(
        destination, settings, event_time, now
    )


def skip_reason_for_renewal(
    destination: Destination, settings: Settings, livemode: bool, event_time: int, now: int
) -> str | None:
    if not settings.renewal_event_name:
        return "renewals are not reported: RENEWAL_EVENT_NAME is empty"
    return settings_skip_reason(destination, settings, livemode) or too_old(
        destination, settings, event_time, now
    )


def skip_reason_at_send_time(
    destination: Destination, settings: Settings, access_token: str, livemode: bool, kind: str | None = None
) -> str | None:
    """Why a delivery is not sent now: its destination switched off, renewals switched off, or a
    test-mode event and no test code."""
    if not access_token:
        return f"{destination.label} is switched off: {destination.variable_prefix}_ACCESS_TOKEN is empty"
    if kind == RENEWAL and not settings.renewal_event_name:
        return "renewals are not reported: RENEWAL_EVENT_NAME is empty"
    return settings_skip_reason(destination, settings, livemode)


def settings_skip_reason(destination: Destination, settings: Settings, livemode: bool) -> str | None:
    prefix = destination.variable_prefix
    if not destination.pixel_id(settings):
        return f"{destination.label} is switched off: {prefix}_PIXEL_ID is not set"
    if not livemode and not destination.test_event_code(settings):
        return f"test-mode event and no {prefix}_TEST_EVENT_CODE"
    return None


def too_old(destination: Destination, settings: Settings, event_time: int, now: int) -> str | None:
    """A payment older than the maximum age is not reported (the platform's attribution has moved
    on, or, for Meta, it would refuse the request)."""
    limit = destination.max_age_seconds(settings)
    if now - event_time > limit:
        return f"payment older than {limit // 86400} days"
    return None
