"""Meta's match keys: the user_data of a Conversions API event (destinations/meta/match_keys.py).

Normalisation examples are Meta's own (Customer Information Parameters,
https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters).
Hashes are computed here with hashlib from the normalised value the rule gives, never with the code
under test; a few are also asserted as literal digests (Meta's published ones where it gives them).
"""

import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout_conversions.destinations.meta.match_keys import USER_DATA_KEYS, build_user_data
from checkout_conversions.purchase import Buyer
from tests.payloads import sha
from tests.unit.destinations.meta.samples import BUYER

HASHED = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id")
RAW = ("client_ip_address", "client_user_agent", "fbc", "fbp")

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def user_data(default_phone_country: str = "", **fields) -> dict[str, str]:
    return build_user_data(Buyer(**fields), default_phone_country)


def test_user_data_keys_in_reporting_order():
    assert list(build_user_data(BUYER, "US")) == list(USER_DATA_KEYS)
    assert USER_DATA_KEYS == HASHED + RAW


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"first_name": "'-. "}, "fn"),
        ({"last_name": "--"}, "ln"),
        ({"city": "123 ..."}, "ct"),  # digits and punctuation only: no letters left
        ({"state": "--"}, "st"),
        ({"zip_code": " - "}, "zp"),
        ({"country": "USA"}, "country"),  # not ISO alpha-2: it would match nobody
        ({"country": "1"}, "country"),
        ({"phone": "call me"}, "ph"),
        ({"email": "   "}, "em"),
    ],
    ids=repr,
)
def test_a_value_that_normalises_to_nothing_leaves_its_key_out(fields, key):
    assert key not in user_data("US", **fields)


def test_meta_keys_only_no_tiktok_keys():
    keys = set(build_user_data(BUYER, "US"))
    assert not keys & {"ttclid", "ttp", "locale", "email", "phone", "ip", "user_agent"}


# ---------------------------------------------------------------- Meta's normalisation examples


def test_email_trimmed_and_lower_cased_with_metas_published_digest():
    # Meta's example: "John_Smith@gmail.com" -> "john_smith@gmail.com" -> 62a14e44...
    data = user_data(email="  John_Smith@Gmail.com \n")
    assert data["em"] == sha("john_smith@gmail.com")
    assert data["em"] == "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"


def test_phone_digits_with_country_code_and_no_plus():
    data = user_data(phone="+1 (616) 954-78 88")
    assert data["ph"] == sha("16169547888")
    # Computed once with hashlib.sha256(b"16169547888").hexdigest()
    assert data["ph"] == "bb2fa2e6d2cea4746530c99686d0c7886ab2019875dca2d7e9e171c0e6ada00d"


def test_city_literal_digest():
    # Computed once with hashlib.sha256(b"menlopark").hexdigest()
    assert (
        user_data(city="Menlo Park")["ct"]
        == "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685"
    )


def test_phone_matches_metas_published_digest():
    # Meta's example: US number (650)555-1212 -> "16505551212" -> e323ec62...
    data = user_data("US", phone="(650)555-1212")
    assert data["ph"] == "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"


@pytest.mark.parametrize(
    ("phone", "country", "default_country", "expected"),
    [
        # A national number: the buyer's billing country first, then DEFAULT_PHONE_COUNTRY
        ("020 7946 0958", "GB", "US", "442079460958"),
        ("020 7946 0958", None, "GB", "442079460958"),
        ("(415) 555-0123", None, "US", "14155550123"),
        # A leading 00 or + with the country code wins over both
        ("+44 844 412 4653", "US", "US", "448444124653"),
        # No country code and no country to read it with: dropped, never guessed
        ("020 7946 0958", None, "", None),
        # Not valid in the buyer's country: dropped
        ("020 7946 0958", "US", "GB", None),
    ],
)
def test_phone_region_is_the_buyers_country_then_the_default(phone, country, default_country, expected):
    data = user_data(default_country, phone=phone, country=country)
    assert data.get("ph") == (sha(expected) if expected else None)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Mary", "mary"),  # Meta's example
        ("Valéry", "valéry"),  # Meta's example: UTF-8 kept
        ("정", "정"),  # Meta's example
        ("José", "josé"),
        ("O'Neil", "oneil"),
        ("Mary-Ann", "maryann"),
        ("  Van Der Berg ", "vanderberg"),
        ("JEAN-LUC", "jeanluc"),
        ("Anne.", "anne"),
    ],
)
def test_names_lower_cased_without_punctuation_or_spaces(raw, normalised):
    data = user_data(first_name=raw, last_name=raw)
    assert data["fn"] == sha(normalised)
    assert data["ln"] == sha(normalised)


def test_first_name_matches_metas_published_digests():
    assert (
        user_data(first_name="Mary")["fn"]
        == "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"
    )
    assert (
        user_data(first_name="Valéry")["fn"]
        == "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"
    )
    assert (
        user_data(first_name="정")["fn"] == "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"
    )


