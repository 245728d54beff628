"""The one answer to "should this purchase be reported to this destination, now?", asked by every
path that records or sends a delivery: a checkout, a renewal, the sender and the redrive."""

from checkout_conversions.destinations.base import DestinationSettings
from checkout_conversions.outbox.model import ReportFacts, SkipReason
from checkout_conversions.purchase import Consent, PurchaseKind

# The webhook never reads a platform's secrets (its token, its test event code): their cold start
# and latency would be the buyer's wait. What they decide is checked at send time.
TOKEN_NOT_READ = None
TEST_CODE_NOT_READ = None


def skip_reason(
    destination: DestinationSettings,
    facts: ReportFacts,
    require_ad_consent: bool,
    now: int,
    access_token: str | None = TOKEN_NOT_READ,
    test_event_code: str | None = TEST_CODE_NOT_READ,
) -> SkipReason | None:
    """Why this purchase is not reported to this destination now, or None: report it.

    In order: the destination switched off (no token, no pixel), the buyer's consent, renewals
    not reported, a test-mode payment without a test event code, a payment past the maximum age.
    The token and the test event code are judged only where they were read (the sender and the
    redrive: "" is none); None means not read here."""
    if access_token is not None and not access_token:
        return SkipReason.NO_TOKEN
    too_old = SkipReason.TOO_OLD if past_max_age(destination, facts.event_time, now) else None
    return (
        _against_consent(facts.consent, require_ad_consent)
        or _not_configured(destination, facts, test_event_code)
        or too_old
    )


def _against_consent(consent: Consent, require_ad_consent: bool) -> SkipReason | None:
    if consent is Consent.DENIED:
        return SkipReason.CONSENT_DENIED
    if require_ad_consent and consent is not Consent.GRANTED:
        return SkipReason.CONSENT_MISSING
    return None


def _not_configured(
    destination: DestinationSettings, facts: ReportFacts, test_event_code: str | None
) -> SkipReason | None:
    if facts.kind is PurchaseKind.RENEWAL and not destination.renewal_event_name:
        return SkipReason.RENEWALS_OFF
    if not destination.pixel_id:
        return SkipReason.NO_PIXEL
    if not facts.livemode and test_event_code is not None and not test_event_code:
        return SkipReason.TEST_MODE  # a test-mode payment goes to Test Events only, never live
    return None


def past_max_age(destination: DestinationSettings, event_time: int, now: int) -> bool:
    """A payment older than the maximum age is not reported: the platform's attribution has moved
    on, or (Meta) it would refuse the request."""
    return now - event_time > destination.max_age_seconds
