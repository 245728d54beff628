"""The buyer the Meta payload and match-key tests share: every key Meta reads, and TikTok's that
Meta must never get."""

from checkout_conversions.purchase import Buyer

BUYER = Buyer(
    email="Jane.Doe@Example.com",
    phone="+1 (616) 954-78 88",
    first_name="José",
    last_name="O'Neil",
    zip_code="94035-1234",
    city="Menlo Park",
    state="CA",
    country="US",
    external_id="User-42",
    ip="203.0.113.7",
    user_agent="Mozilla/5.0 (iPhone)",
    fbp="fb.1.1558571054389.1098115397",
    fbc="fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890",
    ttclid="E.C.P.not-for-meta",
    ttp="not-for-meta",
    locale="en-US",
)
