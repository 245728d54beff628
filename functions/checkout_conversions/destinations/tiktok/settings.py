"""TikTok's settings, read from the environment (TIKTOK_*, and RENEWAL_EVENT_NAME: renewals are
reported to TikTok only)."""

from dataclasses import dataclass

from checkout_conversions.destinations.base import DestinationSettings
from checkout_conversions.secrets import SecretRef
from checkout_conversions.values import SettingsReader

DEFAULT_API_URL = "https://business-api.tiktok.com/open_api/v1.3/event/track/"


@dataclass(frozen=True)
class TikTokSettings(DestinationSettings):
    api_url: str = DEFAULT_API_URL
    limited_data_use: bool = False  # every event carries TikTok's limited_data_use flag
    default_phone_country: str = ""


def load(reader: SettingsReader, max_age_days: int) -> TikTokSettings:
    return TikTokSettings(
        name="tiktok",
        label="TikTok",
        pixel_id=reader.text("TIKTOK_PIXEL_ID"),
        test_event_code=SecretRef("TIKTOK_TEST_EVENT_CODE", reader.text("TIKTOK_TEST_EVENT_CODE_NAME")),
        access_token=SecretRef("TIKTOK_ACCESS_TOKEN", reader.text("TIKTOK_ACCESS_TOKEN_NAME")),
        event_name=reader.text("TIKTOK_EVENT_NAME", "CompletePayment"),
        # The deadline of one whole POST (connect, send, wait, read); the sender's Lambda timeout is 120 s.
        timeout_seconds=reader.seconds("TIKTOK_TIMEOUT_SECONDS", 5.0, minimum=0.1, maximum=10),
        max_age_days=max_age_days,
        reports_renewals=True,
        renewal_event_name=reader.text("RENEWAL_EVENT_NAME"),
        api_url=reader.text("TIKTOK_API_URL", DEFAULT_API_URL),
        limited_data_use=reader.flag("TIKTOK_LIMITED_DATA_USE"),
        default_phone_country=reader.text("DEFAULT_PHONE_COUNTRY").upper(),
    )
