"""TikTok as a destination: its event built from the purchase (tiktok_payload.py), and its POST
(tiktok_api.py). The interface every destination module has (destinations.py)."""

import json
from typing import Any

import httpx

from checkout_conversions import tiktok_api, tiktok_payload
from checkout_conversions.config import Settings
from checkout_conversions.currency import encode_json
from checkout_conversions.delivery import Outcome, Prepared
from checkout_conversions.observability import count, logger
from checkout_conversions.purchase import Content, Purchase


def prepare(
    purchase: Purchase, contents: list[Content] | None, settings: Settings, renewal: bool
) -> Prepared:
    """The request, and the names of the match keys it carries."""
    if purchase.currency and not tiktok_payload.supported_currency(purchase.currency):
        count("TikTokUnsupportedCurrency")
        logger.info(
            "Currency TikTok does not take: sent without value", extra={"currency": purchase.currency}
        )
    event = tiktok_payload.build_event(
        purchase,
        settings.renewal_event_name if renewal else settings.tiktok_event_name,
        settings.default_phone_country,
        contents,
        settings.tiktok_limited_data_use,
    )
    return _request(event, settings)


def prepare_stored(event_json: str, settings: Settings) -> Prepared:
    """A TikTok event stored whole before the outbox kept the purchase: sent as it was built."""
    return _request(json.loads(event_json), settings)


def _request(event: dict[str, Any], settings: Settings) -> Prepared:
    body = tiktok_payload.build_request([event], settings.tiktok_pixel_id, settings.tiktok_test_event_code)
    return Prepared(encode_json(body), tuple(tiktok_payload.match_key_names(event)))


def post(client: httpx.Client, settings: Settings, access_token: str, body: bytes) -> Outcome:
    return tiktok_api.post(
        client, settings.tiktok_api_url, access_token, body, settings.tiktok_timeout_seconds
    )