def test_composed_and_decomposed_names_hash_the_same():
    composed = unicodedata.normalize("NFC", "José")
    decomposed = unicodedata.normalize("NFD", "José")
    assert composed != decomposed
    assert user_data(first_name=composed)["fn"] == user_data(first_name=decomposed)["fn"] == sha("josé")
    assert user_data(city="Sa\u0303o Paulo")["ct"] == sha("são paulo".replace(" ", ""))


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("Menlo Park", "menlopark"), ("NEW YORK", "newyork"), ("St. John's", "stjohns"), ("Paris 8e", "parise")],
)
def test_city_letters_only(raw, normalised):
    assert user_data(city=raw)["ct"] == sha(normalised)


@pytest.mark.parametrize(
    ("raw", "normalised"), [("CA", "ca"), (" ny ", "ny"), ("N.S.W.", "nsw"), ("13", "13")]
)
def test_state_letters_and_digits(raw, normalised):
    assert user_data(state=raw)["st"] == sha(normalised)


@pytest.mark.parametrize(
    ("zip_code", "country", "normalised"),
    [
        ("94035-1234", "US", "94035"),  # ZIP+4: the first five digits
        ("940351234", "US", "94035"),
        ("94035", "US", "94035"),
        ("M1 1AE", "GB", "m11ae"),  # UK: area, district and sector, no space
        ("SW1A 1AA", "GB", "sw1a1aa"),
        ("K1A 0B1", "CA", "k1a0b1"),
        ("00-950", "PL", "00950"),  # no dash
        ("94035-1234", "GB", "940351234"),  # five digits only in the US
        ("94035-1234", None, "940351234"),
    ],
)
def test_zip_code_lower_cased_no_spaces_no_dashes(zip_code, country, normalised):
    assert user_data(zip_code=zip_code, country=country)["zp"] == sha(normalised)


@pytest.mark.parametrize(("raw", "normalised"), [("US", "us"), ("gb", "gb"), (" DE ", "de")])
def test_country_lower_cased_alpha_2(raw, normalised):
    assert user_data(country=raw)["country"] == sha(normalised)


def test_external_id_trimmed_case_kept_same_as_tiktok():
    from checkout_conversions.destinations import match_keys

    data = user_data(external_id="  User-42 ")
    assert data["external_id"] == sha("User-42")
    assert data["external_id"] == match_keys.hashed_external_id("User-42")


@pytest.mark.parametrize("key", HASHED)
def test_already_hashed_values_pass_through_lower_cased(key):
    digest = sha("already hashed by the merchant")
    field = {
        "em": "email", "ph": "phone", "fn": "first_name", "ln": "last_name", "ct": "city",
        "st": "state", "zp": "zip_code", "country": "country", "external_id": "external_id",
    }[key]  # fmt: skip
    data = user_data(**{field: f" {digest.upper()} "})
    assert data[key] == digest


def test_raw_keys_are_sent_unhashed_as_given():
    data = build_user_data(BUYER)
    assert data["client_ip_address"] == "203.0.113.7"
    assert data["client_user_agent"] == "Mozilla/5.0 (iPhone)"
    assert data["fbc"] == BUYER.fbc
    assert data["fbp"] == BUYER.fbp


# ---------------------------------------------------------------- issue 18

# Meta's `ph` rule (Customer Information Parameters): digits only, with the country code, no `+`.


@pytest.mark.parametrize(
    ("phone", "country", "normalised"),
    [
        # Mainland China keeps its country code for Meta (TikTok's exception is TikTok's alone)
        ("+86 138 0013 8000", None, "8613800138000"),
        ("138 0013 8000", "CN", "8613800138000"),
        ("010 6552 9988", "CN", "861065529988"),
        # Issue 18, item 2: a leading `00` read as `+`, whatever the billing country
        ("0044 20 7946 0958", "US", "442079460958"),  # the issue's vector
        ("0044 20 7946 0958", "CA", "442079460958"),
        ("0044 20 7946 0958", "AU", "442079460958"),
        ("0044 20 7946 0958", "JP", "442079460958"),
        ("0044 20 7946 0958", "BR", "442079460958"),
        ("0044 20 7946 0958", None, "442079460958"),
        ("0086 138 0013 8000", "US", "8613800138000"),
        # and the billing country's own international prefix
        ("011 44 20 7946 0958", "US", "442079460958"),
        ("011 44 20 7946 0958", "CA", "442079460958"),
        ("0011 44 20 7946 0958", "AU", "442079460958"),
        ("010 44 20 7946 0958", "JP", "442079460958"),
        ("\ufeff+1 (650) 555-1212\u00a0", None, "16505551212"),
    ],
)
def test_phone_country_code_kept_and_international_prefixes_read_as_plus(phone, country, normalised):
    assert user_data(phone=phone, country=country)["ph"] == sha(normalised)


