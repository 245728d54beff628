"""Stripe's side: verifying a webhook and deciding what a checkout event asks of us.

Knows nothing of TikTok or DynamoDB.
"""

import json
from dataclasses import dataclass
from typing import Any

import stripe

from checkout_conversions.config import SIGNATURE_TOLERANCE_SECONDS

PROVISIONING_PAYMENT_STATUSES = frozenset({"paid", "no_payment_required"})
COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
_YEAR_3000 = 32503680000


class InvalidSignature(Exception):
    pass


class MalformedEvent(Exception):
    pass


def verify_event(payload: bytes, signature_header: str | None, secrets: list[str]) -> dict[str, Any]:
    """The event as plain JSON data, once any one of `secrets` signed these exact bytes recently."""
    if not signature_header:
        raise InvalidSignature("missing Stripe-Signature header")
    last_error = None
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

    try:
        event = json.loads(payload)
        # JSON may escape lone UTF-16 surrogates ("\ud800") that no UTF-8 store or log can hold.
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


@dataclass(frozen=True)
class Decision:
    provision: bool
    reason: str
    session: dict[str, Any] | None = None


def decide(event: dict[str, Any]) -> Decision:
    """Whether this event fulfils a checkout session, and why (not)."""
    event_type = event["type"]
    if event_type == ASYNC_FAILED:
        return Decision(False, "async payment failed: nothing to fulfil")
    if event_type not in (COMPLETED, ASYNC_SUCCEEDED):
        return Decision(False, f"event type {event_type} is not handled")

    data = event.get("data")
    session = data.get("object") if isinstance(data, dict) else None
    if not isinstance(session, dict) or not _is_checkout_session_id(session.get("id")):
        raise MalformedEvent("event carries no checkout session")
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 < created < _YEAR_3000:
        raise MalformedEvent("event has no valid created time")

    mode = session.get("mode")
    if mode == "setup":
        return Decision(False, "setup mode sessions collect no payment", session)
    payment_status = session.get("payment_status")
    if event_type == COMPLETED and (
        not isinstance(payment_status, str) or payment_status not in PROVISIONING_PAYMENT_STATUSES
    ):
        return Decision(False, f"payment_status is {payment_status}: waiting for async payment", session)
    return Decision(True, "paid", session)


def _is_checkout_session_id(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("cs_") and 3 < len(value) <= 255
