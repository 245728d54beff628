"""The delivery policy (outbox/policy.py, skip_reason): whether a purchase is reported to a
destination now. Asked when a renewal's delivery is recorded (no token nor test event code read:
the webhook never reads a platform's secret) and again when it is sent (with the destination's
token and test event code, read from their store).

These were the tests of destinations.skip_reason_for_renewal and skip_reason_at_send_time; both
are now one policy, asked with the token or without."""

import pytest

from checkout_conversions import secrets
from checkout_conversions.outbox import policy
from checkout_conversions.outbox.model import ReportFacts
from checkout_conversions.purchase import Consent, PurchaseKind
from checkout_conversions.settings import Settings, load_settings
from checkout_conversions.store.items import RENEWAL_KIND, delivery_from

ON = {"RENEWAL_EVENT_NAME": "Subscribe", "TIKTOK_PIXEL_ID": "CPIXEL01", "TIKTOK_TEST_EVENT_CODE": "TEST123"}
NOW = 1762700000
NAME_EMPTY = "renewals are not reported: RENEWAL_EVENT_NAME is empty"
TOKEN_EMPTY = "TikTok is switched off: TIKTOK_ACCESS_TOKEN is empty"
PIXEL_EMPTY = "TikTok is switched off: TIKTOK_PIXEL_ID is not set"
NO_TEST_CODE = "test-mode event and no TIKTOK_TEST_EVENT_CODE"


def settings(**changes) -> Settings:
    return load_settings({**ON, **changes})


def reason(
    settings: Settings,
    facts: ReportFacts,
    now: int,
    access_token: str | None,
    test_event_code: str | None = policy.TEST_CODE_NOT_READ,
) -> str | None:
    """TikTok's skip reason as its sentence (what the record, the log and the answer say), or None."""
    tiktok = settings.destination("tiktok")
    skip = policy.skip_reason(tiktok, facts, settings.require_ad_consent, now, access_token, test_event_code)
    return skip.describe(tiktok) if skip is not None else None


def skip_reason_for_renewal(settings: Settings, livemode: bool, event_time: int, now: int) -> str | None:
    """When the webhook records a renewal's delivery: no token nor test code read, no consent recorded."""
    facts = ReportFacts(PurchaseKind.RENEWAL, livemode, event_time, Consent.UNKNOWN)
    return reason(settings, facts, now, policy.TOKEN_NOT_READ, policy.TEST_CODE_NOT_READ)


def skip_reason_at_send_time(
    settings: Settings,
    access_token: str,
    livemode: bool,
    kind: PurchaseKind = PurchaseKind.CHECKOUT,
    environ: dict[str, str] | None = None,
) -> str | None:
    """When the sender or the redrive holds the delivery, with the token and the test event code
    it read (here from the environment, SECRETS_SOURCE=env; a payment of now: the maximum age is
    the renewal tests' above)."""
    tiktok = settings.destination("tiktok")
    code = secrets.read_optional(tiktok.test_event_code, settings.secrets, {**ON, **(environ or {})})
    return reason(settings, ReportFacts(kind, livemode, NOW, Consent.UNKNOWN), NOW, access_token, code)


def stored_kind(delivery_kind: str | None) -> PurchaseKind:
    """The kind the sender reads from a delivery item's `delivery_kind`."""
    item = {"session_id": "cs_test_1#tiktok", "delivery_status": "pending", "delivery_kind": delivery_kind}
    delivery = delivery_from(item)
    assert delivery is not None
    return delivery.facts.kind


@pytest.mark.parametrize(
    ("environ", "livemode", "expected"),
    [
        ({}, False, None),
        ({}, True, None),
        ({"RENEWAL_EVENT_NAME": "Renewal"}, False, None),  # a custom name is reported too
        ({"RENEWAL_EVENT_NAME": ""}, False, NAME_EMPTY),
        ({"RENEWAL_EVENT_NAME": "   "}, True, NAME_EMPTY),
        ({"RENEWAL_EVENT_NAME": "", "TIKTOK_PIXEL_ID": ""}, True, NAME_EMPTY),  # off says so first
        ({"TIKTOK_PIXEL_ID": ""}, True, PIXEL_EMPTY),
        # The webhook reads no test event code: a test-mode renewal is recorded pending, and the
        # sender skips it when no code is set (test_skip_reason_at_send_time_of_a_renewal).
        ({"TIKTOK_TEST_EVENT_CODE": ""}, False, None),
        ({"TIKTOK_TEST_EVENT_CODE": ""}, True, None),
    ],
    ids=[
        "on-test",
        "on-live",
        "custom-name",
        "name-empty",
        "name-blank",
        "name-and-pixel-empty",
        "pixel-empty",
        "test-without-code-decided-at-send-time",
        "live-without-code",
    ],
)
def test_skip_reason_for_renewal(environ, livemode, expected):
    assert skip_reason_for_renewal(settings(**environ), livemode, NOW - 60, NOW) == expected


