"""What was bought: CONTENT_ID_SOURCE and Stripe's line items to the platform-neutral contents
(purchase.ContentIdSource, stripe_side/line_items.py).

Items are built in Stripe's own shape (devtools.stripe_standin.line_item); reading them over HTTP
is covered by the integration tests against the stand-in.
"""

import pytest

from checkout_conversions.purchase import Content, ContentIdKind, ContentIdSource
from checkout_conversions.stripe_side.line_items import _content
from devtools.stripe_standin import line_item

PRICE = ContentIdSource(ContentIdKind.PRICE)
PRODUCT = ContentIdSource(ContentIdKind.PRODUCT)
SKU = ContentIdSource(ContentIdKind.METADATA, "sku")

# ---------------------------------------------------------------- ContentIdSource


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("price", PRICE),
        ("product", PRODUCT),
        (" product ", PRODUCT),
        ("metadata:sku", SKU),
        ("metadata: sku ", SKU),
        ("metadata:catalog_id", ContentIdSource(ContentIdKind.METADATA, "catalog_id")),
        (
            "metadata:SKU",
            ContentIdSource(ContentIdKind.METADATA, "SKU"),
        ),  # Stripe's metadata keys are case-sensitive
        # The kind is read in any case (it was the setting's reader that lower-cased it): "PRICE" was
        # a bad value to the old parse, which only ever saw lower-cased settings.
        ("PRICE", PRICE),
    ],
)
def test_content_id_source_parse(setting, expected):
    assert ContentIdSource.parse(setting) == expected


@pytest.mark.parametrize(
    "setting",
    [
        "",
        "sku",
        "prices",
        "price:x",
        "product:id",
        "metadata",
        "metadata:",
        "metadata:  ",
        "lookup_key",
    ],
    ids=repr,
)
def test_content_id_source_bad_values_raise(setting):
    with pytest.raises(ValueError, match="price, product or metadata"):
        ContentIdSource.parse(setting)


# ---------------------------------------------------------------- _content


TEE = line_item(
    "price_Tee001", "prod_Tee001", "T-shirt", quantity=2, unit_amount=1499, metadata={"sku": "TEE-M"}
)


@pytest.mark.parametrize(
    ("source", "content_id"),
    [(PRICE, "price_Tee001"), (PRODUCT, "prod_Tee001"), (SKU, "TEE-M")],
    ids=["price", "product", "metadata:sku"],
)
def test_content_from_a_stripe_line_item(source, content_id):
    assert _content(TEE, source) == Content(
        content_id=content_id, content_name="T-shirt", quantity=2, unit_amount=1499, currency="USD"
    )


@pytest.mark.parametrize(
    "metadata",
    [{}, {"colour": "red"}, {"sku": ""}],
    ids=["none", "other-key", "empty"],
)
def test_product_without_the_metadata_key_falls_back_to_the_price_id(metadata):
    item = line_item("price_Mug001", "prod_Mug001", "Mug", metadata=metadata)
    assert _content(item, SKU).content_id == "price_Mug001"


def test_metadata_key_is_matched_exactly():
    item = line_item("price_Mug001", "prod_Mug001", "Mug", metadata={"SKU": "MUG-1"})
    assert _content(item, ContentIdSource(ContentIdKind.METADATA, "SKU")).content_id == "MUG-1"
    assert _content(item, SKU).content_id == "price_Mug001"


def test_unexpanded_product_id_string():
    item = line_item("price_Mug001", "prod_Mug001", "Mug", quantity=1, unit_amount=999)
    item["price"]["product"] = "prod_Mug001"  # price.product not expanded: just the id
    assert _content(item, PRODUCT) == Content("prod_Mug001", "Mug", 1, 999, "USD")  # name from description
    assert _content(item, PRICE).content_id == "price_Mug001"
    assert _content(item, SKU).content_id == "price_Mug001"  # no metadata to read


def test_missing_unit_amount_uses_the_subtotal_per_unit():
    # Custom amounts ("pay what you want") and tiered prices have no unit_amount.
    item = line_item("price_Gift001", "prod_Gift001", "Gift", quantity=3, unit_amount=1000)
    item["price"]["unit_amount"] = None
    item["price"]["unit_amount_decimal"] = None
    item["price"]["custom_unit_amount"] = {"minimum": 500, "maximum": 10000, "preset": 1000}
    assert item["amount_subtotal"] == 3000
    assert _content(item, PRICE).unit_amount == 1000


def test_no_unit_amount_and_no_subtotal_gives_no_price():
    item = line_item("price_Gift001", "prod_Gift001", "Gift")
    item["price"]["unit_amount"] = None
    del item["amount_subtotal"]
    assert _content(item, PRICE).unit_amount is None


