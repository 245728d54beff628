"""Meta's settings, read from the environment (META_*)."""

from dataclasses import dataclass

from checkout_conversions.destinations.base import DestinationSettings
from checkout_conversions.secrets import SecretRef
from checkout_conversions.values import SettingsReader

DEFAULT_API_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v24.0"
# Meta refuses a whole request holding an event older than 7 days.
MAX_AGE_DAYS = 7


@dataclass(frozen=True)
class MetaSettings(DestinationSettings):
    api_base_url: str = DEFAULT_API_BASE_URL
    api_version: str = DEFAULT_API_VERSION
    default_phone_country: str = ""

    @property
    def events_url(self) -> str:
        return f"{self.api_base_url.rstrip('/')}/{self.api_version}/{self.pixel_id}/events"


def load(reader: SettingsReader, max_age_days: int) -> MetaSettings:
    return MetaSettings(
        name="meta",
        label="Meta",
        pixel_id=reader.text("META_PIXEL_ID"),
        test_event_code=SecretRef("META_TEST_EVENT_CODE", reader.text("META_TEST_EVENT_CODE_NAME")),
        access_token=SecretRef("META_ACCESS_TOKEN", reader.text("META_ACCESS_TOKEN_NAME")),
        event_name=reader.text("META_EVENT_NAME", "Purchase"),
        timeout_seconds=reader.seconds("META_TIMEOUT_SECONDS", 5.0, minimum=0.1, maximum=10),
        max_age_days=min(max_age_days, MAX_AGE_DAYS),
        api_base_url=reader.text("META_API_BASE_URL").rstrip("/") or DEFAULT_API_BASE_URL,
        api_version=reader.text("META_API_VERSION", DEFAULT_API_VERSION),
        default_phone_country=reader.text("DEFAULT_PHONE_COUNTRY").upper(),
    )