def test_a_renewal_off_by_default():
    """RENEWAL_EVENT_NAME is empty unless set: a merchant who sets nothing reports no renewal."""
    bare = load_settings({"TIKTOK_PIXEL_ID": "CPIXEL01", "TIKTOK_TEST_EVENT_CODE": "TEST123"})
    assert bare.destination("tiktok").renewal_event_name == ""
    assert bare.destination("tiktok").event_name == "CompletePayment"  # never borrowed for renewals
    assert skip_reason_for_renewal(bare, False, NOW, NOW) == NAME_EMPTY


def test_a_renewal_older_than_the_maximum_age_is_not_reported():
    week = 7 * 86400  # DELIVERY_MAX_AGE_DAYS' default
    assert skip_reason_for_renewal(settings(), True, NOW - week, NOW) is None
    assert skip_reason_for_renewal(settings(), True, NOW - week - 1, NOW) == "payment older than 7 days"
    assert skip_reason_for_renewal(settings(DELIVERY_MAX_AGE_DAYS="2"), True, NOW - 3 * 86400, NOW) == (
        "payment older than 2 days"
    )


@pytest.mark.parametrize(
    ("environ", "token", "livemode", "expected"),
    [
        ({}, "token", False, None),
        ({}, "", True, TOKEN_EMPTY),
        ({"RENEWAL_EVENT_NAME": ""}, "", True, TOKEN_EMPTY),  # the token is checked first
        ({"RENEWAL_EVENT_NAME": ""}, "token", True, NAME_EMPTY),  # cleared after the renewal started
        ({"TIKTOK_PIXEL_ID": ""}, "token", True, PIXEL_EMPTY),
        ({"TIKTOK_TEST_EVENT_CODE": ""}, "token", False, NO_TEST_CODE),
        ({"TIKTOK_TEST_EVENT_CODE": "disabled"}, "token", False, NO_TEST_CODE),
        ({"TIKTOK_TEST_EVENT_CODE": ""}, "token", True, None),
    ],
    ids=[
        "on",
        "token-empty",
        "token-and-name-empty",
        "name-cleared",
        "pixel-cleared",
        "code-cleared",
        "code-disabled",
        "live-without-code",
    ],
)
def test_skip_reason_at_send_time_of_a_renewal(environ, token, livemode, expected):
    renewal = PurchaseKind.RENEWAL
    assert skip_reason_at_send_time(settings(**environ), token, livemode, renewal, environ) == expected
    assert RENEWAL_KIND == "renewal"  # the delivery_kind the webhook stores on a renewal's item
    assert stored_kind(RENEWAL_KIND) is PurchaseKind.RENEWAL


@pytest.mark.parametrize("kind", [None, "purchase", "subscription_cycle"])
def test_an_empty_renewal_event_name_never_stops_a_purchase(kind):
    """Only renewals depend on RENEWAL_EVENT_NAME: a purchase (no delivery_kind) is still sent."""
    off = settings(RENEWAL_EVENT_NAME="")
    assert skip_reason_at_send_time(off, "token", True, kind=stored_kind(kind)) is None
    assert skip_reason_at_send_time(off, "token", True) is None


@pytest.mark.parametrize(
    ("code", "expected"), [("TEST123", None), ("", NO_TEST_CODE), (" off ", NO_TEST_CODE)]
)
def test_a_test_mode_purchase_is_judged_by_the_code_read_at_send_time_only(code, expected):
    """The webhook records a test-mode purchase pending whatever the code (it reads none); the
    sender, holding the code it read with the token, sends it only while one is set."""
    recorded = ReportFacts(PurchaseKind.CHECKOUT, False, NOW, Consent.UNKNOWN)
    assert reason(settings(TIKTOK_TEST_EVENT_CODE=code), recorded, NOW, policy.TOKEN_NOT_READ) is None
    environ = {"TIKTOK_TEST_EVENT_CODE": code}
    assert skip_reason_at_send_time(settings(**environ), "token", False, environ=environ) == expected
    assert skip_reason_at_send_time(settings(**environ), "token", True, environ=environ) is None