@pytest.mark.parametrize("quantity", [None, 0, -1, "2"], ids=repr)
def test_missing_or_odd_quantity_counts_as_one(quantity):
    item = line_item("price_Tee001", "prod_Tee001", "T-shirt", quantity=1, unit_amount=1499)
    if quantity is None:
        del item["quantity"]
    else:
        item["quantity"] = quantity
    content = _content(item, PRICE)
    assert content.quantity == 1
    assert content.unit_amount == 1499


def test_missing_quantity_and_unit_amount_use_the_whole_subtotal():
    item = line_item("price_Gift001", "prod_Gift001", "Gift", quantity=1, unit_amount=2500)
    del item["quantity"]
    item["price"]["unit_amount"] = None
    assert (_content(item, PRICE).quantity, _content(item, PRICE).unit_amount) == (1, 2500)


@pytest.mark.parametrize(
    ("currency", "unit_amount", "expected_currency"),
    [("usd", 1499, "USD"), ("jpy", 1500, "JPY"), ("kwd", 2500, "KWD"), ("EUR", 999, "EUR")],
)
def test_currency_is_upper_cased_and_the_amount_stays_in_minor_units(
    currency, unit_amount, expected_currency
):
    item = line_item("price_X", "prod_X", "X", unit_amount=unit_amount, currency=currency)
    content = _content(item, PRICE)
    assert (content.currency, content.unit_amount) == (expected_currency, unit_amount)


def test_currency_from_the_price_when_the_item_has_none():
    item = line_item("price_X", "prod_X", "X", currency="gbp")
    del item["currency"]
    assert _content(item, PRICE).currency == "GBP"


def test_product_name_wins_over_the_description():
    item = line_item("price_X", "prod_X", "Product name")
    item["description"] = "Line description"
    assert _content(item, PRICE).content_name == "Product name"
    item["price"]["product"]["name"] = ""
    assert _content(item, PRICE).content_name == "Line description"


def test_item_without_a_price():
    item = {"id": "li_1", "object": "item", "description": "Something", "quantity": 1, "currency": "usd"}
    assert _content(item, PRODUCT) == Content(None, "Something", 1, None, "USD")


class _Pages:
    """Stands in for `client.v1.checkout.sessions.line_items`: pages of Stripe objects, and a clock
    that moves by `seconds_per_page` at each request."""

    def __init__(self, pages, clock, seconds_per_page):
        self._pages, self._clock, self._step = pages, clock, seconds_per_page
        self.requests = []

    def list(self, session_id, params):
        import stripe

        self.requests.append(dict(params))
        self._clock[0] += self._step
        index = len(self.requests) - 1
        return stripe.StripeObject.construct_from(
            {"object": "list", "data": self._pages[index], "has_more": index + 1 < len(self._pages)},
            "rk_test",
        )


def _client_with(pages, clock, seconds_per_page):
    from types import SimpleNamespace

    line_items_api = _Pages(pages, clock, seconds_per_page)
    client = SimpleNamespace(
        v1=SimpleNamespace(checkout=SimpleNamespace(sessions=SimpleNamespace(line_items=line_items_api)))
    )
    return client, line_items_api


def _pages(count, per_page=2):
    return [
        [line_item(f"price_{page}_{n}", f"prod_{page}_{n}", f"Item {page}.{n}") for n in range(per_page)]
        for page in range(count)
    ]


def test_every_page_is_read_each_after_the_last_item_of_the_one_before(monkeypatch):
    from checkout_conversions.stripe_side import line_items

    clock = [0.0]
    monkeypatch.setattr(line_items.time, "monotonic", lambda: clock[0])
    client, api = _client_with(_pages(3), clock, seconds_per_page=0.1)

    items = line_items.read_line_items(client, "cs_test_1", ContentIdSource.parse("price"), timeout_seconds=1)

    assert [item.content_id for item in items] == [f"price_{p}_{n}" for p in range(3) for n in range(2)]
    assert [request.get("starting_after") for request in api.requests] == [None, "li_0_1_1", "li_1_1_1"]
    assert all(
        request["limit"] == 100 and request["expand"] == ["data.price.product"] for request in api.requests
    )


def test_a_read_that_runs_out_of_time_between_pages_is_unavailable_not_partial(monkeypatch):
    """A slow Stripe must not hold the sender past its budget, nor send half a basket as the whole."""
    from checkout_conversions.stripe_side import line_items

    clock = [0.0]
    monkeypatch.setattr(line_items.time, "monotonic", lambda: clock[0])
    client, api = _client_with(_pages(5), clock, seconds_per_page=1.5)

    with pytest.raises(line_items.StripeApiUnavailable, match="not in time"):
        line_items.read_line_items(client, "cs_test_1", ContentIdSource.parse("price"), timeout_seconds=1)
    assert len(api.requests) == 2  # no further page is asked for once 2 timeouts have passed
