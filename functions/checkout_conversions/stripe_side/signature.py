"""Verifying a webhook: the Stripe-Signature header on the raw body, and the event it carries."""

# The header's shape and age are checked first, without any secret (`read_header`): a request that
# does not even look like a recent Stripe delivery costs no secret read.

import json
from dataclasses import dataclass
from typing import Any

import stripe

SIGNATURE_TOLERANCE_SECONDS = 300
MISSING = "missing Stripe-Signature header"
MALFORMED = "malformed Stripe-Signature header"
TOO_OLD = "signature timestamp too old"


class InvalidSignature(Exception):
    pass


class MalformedEvent(Exception):
    pass


@dataclass(frozen=True)
class SignatureHeader:
    """`t=<unix seconds>,v1=<hex>[,v1=<hex>...]` (test mode adds a `v0=`, which is ignored)."""

    timestamp: int
    signatures: tuple[str, ...]


def read_header(header: str | None, now: float) -> SignatureHeader:
    """The header's timestamp and v1 signatures, checked without a secret: present, ASCII (the
    signatures are compared as ASCII text), well formed, and not older than the tolerance."""
    if not header:
        raise InvalidSignature(MISSING)
    parsed = _parse_header(header) if header.isascii() else None
    if parsed is None:
        raise InvalidSignature(MALFORMED)
    if parsed.timestamp < now - SIGNATURE_TOLERANCE_SECONDS:
        raise InvalidSignature(TOO_OLD)
    return parsed


def _parse_header(header: str) -> SignatureHeader | None:
    pairs = [item.partition("=") for item in header.split(",")]
    timestamps = [value for key, _, value in pairs if key == "t"]
    signatures = tuple(value for key, _, value in pairs if key == "v1" and value)
    if not timestamps or not timestamps[0].isdigit() or not signatures:
        return None
    return SignatureHeader(int(timestamps[0]), signatures)


def verify_event(payload: bytes, signature_header: str | None, secrets: list[str]) -> dict[str, Any]:
    """The event as plain JSON data, once any one of `secrets` signed these exact bytes recently."""
    if not signature_header:
        raise InvalidSignature(MISSING)
    last_error: stripe.SignatureVerificationError | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature_header, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
            )
            break
        except stripe.SignatureVerificationError as error:
            # One secret matching a stale timestamp explains more than another not matching.
            if last_error is None or "tolerance" not in str(last_error):
                last_error = error
        except UnicodeDecodeError:
            raise MalformedEvent("body is not UTF-8") from None
    else:
        raise InvalidSignature(_describe(last_error))
    return _parse(payload)


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        event = json.loads(payload)
        # JSON may escape lone UTF-16 surrogates ("\\ud800") that no UTF-8 store or log can hold.
        json.dumps(event, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        raise MalformedEvent("body is not JSON") from None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
    ):
        raise MalformedEvent("not a Stripe event")
    return event


def _describe(error: stripe.SignatureVerificationError | None) -> str:
    message = str(error or "")
    if "tolerance" in message:
        return TOO_OLD
    if "extract" in message or "scheme" in message:
        return MALFORMED
    return "signature does not match"
