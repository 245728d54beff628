"""Meta's Conversions API as a destination: its event built from the purchase (meta_payload.py),
and its POST to the Graph API (meta_api.py). The interface every destination module has
(destinations.py).

Meta requires `client_user_agent` for website events. A purchase without one (the merchant's
backend did not put the buyer's User-Agent in the session's `user_agent` metadata) is still sent,
as a website event with the keys it has: dropping it would lose a conversion the Pixel may have
missed. Its delivery record and the log say why it will match poorly (MetaMissingUserAgent).
"""

import httpx

from checkout_conversions import meta_api, meta_payload
from checkout_conversions.config import Settings
from checkout_conversions.currency import encode_json
from checkout_conversions.delivery import Outcome, Prepared
from checkout_conversions.observability import count, logger
from checkout_conversions.purchase import Content, Purchase

NO_USER_AGENT = (
    "no client_user_agent: Meta requires it for website events and will match this one poorly; "
    "put the buyer's User-Agent in the Checkout Session's user_agent metadata"
)


def prepare(
    purchase: Purchase, contents: list[Content] | None, settings: Settings, renewal: bool
) -> Prepared:
    """The request, and the names of the match keys it carries (renewals are TikTok's only)."""
    event = meta_payload.build_event(
        purchase, settings.meta_event_name, settings.default_phone_country, contents
    )
    body = meta_payload.build_request([event], settings.meta_test_event_code)
    note = None
    if meta_payload.missing_user_agent(event):
        note = NO_USER_AGENT
        count("MetaMissingUserAgent")
        logger.warning("Meta event without client_user_agent: it will match poorly", extra={"reason": note})
    return Prepared(encode_json(body), tuple(meta_payload.match_key_names(event)), note)


def post(client: httpx.Client, settings: Settings, access_token: str, body: bytes) -> Outcome:
    url = meta_api.events_url(settings.meta_api_base_url, settings.meta_api_version, settings.meta_pixel_id)
    return meta_api.post(client, url, access_token, body, settings.meta_timeout_seconds)
