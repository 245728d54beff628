"""TikTok's match keys: its normalisation before SHA-256 (tiktok-events-api.md, "Normalisation"),
destinations/tiktok/match_keys.py with the shared E.164 and SHA-256 helpers it builds on.

Every expected digest is computed here with hashlib from the normalised string the rule gives, so
the tables show the rule itself: raw value -> normalised string -> SHA-256 of it.
"""

import hashlib

import pytest

from checkout_conversions.destinations.match_keys import (
    e164_phone,
    hashed,
    hashed_email,
    hashed_external_id,
    is_sha256_hex,
)
from checkout_conversions.destinations.tiktok.match_keys import (
    hashed_name,
    hashed_phone,
    hashed_zip_code,
    location,
)


def sha(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("raw", "region", "normalised"),
    [
        # United States: with and without the country code, and with the trunk prefix 1
        ("+1 (415) 555-0123", None, "+14155550123"),
        ("+14155550123", None, "+14155550123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("415-555-0123", "us", "+14155550123"),
        ("1 415 555 0123", "US", "+14155550123"),
        ("011 44 20 7946 0958", "US", "+442079460958"),  # the US international prefix 011
        # United Kingdom: the trunk 0 goes
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("0044 20 7946 0958", "GB", "+442079460958"),
        ("07911 123456", "GB", "+447911123456"),
        # Germany: a mobile number 0151..., the trunk 0 goes
        ("0151 23456789", "DE", "+4915123456789"),
        ("+49 151 23456789", None, "+4915123456789"),
        ("030 123456", "DE", "+4930123456"),
        # France: a mobile number 06..., the trunk 0 goes
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("0612345678", "FR", "+33612345678"),
        # Russia: the trunk prefix is 8, not 0
        ("8 912 345-67-89", "RU", "+79123456789"),
        ("8 (912) 345-67-89", "RU", "+79123456789"),
        ("89123456789", "RU", "+79123456789"),
        ("+7 912 345-67-89", None, "+79123456789"),
        # Italy: the leading 0 is part of the number and stays
        ("06 1234 5678", "IT", "+390612345678"),
        ("+39 06 1234 5678", None, "+390612345678"),
        # Canada shares +1
        ("(613) 555-0199", "CA", "+16135550199"),
        # A country code wins over the region: the region is only for national numbers
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("+1 212 555 0100", "GB", "+12125550100"),
        ("+39 06 1234 5678", "DE", "+390612345678"),
    ],
)
def test_phone_to_e164_with_plus_then_hashed(raw, region, normalised):
    assert e164_phone(raw, region) == normalised
    assert hashed_phone(raw, region) == sha(normalised)


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        # No country code and no region: dropped, never guessed
        ("415 555 0123", None),
        ("415 555 0123", ""),
        ("020 7946 0958", None),
        ("415 555 0123", "ZZ"),  # not a region
        # A national number that is not valid in the buyer's region
        ("020 7946 0958", "US"),
        ("0151 23456789", "FR"),
        # Too short, too long
        ("12345", "US"),
        ("555-0123", "US"),  # a US number has 10 digits after +1
        ("+44", "US"),
        ("+12", None),
        ("+1 415 555 01234", None),
        # Letters, no number at all
        ("call me", "US"),
        ("abc", "US"),
        ("n/a", "GB"),
        ("none", "US"),
        # Nothing usable
        ("", "US"),
        ("   ", "US"),
        ("+", "US"),
        ("-", "US"),
        ("000", "US"),
        (None, "US"),
        (14155550123, "US"),
    ],
    ids=repr,
)
def test_invalid_phone_is_dropped(raw, region):
    assert e164_phone(raw, region) is None
    assert hashed_phone(raw, region) is None


# ---------------------------------------------------------------- first_name, last_name


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Jane", "jane"),
        ("JANE", "jane"),
        ("  Jane\t", "jane"),
        ("José", "josé"),  # accents are kept, only lower-cased
        ("JOSÉ", "josé"),
        ("Zoë", "zoë"),
        ("Jean-Luc", "jean-luc"),  # hyphens are kept
        ("O'Brien", "o'brien"),
        ("Mary Ann", "maryann"),  # several words: the whitespace between them goes
        ("Van  Der\u00a0Berg", "vanderberg"),  # inner runs of spaces and a no-break space
        (" de la Cruz ", "delacruz"),
    ],
)
def test_name_is_lowercased_whitespace_removed_and_hashed(raw, normalised):
    assert hashed_name(raw) == sha(normalised)


# ---------------------------------------------------------------- zip_code


