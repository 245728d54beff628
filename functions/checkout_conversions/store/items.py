"""The one mapping between the ledger's types and DynamoDB items, legacy shapes included."""

# A delivery item is keyed `<session or invoice id>#<destination>`. Two older shapes are still read:
# an item under the bare session id with no `destination` is TikTok's (recorded before there were
# two destinations), and one holding `tiktok_event` (the built TikTok event) instead of `purchase`
# was stored before the outbox kept the platform-neutral purchase.

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from checkout_conversions.outbox.model import Delivery, DeliveryStatus, ReportFacts
from checkout_conversions.purchase import Consent, PurchaseKind
from checkout_conversions.values import iso

KEY = "session_id"
LEGACY_DESTINATION = "tiktok"
LEGACY_EVENT = "tiktok_event"
RENEWAL_KIND = "renewal"  # `delivery_kind` of a renewal's delivery; a checkout's has none
# What a delivery's last attempt left on its item; cleared when a new outcome has none of it.
OUTCOME_FIELDS = (
    "delivery_note",
    "delivery_code",
    "delivery_message",
    "delivery_request_id",
    "delivery_http_status",
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values to DynamoDB's typed JSON; None values are left out."""
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {key: _plain(_deserializer.deserialize(value)) for key, value in item.items()}


def expression_values(**values: Any) -> dict[str, Any]:
    return {f":{key}": _serializer.serialize(value) for key, value in values.items()}


def key_of(key: str) -> dict[str, Any]:
    return to_item({KEY: key})


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def delivery_item(delivery: Delivery) -> dict[str, Any]:
    """A new delivery's item (plain values)."""
    facts = delivery.facts
    return {
        KEY: delivery.key,
        "event_id": delivery.event_id,
        "destination": delivery.destination,
        "delivery_status": delivery.status.value,
        "delivery_reason": delivery.reason,
        "delivery_attempts": delivery.attempts,
        "delivery_kind": RENEWAL_KIND if facts.kind is PurchaseKind.RENEWAL else None,
        "event_time": facts.event_time,
        "livemode": facts.livemode,
        "ad_consent": facts.consent.value,
        "purchase": delivery.purchase_json,
        "redrive_queue": delivery.destination if delivery.next_attempt_at is not None else None,
        "next_attempt_at": delivery.next_attempt_at,
        "stripe_event_id": delivery.stripe_event_id,
        "event_type": delivery.event_type,
        "customer_id": delivery.customer_id,
        "provisioned_at": delivery.provisioned_at,
        "expires_at": delivery.expires_at,
    }


# What a replay rebuilds from Stripe's record when it reopens a delivery.
REBUILT_FIELDS = ("purchase", "event_time", "livemode", "ad_consent", "delivery_kind")


def reopened_fields(rebuilt: Delivery, now: int) -> tuple[dict[str, Any], list[str]]:
    """What reopening a delivery for a replay sets (plain values) and removes: pending, due now,
    attempts from zero, with `rebuilt`'s purchase and facts."""
    fresh = delivery_item(rebuilt)
    sets = {name: fresh[name] for name in REBUILT_FIELDS if fresh[name] is not None}
    sets.update(
        {
            "delivery_status": DeliveryStatus.PENDING.value,
            "delivery_attempts": 0,
            "redrive_queue": rebuilt.destination,
            "next_attempt_at": now,
            "delivery_updated_at": iso(now),
            "delivery_replayed_at": iso(now),
        }
    )
    removes = [
        "delivery_retryable",
        "delivery_reason",
        *(name for name in REBUILT_FIELDS if name not in sets),
    ]
    return sets, removes


def delivery_from(values: dict[str, Any] | None) -> Delivery | None:
    """The delivery an item (plain values) holds, or None for anything else (a marker)."""
    if not values or "delivery_status" not in values:
        return None
    try:
        status = DeliveryStatus(values["delivery_status"])
    except ValueError:
        return None
    key = str(values[KEY])
    destination = values.get("destination") or LEGACY_DESTINATION
    event_id = values.get("event_id") or key.removesuffix(f"#{destination}")
    return Delivery(
        key=key,
        event_id=str(event_id),
        destination=str(destination),
        status=status,
        facts=ReportFacts(
            kind=PurchaseKind.RENEWAL
            if values.get("delivery_kind") == RENEWAL_KIND
            else PurchaseKind.CHECKOUT,
            livemode=values.get("livemode") is True,
            event_time=_int(values.get("event_time")),
            consent=Consent.parse(values.get("ad_consent")),
        ),
        attempts=_int(values.get("delivery_attempts")),
        purchase_json=_str(values.get("purchase")),
        stored_event=_str(values.get(LEGACY_EVENT)),
        reason=_str(values.get("delivery_reason")),
        claim_token=_str(values.get("claim_token")),
        next_attempt_at=values.get("next_attempt_at")
        if isinstance(values.get("next_attempt_at"), int)
        else None,
        stripe_event_id=_str(values.get("stripe_event_id")),
        event_type=_str(values.get("event_type")),
        customer_id=_str(values.get("customer_id")),
        provisioned_at=_str(values.get("provisioned_at")),
        expires_at=values.get("expires_at") if isinstance(values.get("expires_at"), int) else None,
        replayed_at=_str(values.get("delivery_replayed_at")),
    )


def announced(stream_record: object) -> tuple[str, str] | None:
    """The key and destination of a new pending delivery a stream record carries (an INSERT), read
    from its raw typed image so that no shape of record can make this fail; None for any other."""
    record = stream_record if isinstance(stream_record, dict) else {}
    stream = record.get("dynamodb")
    image = stream.get("NewImage") if isinstance(stream, dict) else None
    if record.get("eventName") != "INSERT" or not isinstance(image, dict):
        return None
    if image.get("delivery_status") != {"S": DeliveryStatus.PENDING.value}:
        return None
    key = _typed_text(image.get(KEY))
    destination = _typed_text(image["destination"]) if "destination" in image else LEGACY_DESTINATION
    if key is None or destination is None:
        return None
    return key, destination


def _typed_text(value: object) -> str | None:
    text = value.get("S") if isinstance(value, dict) else None
    return text if isinstance(text, str) and text else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
