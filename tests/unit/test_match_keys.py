"""Match keys: normalisation before SHA-256, checked against hard-coded digests (tiktok-events-api.md)."""

import pytest

from checkout_conversions.match_keys import (
    hashed,
    hashed_email,
    hashed_external_id,
    hashed_phone,
    is_sha256_hex,
    normalise_email,
    normalise_phone,
    sha256_hex,
)

# Known SHA-256 vectors (computed with `printf %s VALUE | sha256sum`, never with the code under test).
SHA_JANE = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"  # jane.doe@example.com
SHA_US_PHONE = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4"  # +14155550123
SHA_GB_PHONE = "f0bf0228144d9fe2bdf1da2d8ca698f17bf1410ee688b075c27062e47b6f0b6d"  # +442079460958
SHA_IT_PHONE = "37b702607839d6dc5fc81d95b52e550e336413bf7ae2e04cafeca79f066ea44b"  # +390612345678
SHA_DE_PHONE = "a909469fabf3f43d0b7b6c42a85a6e7e8ceb36c7a2f0f1b9c15b80dc16384cb7"  # +4930123456
SHA_USER_42_MIXED = "fafe5e551759817bdc65038b8cb1a8263b1a8b3b60c269d67ff0f8c57ae0f733"  # User-42
SHA_USER_42_LOWER = "6d894aa3ee802549d7f340e7c1cf0d1c1cb14cd84f768d92ffaa6785337c4997"  # user-42
SHA_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # "" - must never be sent


def test_sha256_hex_known_vectors():
    assert sha256_hex("jane.doe@example.com") == SHA_JANE
    assert sha256_hex("+14155550123") == SHA_US_PHONE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("\tJANE.DOE@EXAMPLE.COM\n", "jane.doe@example.com"),
    ],
)
def test_normalise_email_trims_and_lowercases(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "  Jane.Doe@Example.COM ",
        "jane.doe@example.com",
        "JANE.DOE@EXAMPLE.COM",
        " jane.doe@example.com\n",
    ],
)
def test_hashed_email_is_sha256_of_normalised_email(raw):
    assert hashed_email(raw) == SHA_JANE


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "\n\t",
        "not-an-email",
        "jane.doe.example.com",
        "a" * 250 + "@example.com",  # longer than 254 characters
        12345,
        ["jane.doe@example.com"],
        {"email": "jane.doe@example.com"},
    ],
    ids=repr,
)
def test_invalid_or_empty_email_gives_none(raw):
    assert normalise_email(raw) is None
    assert hashed_email(raw) is None


@pytest.mark.parametrize("raw", ["@", "jane.doe@", "@example.com"])
def test_email_without_local_part_or_domain_is_not_hashed(raw):
    # An address with nothing before or after the '@' matches nobody: hashing it is as useless as
    # hashing "" (tiktok-events-api.md: "Drop keys whose value is missing ... never hash an empty string").
    assert hashed_email(raw) is None


@pytest.mark.parametrize("raw", [None, "", " ", "   ", "\t\n"], ids=repr)
def test_empty_values_are_never_hashed(raw):
    for result in (hashed_email(raw), hashed_phone(raw, "US"), hashed_external_id(raw)):
        assert result != SHA_EMPTY
        assert result is None


