"""Verifying a webhook: the Stripe-Signature header on the raw body, and the event it carries."""

import json
from typing import Any

import stripe

SIGNATURE_TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    pass


class MalformedEvent(Exception):
    pass


def verify_event(payload: bytes, signature_header: str | None, secrets: list[str]) -> dict[str, Any]:
    """The event as plain JSON data, once any one of `secrets` signed these exact bytes recently."""
    if not signature_header:
        raise InvalidSignature("missing Stripe-Signature header")
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
        return "signature timestamp too old"
    if "extract" in message or "scheme" in message:
        return "malformed Stripe-Signature header"
    return "signature does not match"
