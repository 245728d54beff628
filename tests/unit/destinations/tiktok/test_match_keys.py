"""TikTok's match keys: its normalisation before SHA-256 (tiktok-events-api.md, "Normalisation"),
destinations/tiktok/match_keys.py with the shared E.164 and SHA-256 helpers it builds on, and the
rules issue 18 sets (mainland-China phones, `00`, Unicode spaces, names, postcodes, states).

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
    build_user,
    hashed_name,
    hashed_phone,
    hashed_zip_code,
    location,
    state,
)
from checkout_conversions.purchase import Buyer


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
        # Issue 18, item 4: punctuation goes, as for Meta (TikTok's `first_name`/`last_name` in the
        # Segment destination it maintains: lowercase "without any punctuation"). These two rows
        # said "jean-luc" and "o'brien" before.
        ("Jean-Luc", "jeanluc"),
        ("O'Brien", "obrien"),
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
        # Elsewhere the same digits are not a ZIP+4 and are kept whole; issue 18, item 5: without
        # the dash (these two rows said "94107-1234" before)
        ("94107-1234", "GB", "941071234"),
        ("941071234", "DE", "941071234"),
        ("94107-1234", None, "941071234"),
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
        ("US", "us"),
        ("75", "75"),  # digits stay (French departments, numbered regions)
    ],
)
def test_city_state_country_are_lowercased_letters_and_digits_not_hashed(raw, expected):
    assert location(raw) == expected
    assert state(raw) == expected  # a state without a US address: the same rule
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
        lambda raw: state(raw, "US"),
    ],
    ids=["email", "phone-US", "phone", "external_id", "name", "zip-US", "zip", "location", "state"],
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
    assert state(decomposed) == state(composed)


# ---------------------------------------------------------------- issue 18: phones

# TikTok's rule for phone (its server template's phone help, also in tiktok-events-api.md,
# "Normalisation"): E.164 with the `+`; "If the country code is 86, then do not include country
# code (example: 13800000000)".


@pytest.mark.parametrize(
    ("raw", "region", "normalised"),
    [
        ("+86 138 0013 8000", None, "13800138000"),  # the vector
        ("138 0013 8000", "CN", "13800138000"),  # the vector: a CN billing address
        ("+8613800138000", "US", "13800138000"),
        ("0086 138 0013 8000", "US", "13800138000"),
        ("\ufeff+86 138 0013 8000\u3000", None, "13800138000"),
        # Landlines: the country code goes, nothing else is added (the rule's wording; its only
        # example is a mobile number)
        ("+86 10 6552 9988", None, "1065529988"),
        ("010 6552 9988", "CN", "1065529988"),
        ("021 6288 1234", "CN", "2162881234"),
        # Not mainland China: Hong Kong +852, Macao +853, Taiwan +886 keep their country code
        ("+852 2123 4567", None, "+85221234567"),
        ("+853 2856 2856", None, "+85328562856"),
        ("+886 2 2345 6789", None, "+886223456789"),
        ("+886 912 345 678", "CN", "+886912345678"),
    ],
)
def test_mainland_china_phone_without_its_country_code(raw, region, normalised):
    assert hashed_phone(raw, region) == sha(normalised)


@pytest.mark.parametrize(
    ("raw", "region", "normalised"),
    [
        # Issue 18, item 2: a leading `00` is read as `+`, whatever the billing country
        ("0044 20 7946 0958", "US", "+442079460958"),  # the vector
        ("0044 20 7946 0958", "CA", "+442079460958"),
        ("0044 20 7946 0958", "AU", "+442079460958"),
        ("0044 20 7946 0958", "JP", "+442079460958"),
        ("0044 20 7946 0958", None, "+442079460958"),
        ("001 415 555 0123", "DE", "+14155550123"),
        # and the billing country's own international prefix
        ("011 44 20 7946 0958", "US", "+442079460958"),
        ("0011 44 20 7946 0958", "AU", "+442079460958"),
        ("010 44 20 7946 0958", "JP", "+442079460958"),
    ],
)
def test_international_prefix_read_as_plus(raw, region, normalised):
    assert hashed_phone(raw, region) == sha(normalised)


def test_the_phone_region_is_the_billing_country_then_the_default():
    assert build_user(Buyer(phone="138 0013 8000", country="CN"), "US")["phone"] == sha("13800138000")
    assert build_user(Buyer(phone="0044 20 7946 0958", country="US"))["phone"] == sha("+442079460958")
    assert build_user(Buyer(phone="138 0013 8000"), "CN")["phone"] == sha("13800138000")


# ---------------------------------------------------------------- issue 18: names


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        # The vectors: TikTok strips punctuation as Meta does
        ("o'brien", "obrien"),
        ("mary-ann", "maryann"),
        ("j.", "j"),
        ("O\u2019Brien", "obrien"),
        ("St. John-Smith", "stjohnsmith"),
        # Accents kept, composed (NFC), whichever form was typed
        ("Jose\u0301", "jos\u00e9"),
        ("Zoe\u0308-Ann", "zo\u00ebann"),
        ("Müller-Lüdenscheidt", "m\u00fcllerl\u00fcdenscheidt"),
        ("Mu\u0308ller", "m\u00fcller"),
        ("\ufeffJane\u00a0", "jane"),
    ],
)
def test_names_without_punctuation_like_meta(raw, normalised):
    assert hashed_name(raw) == sha(normalised)


# ---------------------------------------------------------------- issue 18: postcodes


@pytest.mark.parametrize(
    ("raw", "country", "normalised"),
    [
        # US: the first five digits, whatever the separator
        ("94107\u20131234", "US", "94107"),  # en dash: the vector
        ("94107-1234", "US", "94107"),
        ("94107 1234", "US", "94107"),
        ("941071234", "US", "94107"),
        # Elsewhere: lower-cased, no spaces, no dashes
        ("SW1A 1AA", "GB", "sw1a1aa"),
        ("K1A 0B1", "CA", "k1a0b1"),
        ("100-0001", "JP", "1000001"),
        ("01310-100", "BR", "01310100"),
        ("00-950", "PL", "00950"),
        ("\ufeff00\u2013950\u00a0", "PL", "00950"),
    ],
)
def test_postcodes_like_meta(raw, country, normalised):
    assert hashed_zip_code(raw, country) == sha(normalised)


# ---------------------------------------------------------------- issue 18: states


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        # A US address: the two-letter code (issue 18, item 6, as Meta's `st` asks)
        ("California", "US", "ca"),
        ("CA", "US", "ca"),
        ("New York", "US", "ny"),
        ("District of Columbia", "US", "dc"),
        ("Puerto Rico", "US", "pr"),
        ("Puerto Rico", "PR", "pr"),
        ("U.S. Virgin Islands", "US", "vi"),
        # Elsewhere: lower-cased, letters and digits only; a code stays a code
        ("ON", "CA", "on"),
        ("Ontario", "CA", "ontario"),
        ("Québec", "CA", "qu\u00e9bec"),
        ("N.S.W.", "AU", "nsw"),
        ("\ufeffBE\u3000", "DE", "be"),
    ],
)
def test_state_is_a_code_in_the_us_and_not_hashed(raw, country, expected):
    assert state(raw, country) == expected
    assert build_user(Buyer(state=raw, country=country))["state"] == expected


# ---------------------------------------------------------------- issue 18: Unicode spaces


@pytest.mark.parametrize("blank", ["\ufeff", "\u00a0", "\u2007", "\u202f", "\u3000", "\u2028", "\u0085"])
def test_every_key_is_trimmed_of_unicode_spaces_and_the_bom(blank):
    buyer = Buyer(
        email=f"{blank}Jane.Doe@Example.com{blank}",
        phone=f"{blank}+1 415 555 0123{blank}",
        external_id=f"{blank}User-42{blank}",
        first_name=f"{blank}José{blank}",
        last_name=f"{blank}O'Brien{blank}",
        zip_code=f"{blank}94107-1234{blank}",
        city=f"{blank}San Francisco{blank}",
        state=f"{blank}California{blank}",
        country=f"{blank}US{blank}",
    )
    assert build_user(buyer) == {
        "email": sha("jane.doe@example.com"),
        "phone": sha("+14155550123"),
        "external_id": sha("User-42"),
        "first_name": sha("jos\u00e9"),
        "last_name": sha("obrien"),
        "zip_code": sha("94107"),
        "city": "sanfrancisco",
        "state": "ca",
        "country": "us",
    }