@pytest.mark.parametrize(
    ("phone", "country"), [("011 44 20 7946 0958", "GB"), ("0011 44 20 7946 0958", "US")]
)
def test_another_countrys_international_prefix_is_not_read_as_plus(phone, country):
    assert "ph" not in user_data(phone=phone, country=country)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        # Meta `fn`/`ln`: lower-cased, no punctuation; UTF-8 kept (the issue's vectors first)
        ("o'brien", "obrien"),
        ("mary-ann", "maryann"),
        ("j.", "j"),
        ("O\u2019Brien", "obrien"),
        ("Jean\u2011Luc", "jeanluc"),
        # composed and decomposed accents give the composed (NFC) letter
        ("Zoe\u0308", "zo\u00eb"),
        ("Dvor\u030ca\u0301k", "dvo\u0159\u00e1k"),
        ("Dvořák", "dvo\u0159\u00e1k"),
        ("Valéry", "val\u00e9ry"),
        ("\ufeffMary\u3000", "mary"),
    ],
)
def test_names_issue_18(raw, normalised):
    data = user_data(first_name=raw, last_name=raw)
    assert data["fn"] == data["ln"] == sha(normalised)


@pytest.mark.parametrize(
    ("zip_code", "country", "normalised"),
    [
        # Meta `zp`: US, the first five digits, whatever the separator
        ("94035\u20131234", "US", "94035"),  # en dash: the issue's vector
        ("94035 1234", "US", "94035"),
        ("94035\u00a01234", "US", "94035"),
        # elsewhere lower-cased, no spaces, no dashes
        ("100-0001", "JP", "1000001"),
        ("01310-100", "BR", "01310100"),
        ("00\u2013950", "PL", "00950"),
        ("EC1A 1BB", "GB", "ec1a1bb"),
        ("\ufeffK1A 0B1", "CA", "k1a0b1"),
    ],
)
def test_zip_code_issue_18(zip_code, country, normalised):
    assert user_data(zip_code=zip_code, country=country)["zp"] == sha(normalised)


@pytest.mark.parametrize(
    ("state", "country", "normalised"),
    [
        # Meta `st`: the two-letter ANSI code, lower-cased, for US states (issue 18, item 6)
        ("California", "US", "ca"),  # the issue's vector
        ("new york", "US", "ny"),
        ("District of Columbia", "US", "dc"),
        ("Guam", "US", "gu"),
        ("Puerto Rico", "PR", "pr"),
        ("TX", "US", "tx"),
        # elsewhere lower-cased, no punctuation, special characters or spaces; a code stays a code
        ("ON", "CA", "on"),  # the issue's vector
        ("Ontario", "CA", "ontario"),
        ("Québec", "CA", "qu\u00e9bec"),
        ("Nova Scotia", "CA", "novascotia"),
        ("\ufeffBE\u00a0", "DE", "be"),
    ],
)
def test_state_issue_18(state, country, normalised):
    assert user_data(state=state, country=country)["st"] == sha(normalised)


@pytest.mark.parametrize("blank", ["\ufeff", "\u00a0", "\u2009", "\u3000", "\u2029"])
def test_every_key_is_trimmed_of_unicode_spaces_and_the_bom(blank):
    fields = {
        "email": "Jane.Doe@Example.com", "phone": "+1 650 555 1212", "first_name": "Mary",
        "last_name": "O'Neil", "city": "Menlo Park", "state": "California", "zip_code": "94035-1234",
        "country": "US", "external_id": "User-42",
    }  # fmt: skip
    data = user_data(**{key: f"{blank}{value}{blank}" for key, value in fields.items()})
    assert data == {
        "em": sha("jane.doe@example.com"),
        "ph": sha("16505551212"),
        "fn": sha("mary"),
        "ln": sha("oneil"),
        "ct": sha("menlopark"),
        "st": sha("ca"),
        "zp": sha("94035"),
        "country": sha("us"),
        "external_id": sha("User-42"),
    }


# ---------------------------------------------------------------- property


TEXT_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "zip_code",
    "city",
    "state",
    "country",
    "external_id",
)
any_text = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.text(alphabet=" \t-.'_,+()0123456789", max_size=12),
    st.sampled_from(["US", "GB", "+1 415 555 0123", "020 7946 0958", "José", "Jose\u0301", "İ", "ß"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.fixed_dictionaries({field: any_text for field in TEXT_FIELDS}),
    default_phone_country=st.sampled_from(["", "US", "GB", "de"]),
)
def test_every_hashed_key_is_a_lowercase_sha256_and_nothing_is_empty(fields, default_phone_country):
    data = build_user_data(Buyer(**fields), default_phone_country)
    assert set(data) <= set(HASHED)
    for key, value in data.items():
        assert isinstance(value, str) and value, key
        assert HEX64.match(value), (key, value)
        assert value != sha(""), key