@pytest.mark.parametrize("raw", ["+", "00", "()", "--", " ( ) - . / "], ids=repr)
def test_phone_made_only_of_punctuation_is_never_hashed(raw):
    assert hashed_phone(raw, "US") is None
    assert hashed_phone(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (SHA_JANE, SHA_JANE),
        (SHA_JANE.upper(), SHA_JANE),
        ("  " + SHA_JANE.upper() + " ", SHA_JANE),
    ],
)
def test_hashed_email_passes_existing_sha256_through_lowercased(raw, expected):
    assert hashed_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        # Already international
        ("+1 (415) 555-0123", None, "+14155550123"),
        ("+14155550123", None, "+14155550123"),
        ("  +1.415.555.0123  ", None, "+14155550123"),
        ("+1/415/555/0123", "GB", "+14155550123"),  # an explicit '+' wins over the default country
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("0044 20 7946 0958", None, "+442079460958"),
        ("0044 20 7946 0958", "US", "+442079460958"),
        ("0039 06 1234 5678", None, "+390612345678"),
        # National numbers with a default country
        ("415-555-0123", "US", "+14155550123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("1 415 555 0123", "US", "+14155550123"),
        ("1-415-555-0123", "us", "+14155550123"),
        ("415 555 0123", "CA", "+14155550123"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", " gb ", "+442079460958"),
        ("06 1234 5678", "IT", "+390612345678"),
        ("030 123456", "DE", "+4930123456"),
    ],
)
def test_normalise_phone_to_e164(raw, country, expected):
    assert normalise_phone(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        # No country code and no default country: dropped, never guessed
        ("415-555-0123", None),
        ("415-555-0123", ""),
        ("020 7946 0958", None),
        ("415-555-0123", "ZZ"),  # unknown country
        # Letters, extensions
        ("415-555-CALL", "US"),
        ("+1 415 555 0123 ext. 5", None),
        ("+1 415 555 0123 x5", None),
        ("+1 415 555 0123;ext=5", None),
        ("+1 415 555 0123 #5", None),
        ("tel:+14155550123", None),
        # Too short / too long (E.164: at most 15 digits, country code never starts with 0)
        ("+123456", None),
        ("+1", None),
        ("12", "US"),
        ("+1234567890123456", None),
        ("0012345678901234567", None),
        ("+0 415 555 0123", None),
        # Nothing usable
        ("", "US"),
        ("   ", "US"),
        ("+", "US"),
        ("++14155550123", None),
        (None, "US"),
        (14155550123, "US"),
    ],
    ids=repr,
)
def test_unusable_phone_gives_none(raw, country):
    assert normalise_phone(raw, country) is None
    assert hashed_phone(raw, country) is None


def test_us_seven_digit_local_number_is_too_short():
    # A NANP number has 10 digits after +1; "+15550123" is no one's phone number.
    assert normalise_phone("555-0123", "US") is None


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+1 (415) 555-0123", None, SHA_US_PHONE),
        ("415-555-0123", "US", SHA_US_PHONE),
        ("1 415 555 0123", "US", SHA_US_PHONE),
        ("0044 20 7946 0958", None, SHA_GB_PHONE),
        ("020 7946 0958", "GB", SHA_GB_PHONE),
        ("06 1234 5678", "IT", SHA_IT_PHONE),
        ("030 123456", "DE", SHA_DE_PHONE),
        (SHA_US_PHONE, None, SHA_US_PHONE),
        (" " + SHA_US_PHONE.upper() + " ", None, SHA_US_PHONE),
    ],
)
def test_hashed_phone_known_vectors(raw, country, expected):
    assert hashed_phone(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("User-42", SHA_USER_42_MIXED),
        ("  User-42  ", SHA_USER_42_MIXED),  # trimmed
        ("user-42", SHA_USER_42_LOWER),  # not lowercased: the case is part of the id
        (SHA_JANE.upper(), SHA_JANE),  # already hashed
    ],
)
def test_hashed_external_id(raw, expected):
    assert hashed_external_id(raw) == expected


def test_external_id_case_is_preserved():
    assert hashed_external_id("User-42") != hashed_external_id("user-42")


@pytest.mark.parametrize("raw", [None, "", "   ", 42, ["User-42"]], ids=repr)
def test_hashed_external_id_empty_or_not_text(raw):
    assert hashed_external_id(raw) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (SHA_JANE, True),
        (SHA_JANE.upper(), True),
        (SHA_JANE[:-1], False),
        (SHA_JANE + "0", False),
        ("g" * 64, False),
        ("", False),
    ],
)
def test_is_sha256_hex(value, expected):
    assert is_sha256_hex(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jane.doe@example.com", SHA_JANE),
        ("+14155550123", SHA_US_PHONE),
        (SHA_JANE.upper(), SHA_JANE),
        ("", None),
        (None, None),
    ],
)
def test_hashed(value, expected):
    assert hashed(value) == expected


def test_hashes_are_lowercase_hex():
    digests = (hashed_email("Jane.Doe@Example.com"), hashed_phone("+1 415 555 0123"), hashed_external_id("X"))
    for digest in digests:
        assert digest is not None
        assert len(digest) == 64
        assert digest == digest.lower()
        int(digest, 16)
