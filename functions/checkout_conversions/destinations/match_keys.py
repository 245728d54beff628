"""What both platforms do alike with a buyer's match keys: trimming, Unicode normalisation, E.164
phone numbers, names, postcodes, states and SHA-256. Each platform's own table of rules is in its
folder (`<platform>/match_keys.py`); a rule here is used by both because both platforms' sources"""

# agree on it (each rule says which).
#
#
# Used only by the sender and the redrive: `phonenumbers` stays off the webhook's cold start.

import hashlib
import re
import unicodedata
from collections.abc import Callable

import phonenumbers

_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")

# What `trimmed` takes off both ends: every character with Unicode's White_Space property
# (PropList.txt: U+0009-000D, U+0020, U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029, U+202F,
# U+205F, U+3000), U+001C-001F (which Python's str.isspace() counts too), and the byte-order mark
# U+FEFF, which JavaScript's trim() removes (ECMA-262 "WhiteSpace") and str.strip() keeps.
# TikTok's template trims like JavaScript's trim() (issue 18, item 3).
BLANKS = "".join(
    map(
        chr,
        [
            *range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
            0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF,
        ],
    )
)  # fmt: skip

# US ZIP: the first five digits (Meta, Customer Information Parameters, `zp`: the first five
# digits of a US ZIP; issue 18, item 5: whatever the separator of a ZIP+4).
_US_ZIP5 = re.compile(r"^([0-9]{5})")
_MINUS_SIGN = "\u2212"  # a dash to the eye, though Unicode files it as a math symbol (Sm)
_INTERNATIONAL_00 = re.compile(r"^[\s().\-/]*00")  # `00 44 ...`, `(0044) ...`

# The addresses whose state is a US state or territory: the US, and the territories that have
# their own ISO 3166 codes (Stripe gives a Puerto Rico address country `PR`).
US_COUNTRIES = frozenset({"US", "PR", "GU", "VI", "AS", "MP", "UM"})

# US states, the District of Columbia, the territories and the armed forces' "states", by name
# (lower-cased, letters and digits only, as `state_key` reads it) -> the two-letter code. Source:
# ANSI INCITS 38 (formerly FIPS 5-2) and USPS Publication 28, Appendix B. Meta asks for the
# two-letter ANSI code, lower-cased, for US states (Customer Information Parameters, `st`, as
# issue 18 quotes it); issue 18, item 6: for both platforms.
US_STATE_CODES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca",
    "colorado": "co", "connecticut": "ct", "delaware": "de", "florida": "fl", "georgia": "ga",
    "hawaii": "hi", "hawai\u02bbi": "hi", "idaho": "id", "illinois": "il", "indiana": "in", "iowa": "ia",
    "kansas": "ks", "kentucky": "ky", "louisiana": "la", "maine": "me", "maryland": "md",
    "massachusetts": "ma", "michigan": "mi", "minnesota": "mn", "mississippi": "ms",
    "missouri": "mo", "montana": "mt", "nebraska": "ne", "nevada": "nv", "newhampshire": "nh",
    "newjersey": "nj", "newmexico": "nm", "newyork": "ny", "northcarolina": "nc",
    "northdakota": "nd", "ohio": "oh", "oklahoma": "ok", "oregon": "or", "pennsylvania": "pa",
    "rhodeisland": "ri", "southcarolina": "sc", "southdakota": "sd", "tennessee": "tn",
    "texas": "tx", "utah": "ut", "vermont": "vt", "virginia": "va", "washington": "wa",
    "westvirginia": "wv", "wisconsin": "wi", "wyoming": "wy",
    "districtofcolumbia": "dc", "washingtondc": "dc",
    "americansamoa": "as", "guam": "gu", "northernmarianaislands": "mp", "puertorico": "pr",
    "virginislands": "vi", "usvirginislands": "vi", "unitedstatesvirginislands": "vi",
    "usminoroutlyingislands": "um", "unitedstatesminoroutlyingislands": "um",
    "armedforcesamericas": "aa", "armedforceseurope": "ae", "armedforcespacific": "ap",
}  # fmt: skip


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def is_sha256_hex(value: str) -> bool:
    return bool(_SHA256_HEX.match(value))


def hashed(value: str | None) -> str | None:
    """SHA-256 of an already normalised value; an existing SHA-256 digest passes through
    (lower-cased). Empty values are never hashed: sha256("") would match nobody (TikTok's
    reference, "Drop keys whose value is missing")."""
    if not value:
        return None
    if is_sha256_hex(value):
        return value.lower()
    return sha256_hex(value)


def trimmed(raw: object) -> str | None:
    """The text without `BLANKS` at either end, or None for anything that is not a string or is
    blank. Every key is trimmed this way before it is normalised (issue 18, item 3)."""
    if not isinstance(raw, str):
        return None
    return raw.strip(BLANKS) or None


def hashed_key(raw: object, normalise: Callable[[str], str | None]) -> str | None:
    """Trim, normalise, then SHA-256. An existing digest passes through before normalisation,
    which could otherwise mangle it (a US ZIP rule would cut it to five characters)."""
    text = trimmed(raw)
    if text is None:
        return None
    if is_sha256_hex(text):
        return text.lower()
    return hashed(normalise(text))


