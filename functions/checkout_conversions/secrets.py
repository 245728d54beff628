"""The secrets: read from environment variables, SSM Parameter Store or Secrets Manager, with a
short per-container cache, so that clearing a platform's token in the store switches that
destination off without a deploy. A token the platform refuses is read again at once, past the"""

# cache (`fresh`), so that a rotation takes effect with the first refusal.

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Values that mean "no token" where the store cannot hold an empty string (SSM parameters).
_DISABLED_VALUES = frozenset({"", "disabled", "none", "off", "-"})


class ConfigurationError(Exception):
    """The deployment is misconfigured: answer 500 and log loudly, never accept an event."""


class SecretSource(StrEnum):
    ENV = "env"
    SSM = "ssm"
    SECRETS_MANAGER = "secretsmanager"


@dataclass(frozen=True)
class SecretStore:
    """Where this deployment keeps its secrets, and how long a container may cache one."""

    source: SecretSource = SecretSource.ENV
    cache_seconds: int = 300


@dataclass(frozen=True)
class SecretRef:
    """Where one secret lives: an environment variable (SECRETS_SOURCE=env), or the name of its
    SSM parameter or Secrets Manager secret."""

    variable: str
    stored_name: str


def read(ref: SecretRef, store: SecretStore, environ: Mapping[str, str], fresh: bool = False) -> str:
    """The secret, from this container's cache when it holds one younger than the store's cache
    age; `fresh` drops the cached value and reads it from the store now (a token the platform
    refused: it may have been rotated a moment ago), caching what it reads."""
    if store.source is SecretSource.ENV:
        return environ.get(ref.variable, "")
    if not ref.stored_name:
        raise ConfigurationError(f"{ref.variable}_NAME must name the {store.source} entry")
    if fresh:
        return _read_stored(store.source, ref.stored_name, store.cache_seconds, force_fetch=True)
    return _read_stored(store.source, ref.stored_name, store.cache_seconds)


def read_switch(ref: SecretRef, store: SecretStore, environ: Mapping[str, str], fresh: bool = False) -> str:
    """A secret whose absence switches something off (a platform's token, the Stripe API key):
    "" when unset, empty, or a value like 'disabled'."""
    value = read(ref, store, environ, fresh).strip()
    return "" if value.lower() in _DISABLED_VALUES else value


def read_optional(ref: SecretRef, store: SecretStore, environ: Mapping[str, str], fresh: bool = False) -> str:
    """As read_switch, for a setting a deployment may leave without a stored entry (a platform's
    test event code, the Stripe API key): with a store and no name, "" (none)."""
    if store.source is not SecretSource.ENV and not ref.stored_name:
        return ""
    return read_switch(ref, store, environ, fresh)


_providers: dict[SecretSource, Any] = {}


def _read_stored(source: SecretSource, name: str, max_age: int, force_fetch: bool = False) -> str:
    # Imported here: with plain environment variables (the default) the Parameters utility and its
    # clients are never needed, so they stay off the cold-start path.
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    provider = _providers.get(source) or _providers.setdefault(source, _new_provider(source))
    try:
        if source is SecretSource.SSM:
            value = provider.get(name, decrypt=True, max_age=max_age, force_fetch=force_fetch)
        else:
            value = provider.get(name, max_age=max_age, force_fetch=force_fetch)
    except GetParameterError as error:
        raise ConfigurationError(f"cannot read {source} entry {name!r}: {error}") from None
    return value if isinstance(value, str) else ""


def _new_provider(source: SecretSource) -> Any:
    """A provider (and its cache) per container, with the same bounded timeouts and retries as
    the DynamoDB client: botocore's defaults (60 s connect, 60 s read) would outlast the webhook."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

    from checkout_conversions.aws import AWS_CLIENT_CONFIG

    if source is SecretSource.SSM:
        return SSMProvider(boto_config=AWS_CLIENT_CONFIG)
    return SecretsProvider(boto_config=AWS_CLIENT_CONFIG)
