"""Normalising and hashing the buyer's match keys the way TikTok's Events API expects them.

TikTok matches on SHA-256 hex digests of normalised values. Empty values are never hashed:
sha256("") is a real, useless hash that would match nobody.
"""

import hashlib
import re

_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

# Countries whose national numbers keep their leading 0 after the country code.
_KEEPS_TRUNK_ZERO = frozenset({"IT", "SM", "VA"})

_NANP = "AG AI AS BB BM BS CA DM DO GD GU JM KN KY LC MP MS PR SX TC TT US VC VG VI"
_CALLING_CODES_TEXT = """
AD 376 AE 971 AF 93 AL 355 AM 374 AO 244 AR 54 AT 43 AU 61 AW 297 AX 358 AZ 994 BA 387 BD 880
BE 32 BF 226 BG 359 BH 973 BI 257 BJ 229 BL 590 BN 673 BO 591 BQ 599 BR 55 BT 975 BW 267 BY 375
BZ 501 CD 243 CF 236 CG 242 CH 41 CI 225 CK 682 CL 56 CM 237 CN 86 CO 57 CR 506 CU 53 CV 238
CW 599 CX 61 CY 357 CZ 420 DE 49 DJ 253 DK 45 DZ 213 EC 593 EE 372 EG 20 EH 212 ER 291 ES 34
ET 251 FI 358 FJ 679 FK 500 FM 691 FO 298 FR 33 GA 241 GB 44 GE 995 GF 594 GG 44 GH 233 GI 350
GL 299 GM 220 GN 224 GP 590 GQ 240 GR 30 GT 502 GW 245 GY 592 HK 852 HN 504 HR 385 HT 509 HU 36
ID 62 IE 353 IL 972 IM 44 IN 91 IO 246 IQ 964 IR 98 IS 354 IT 39 JE 44 JO 962 JP 81 KE 254
KG 996 KH 855 KI 686 KM 269 KP 850 KR 82 KW 965 KZ 7 LA 856 LB 961 LI 423 LK 94 LR 231 LS 266
LT 370 LU 352 LV 371 LY 218 MA 212 MC 377 MD 373 ME 382 MF 590 MG 261 MH 692 MK 389 ML 223
MM 95 MN 976 MO 853 MQ 596 MR 222 MT 356 MU 230 MV 960 MW 265 MX 52 MY 60 MZ 258 NA 264 NC 687
NE 227 NF 672 NG 234 NI 505 NL 31 NO 47 NP 977 NR 674 NU 683 NZ 64 OM 968 PA 507 PE 51 PF 689
PG 675 PH 63 PK 92 PL 48 PM 508 PS 970 PT 351 PW 680 PY 595 QA 974 RE 262 RO 40 RS 381 RU 7
RW 250 SA 966 SB 677 SC 248 SD 249 SE 46 SG 65 SH 290 SI 386 SJ 47 SK 421 SL 232 SM 378 SN 221
SO 252 SR 597 SS 211 ST 239 SV 503 SY 963 SZ 268 TD 235 TG 228 TH 66 TJ 992 TK 690 TL 670
TM 993 TN 216 TO 676 TR 90 TV 688 TW 886 TZ 255 UA 380 UG 256 UY 598 UZ 998 VA 39 VE 58 VN 84
VU 678 WF 681 WS 685 XK 383 YE 967 YT 262 ZA 27 ZM 260 ZW 263
"""


def _calling_codes() -> dict[str, str]:
    words = _CALLING_CODES_TEXT.split()
    codes = dict(zip(words[::2], words[1::2], strict=True))
    codes.update(dict.fromkeys(_NANP.split(), "1"))
    return codes


CALLING_CODES = _calling_codes()


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def is_sha256_hex(value: str) -> bool:
    return bool(_SHA256_HEX.match(value))


def normalise_email(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or len(email) > 254 or any(c.isspace() for c in email):
        return None
    return email


def normalise_phone(raw: object, default_country: str | None = None) -> str | None:
    """E.164 with the leading '+', or None when the number cannot be made unambiguous.

    A number without a country code ('+' or '00') needs `default_country` (ISO 3166 alpha-2);
    without it the number is dropped rather than guessed.
    """
    if not isinstance(raw, str):
        return None
    compact = _PHONE_PUNCTUATION.sub("", raw.strip())
    country = (default_country or "").strip().upper()
    if compact.startswith("+"):
        candidate = compact
    elif compact.startswith("00"):
        candidate = "+" + compact[2:]
    elif compact.startswith("011") and CALLING_CODES.get(country) == "1":
        candidate = "+" + compact[3:]  # North America's international prefix
    else:
        candidate = _with_default_country(compact, country)
    if candidate is None or not _E164.match(candidate):
        return None
    if candidate.startswith("+1") and len(candidate) != 12:
        return None  # North American numbers are +1 and exactly ten digits
    return candidate


def _with_default_country(national: str, country: str) -> str | None:
    calling_code = CALLING_CODES.get(country)
    if calling_code is None or not national.isdigit():
        return None
    if calling_code == "1" and len(national) == 11 and national.startswith("1"):
        return "+" + national
    if national.startswith("0") and country not in _KEEPS_TRUNK_ZERO:
        national = national[1:]
    return f"+{calling_code}{national}"


def hashed(value: str | None) -> str | None:
    """SHA-256 of an already normalised value; an existing SHA-256 digest passes through."""
    if not value:
        return None
    if is_sha256_hex(value):
        return value.lower()
    return sha256_hex(value)


def hashed_email(raw: object) -> str | None:
    if isinstance(raw, str) and is_sha256_hex(raw.strip()):
        return raw.strip().lower()
    return hashed(normalise_email(raw))


def hashed_phone(raw: object, default_country: str | None = None) -> str | None:
    if isinstance(raw, str) and is_sha256_hex(raw.strip()):
        return raw.strip().lower()
    return hashed(normalise_phone(raw, default_country))


def hashed_external_id(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    return hashed(raw.strip())