def hashed_email(raw: object) -> str | None:
    """Trimmed, lower-cased, SHA-256 (both platforms: TikTok's template, tiktok-events-api.md
    "Normalisation"; Meta's Customer Information Parameters, `em`)."""
    email = trimmed(raw)
    return hashed(email.lower() if email else None)


def hashed_external_id(raw: object) -> str | None:
    """Trimmed, case kept, SHA-256: the same digest for both pixels and `ttq.identify`
    (TikTok's template does not lower-case it, tiktok-events-api.md)."""
    return hashed(trimmed(raw))


def e164_phone(raw: object, region: str | None = None) -> str | None:
    """E.164 with the '+', or None when the number is not valid.

    A number that starts with `00` is read as international first (`0044 20 7946 0958` ->
    `+442079460958`, whatever the billing country: issue 18, item 2, `00` being the international
    prefix in most of the world). Otherwise, or when that reading is not a valid number, it is read
    with `region` (ISO alpha-2: the billing country, else DEFAULT_PHONE_COUNTRY), which also
    understands that country's own international prefix (`011` in the US and Canada, `0011` in
    Australia, `010` in Japan, Brazil's `00` with a carrier code). Without a region, a number with
    no country code is dropped, never guessed."""
    text = trimmed(raw)
    if text is None:
        return None
    if _INTERNATIONAL_00.match(text):
        international = _valid_e164(_INTERNATIONAL_00.sub("+", text, count=1), None)
        if international:
            return international
    return _valid_e164(text, (trimmed(region) or "").upper() or None)


def _valid_e164(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def lower_nfc(raw: str) -> str:
    # NFC again after lower-casing: lower() can decompose ("İ" becomes "i" + combining dot).
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", raw).lower())


def keep(raw: str, *categories: str) -> str | None:
    """Lower-cased NFC text with only the characters of the Unicode major categories given
    ("L" letters, "M" marks, "N" digits), in NFC again (taking a character out from between a
    letter and its accent can leave them to compose)."""
    kept = "".join(ch for ch in lower_nfc(raw) if unicodedata.category(ch)[0] in categories)
    return unicodedata.normalize("NFC", kept) or None


def name(raw: str) -> str | None:
    """First and last names, both platforms: lower-cased, punctuation, symbols, spaces and
    invisible characters removed; letters of any script (with their accents, composed: NFC) and
    digits kept. "Mary-Ann" -> "maryann", "O'Brien" -> "obrien", "J." -> "j", "José" -> "josé".
    Meta: Customer Information Parameters, `fn`/`ln`: lower-case, no punctuation, UTF-8 kept (its
    examples "Valéry" -> "valéry", "정" -> "정"); TikTok: its `first_name`/`last_name` description in
    the Segment destination it maintains, lowercase "without any punctuation" (as issue 18, item 4,
    quotes it)."""
    return keep(raw, "L", "M", "N")


def postcode(raw: str, country: str | None) -> str | None:
    """Both platforms (issue 18, item 5: one rule where their rules agree): lower-cased, without
    spaces (every Unicode space), dashes (Unicode Pd: the hyphen-minus, the en dash U+2013, the
    em dash, ...; and the minus sign) or invisible format characters (Cf: the BOM, a zero-width
    space); in a US address only the first five digits, whatever separated the ZIP+4 ("94107-1234",
    "94107 1234", with an en dash: "94107"). Meta: Customer Information Parameters, `zp`:
    lower-case, no spaces, no dash; in the US the first five digits (its example "M1 1AE" ->
    "m11ae"). TikTok: `zip_code` "whitespace removed, lowercase" (Segment's TikTok-maintained
    destination, tiktok-events-api.md); dashes and the US five digits by issue 18's one rule."""
    compact = "".join(ch for ch in lower_nfc(raw) if not _postcode_filler(ch))
    if is_us_address(country) and (match := _US_ZIP5.match(compact)):
        return match.group(1)
    return compact or None


def _postcode_filler(ch: str) -> bool:
    return ch in BLANKS or ch.isspace() or ch == _MINUS_SIGN or unicodedata.category(ch) in ("Pd", "Cf")


def state_key(raw: str, country: str | None) -> str | None:
    """States, both platforms: lower-cased, letters and digits only (no punctuation, special
    characters or spaces: Meta's `st` rule for states outside the US; TikTok's `state`: "letters
    and digits only", tiktok-events-api.md). In a US address (the US or a territory) a state or
    territory name becomes its two-letter ANSI code ("California" -> "ca": Meta's `st` rule;
    issue 18, item 6, for both); a code stays a code ("CA" -> "ca", "ON" -> "on")."""
    key = keep(raw, "L", "M", "N")
    if key and is_us_address(country):
        return US_STATE_CODES.get(key, key)
    return key


def is_us_address(country: str | None) -> bool:
    return (trimmed(country) or "").upper() in US_COUNTRIES
