"""The registry: the one place that names every platform."""

# Each platform is one folder (`tiktok/`, `meta/`) with its settings, match keys, payload and
# answers. Its settings are read here for every flow; its send side (`client.py`, with httpx and the
# match-key rules) is imported only when the outbox asks for it, so the webhook never loads it.
# Adding a platform: a folder with `settings.py` (`load`) and `client.py` (`platform`), a line in
# each table below, and its parameters, schedule and alarms in template.yaml.

import importlib
from collections.abc import Callable

from checkout_conversions.destinations.base import DestinationSettings, Platform
from checkout_conversions.destinations.meta import settings as meta_settings
from checkout_conversions.destinations.tiktok import settings as tiktok_settings
from checkout_conversions.values import SettingsReader

_LOADERS: tuple[Callable[[SettingsReader, int], DestinationSettings], ...] = (
    tiktok_settings.load,
    meta_settings.load,
)
_CLIENTS = {
    "tiktok": "checkout_conversions.destinations.tiktok.client",
    "meta": "checkout_conversions.destinations.meta.client",
}


def load_all(reader: SettingsReader, max_age_days: int) -> tuple[DestinationSettings, ...]:
    """Every platform's settings, configured (pixel set) or not."""
    return tuple(load(reader, max_age_days) for load in _LOADERS)


def platform(destination: DestinationSettings, test_event_code: str = "") -> Platform:
    """The send side of a destination, its module imported on first use; its requests carry the
    test event code read at send time ("": none)."""
    module = importlib.import_module(_CLIENTS[destination.name])
    built: Platform = module.platform(destination, test_event_code)
    return built