@pytest.mark.parametrize(
    ("raw", "country", "normalised"),
    [
        # United States: ZIP+4 keeps its first five digits
        ("94107", "US", "94107"),
        ("94107-1234", "US", "94107"),
        ("941071234", "US", "94107"),
        (" 94107-1234 ", "US", "94107"),
        ("94107 1234", "US", "94107"),
        ("94107-1234", "us", "94107"),
        ("9410", "US", "9410"),  # not a ZIP: only normalised
        # Elsewhere the same digits are not a ZIP+4 and are kept whole
        ("94107-1234", "GB", "94107-1234"),
        ("941071234", "DE", "941071234"),
        ("94107-1234", None, "94107-1234"),
        # United Kingdom and Canada: lower-cased, the space removed
        ("SW1A 1AA", "GB", "sw1a1aa"),
        ("sw1a1aa", "GB", "sw1a1aa"),
        (" EC1A  1BB ", "GB", "ec1a1bb"),
        ("K1A 0B1", "CA", "k1a0b1"),
        # Germany, France: five digits as they are
        ("10115", "DE", "10115"),
        ("75008", "FR", "75008"),
    ],
)
def test_zip_code_is_normalised_and_hashed(raw, country, normalised):
    assert hashed_zip_code(raw, country) == sha(normalised)


# ---------------------------------------------------------------- city, state, country


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("New York", "newyork"),
        ("NEW YORK", "newyork"),
        ("San Francisco", "sanfrancisco"),
        ("São Paulo", "sãopaulo"),  # accented letters are letters: kept
        ("Île-de-France", "îledefrance"),  # hyphens go
        ("St. John's", "stjohns"),
        ("  Köln  ", "köln"),
        ("CA", "ca"),  # a state code
        ("California", "california"),  # a state name: not turned into a code
        ("US", "us"),
        ("75", "75"),  # digits stay (French departments, numbered regions)
    ],
)
def test_city_state_country_are_lowercased_letters_and_digits_not_hashed(raw, expected):
    assert location(raw) == expected
    assert not is_sha256_hex(location(raw))


# ---------------------------------------------------------------- already hashed


DIGEST = sha("already hashed by the merchant")


@pytest.mark.parametrize(
    "hasher",
    [
        hashed_email,
        hashed_phone,
        hashed_external_id,
        hashed_name,
        hashed_zip_code,
        hashed,
    ],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize(
    "raw", [DIGEST, DIGEST.upper(), f"  {DIGEST.upper()}\n"], ids=["lower", "upper", "padded"]
)
def test_an_existing_sha256_passes_through_lowercased(hasher, raw):
    if hasher is hashed:
        raw = raw.strip()  # hashed() takes an already normalised value
    assert hasher(raw) == DIGEST


def test_an_existing_sha256_is_not_shortened_as_a_us_zip():
    assert hashed_zip_code(DIGEST, "US") == DIGEST


# ---------------------------------------------------------------- empty values


EMPTY_VALUES = [None, "", " ", "   ", "\t\n", "\u00a0"]


@pytest.mark.parametrize(
    "normalise",
    [
        hashed_email,
        lambda raw: hashed_phone(raw, "US"),
        hashed_phone,
        hashed_external_id,
        hashed_name,
        lambda raw: hashed_zip_code(raw, "US"),
        hashed_zip_code,
        location,
    ],
    ids=["email", "phone-US", "phone", "external_id", "name", "zip-US", "zip", "location"],
)
@pytest.mark.parametrize("raw", EMPTY_VALUES, ids=repr)
def test_empty_values_are_never_hashed(normalise, raw):
    assert normalise(raw) is None


@pytest.mark.parametrize("raw", ["---", " . ", "''"], ids=repr)
def test_location_of_punctuation_only_is_dropped(raw):
    assert location(raw) is None


# ---------------------------------------------------------------- digests


def test_digests_are_lowercase_hex():
    digests = (
        hashed_email("Jane.Doe@Example.com"),
        hashed_phone("+1 415 555 0123"),
        hashed_external_id("X"),
        hashed_name("JOSÉ"),
        hashed_zip_code("SW1A 1AA", "GB"),
    )
    for digest in digests:
        assert digest is not None
        assert len(digest) == 64
        assert digest == digest.lower()
        int(digest, 16)


@pytest.mark.parametrize(
    ("composed", "decomposed"),
    [("José", "Jose\u0301"), ("Zoë", "Zoe\u0308"), ("São Paulo", "Sa\u0303o Paulo")],
    ids=["acute", "diaeresis", "tilde"],
)
def test_a_name_typed_with_combining_accents_matches_the_composed_one(composed, decomposed):
    """Keyboards and forms send either form: both must hash (or read) the same for TikTok to match."""
    assert composed != decomposed
    assert hashed_name(decomposed) == hashed_name(composed)
    assert location(decomposed) == location(composed)
