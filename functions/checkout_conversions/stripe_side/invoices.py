"""A subscription's paid invoice, read for the subscription record and mapped to a renewal's
platform-neutral purchase."""

from typing import Any

from checkout_conversions.purchase import Buyer, Purchase
from checkout_conversions.stripe_side.checkout import (
    ADDRESS_LIMIT,
    MAX_AMOUNT,
    NAME_LIMIT,
    country,
    currency,
    normalise_email,
    person_names,
)
from checkout_conversions.values import epoch, mapping, text, whole_number

RENEWAL_BILLING_REASON = "subscription_cycle"


def billing_reason(invoice: dict[str, Any]) -> str | None:
    reason = invoice.get("billing_reason")
    return reason if isinstance(reason, str) else None


def is_renewal(invoice: dict[str, Any]) -> bool:
    """A renewal's invoice, never the subscription_create invoice of the first payment, which the
    checkout already reported."""
    return billing_reason(invoice) == RENEWAL_BILLING_REASON


def paid_through(invoice: dict[str, Any]) -> int | None:
    """The latest end of the periods the invoice's lines pay for (epoch seconds), if any."""
    data = mapping(invoice.get("lines")).get("data")
    ends = [
        end
        for line in (data if isinstance(data, list) else [])
        if (end := epoch(mapping(mapping(line).get("period")).get("end"))) is not None
    ]
    return max(ends) if ends else None


def paid_at(invoice: dict[str, Any], event_created: int) -> int:
    return epoch(mapping(invoice.get("status_transitions")).get("paid_at")) or event_created


def renewal_purchase(invoice: dict[str, Any], event_time: int, external_id: str | None) -> Purchase:
    """A paid renewal invoice as a platform-neutral purchase: the buyer as the invoice names them,
    and the external id of the original purchase (kept on the subscription record), so that the
    ad platform joins the two."""
    address = mapping(invoice.get("customer_address"))
    first_name, last_name = person_names({"name": invoice.get("customer_name")})
    return Purchase(
        event_id=invoice["id"],
        event_time=event_time,
        order_id=invoice["id"],
        amount=whole_number(invoice.get("amount_paid"), MAX_AMOUNT),
        currency=currency(invoice.get("currency")),
        buyer=Buyer(
            email=normalise_email(invoice.get("customer_email")),
            phone=text(invoice.get("customer_phone"), NAME_LIMIT),
            first_name=first_name,
            last_name=last_name,
            zip_code=text(address.get("postal_code"), ADDRESS_LIMIT),
            city=text(address.get("city"), ADDRESS_LIMIT),
            state=text(address.get("state"), ADDRESS_LIMIT),
            country=country(address.get("country")),
            external_id=text(external_id) or text(invoice.get("customer")),
        ),
    )
