"""The match-key helpers both platforms share (destinations/match_keys.py): SHA-256, the email and
external id rules, and telling an existing digest.

Every expected digest is computed here with hashlib from the normalised string the rule gives, so
the tables show the rule itself: raw value -> normalised string -> SHA-256 of it.
"""

import hashlib

import pytest

from checkout_conversions.destinations.match_keys import (
    hashed,
    hashed_email,
    hashed_external_id,
    is_sha256_hex,
    sha256_hex,
)

# One hard-coded vector (`printf %s jane.doe@example.com | sha256sum`), so that the helper below is
# itself checked against something that is not hashlib in this process.
SHA_JANE = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
SHA_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256(""): never sent


def sha(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def test_known_vectors():
    assert sha("jane.doe@example.com") == SHA_JANE
    assert sha256_hex("jane.doe@example.com") == SHA_JANE
    assert sha256_hex("") == SHA_EMPTY
    assert sha256_hex("josé") == sha("jos\u00e9")  # UTF-8 bytes of the text, not Latin-1


# ---------------------------------------------------------------- email


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("\tJANE.DOE@EXAMPLE.COM\n", "jane.doe@example.com"),
        ("Jane+Shop@Example.com", "jane+shop@example.com"),  # sub-addresses are kept, not stripped
        ("José@Example.com", "josé@example.com"),
    ],
)
def test_email_is_trimmed_lowercased_and_hashed(raw, normalised):
    assert hashed_email(raw) == sha(normalised)


# ---------------------------------------------------------------- external_id


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("User-42", "User-42"),
        ("  User-42\n", "User-42"),  # trimmed
        ("user-42", "user-42"),  # case kept: it must equal what ttq.identify sends
        ("cus_TestCustomer0001", "cus_TestCustomer0001"),
    ],
)
def test_external_id_is_trimmed_and_hashed_case_kept(raw, normalised):
    assert hashed_external_id(raw) == sha(normalised)


def test_external_id_case_makes_a_different_key():
    assert hashed_external_id("User-42") != hashed_external_id("user-42")


# ---------------------------------------------------------------- hashed


@pytest.mark.parametrize(("value", "expected"), [("", None), (None, None), ("jane", sha("jane"))])
def test_hashed(value, expected):
    assert hashed(value) == expected


# ---------------------------------------------------------------- digests


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
