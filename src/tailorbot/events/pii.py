"""The built-in kinds of PII: one precompiled pattern per kind plus, where a pattern alone
over-matches, a check (Luhn for cards, ISO 13616 mod-97 for IBANs, :mod:`ipaddress` for IPv6,
the never-issued ranges for US social security numbers).

Patterns are written for ASCII. Text is matched in its *folded* form (:func:`fold`): every
character replaced by one ASCII look-alike where there is one (no-break and thin spaces, full-
width and other decimal digits, non-breaking hyphens, full-width ``@``), so that positions in
the folded and the original text are the same and only the PII itself is replaced; the text
around it keeps its own characters.

What counts as a phone number: a number with a ``+`` (or ``00``) country prefix, a North
American ``(415) 555-2671`` / ``415-555-2671`` number, or a trunk-prefixed national number
written in groups (``020 7946 0958``, ``06 12 34 56 78``), each optionally followed by an
extension (``x123``, ``ext. 12``). A bare digit run (an order number) or an amount is not a
phone number. A social security number is ``123-45-6789`` / ``123 45 6789``, or nine bare
digits right after the words "SSN" or "social security (number)".

>>> fold("4111\\u00a01111\\uff11") == "4111 11111"
True
>>> [(kind, rule.spans("call 415-555-2671 x7")) for kind, rule in RULES if kind == "phone"]
[('phone', [(5, 20)])]
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from typing import Protocol

PLACEHOLDERS = {
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "card": "<CARD>",
    "iban": "<IBAN>",
    "ip": "<IP>",
    "ssn": "<SSN>",
}

_SEPARATOR = re.compile(r"[ \-.]")
# A UUID, or a hex token of 32, 40 or 64 characters (a random id, a hash), standing alone:
# never PII, though one in a few thousand passes the IBAN check and some the card check by
# chance (events/identifiers.py, and metadata values in events/redact.py, let them be).
RANDOM_TOKEN = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|[0-9A-Fa-f]{64}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{32}"
    r")(?![0-9A-Za-z])"
)
SHORTEST_RANDOM_TOKEN = 32  # characters: a shorter text holds none

_EMAIL_LOCAL = r"(?<![\w.%+\-])[\w%+\-](?:[\w.%+\-]*[\w%+\-])?"  # not starting mid-word
_EMAIL_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w\-])"
_EMAIL = re.compile(_EMAIL_LOCAL + "@" + _EMAIL_DOMAIN)
_EMAIL_URL_ENCODED = re.compile(_EMAIL_LOCAL + "%40" + _EMAIL_DOMAIN)  # jane%40example.com
_IBAN = re.compile(
    # country, check digits, then 11-30 alphanumerics, optionally in space/dash groups
    r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?:[ \-]?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])"
)
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{0,4})(?:%[A-Za-z0-9]+)?(?![\w:]|\.[0-9])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.[0-9])")
_SSN = re.compile(
    r"(?<![\w\-.])(?:"
    r"[0-9]{3}(?P<ssep>[ \-])[0-9]{2}(?P=ssep)[0-9]{4}"
    # nine bare digits only right after the words: "SSN: 123456789"
    r"|(?i:ssn|social[ ]security(?:[ ]number)?)(?:[ ]?(?:is|no\.?|number|\#|:)){0,2}[ ]?[0-9]{9}"
    r")(?![\w\-]|\.[0-9])"
)
_CARD = re.compile(r"(?<![\w+\-.])[0-9](?:[ \-.]?[0-9]){12,}(?![\w])")  # 13+ digits
_EXTENSION = r"(?:[ ]?(?i:x|ext\.?|extension)[ ]?[0-9]{1,6})"
_PHONE = re.compile(
    r"(?<![\w+\-.(])(?:"
    # international: +CC or 00CC, then digit groups or an (area) group
    r"(?:\+|00)[0-9]++(?:[ \-.]?\([0-9]{1,4}\)[ \-.]?[0-9]++|[ \-.][0-9]++)*+"
    # North American: (415) 555-2671, 415-555-2671, 1-800-555-0199
    r"|(?:1[ \-.])?(?:\([0-9]{3}\)[ ]?[0-9]{3}[ \-.]|[0-9]{3}(?P<nsep>[ \-.])[0-9]{3}(?P=nsep))"
    r"[0-9]{4}"
    # trunk-prefixed national, groups with one consistent separator: 020 7946 0958
    r"|\(0[0-9]{1,4}\)[ ]?[0-9]++(?:[ \-.][0-9]++)*+"
    r"|0[0-9]++(?P<tsep>[ \-.])[0-9]++(?:(?P=tsep)[0-9]++)*+"
    rf"){_EXTENSION}?(?![\w])"
)
_EXTENSION_AT_END = re.compile(_EXTENSION + "$")
_SSN_DIGITS_AT_END = re.compile(r"([0-9]{3})[ \-]?([0-9]{2})[ \-]?([0-9]{4})$")

_IBAN_LENGTHS = range(15, 35)
# ISO 13616 registry: IBAN length by country (a country not listed needs a whole match).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_E164_DIGITS = range(7, 16)
_NATIONAL_DIGITS = range(9, 13)

# --- folding ------------------------------------------------------------------------------

_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2212\ufe63\uff0d")


class _FoldTable(dict[int, int]):
    """``str.translate`` table filled on first sight of each character: one character to one
    character, so positions never move."""

    def __missing__(self, code: int) -> int:
        char = chr(code)
        folded = code
        compatible = unicodedata.normalize("NFKC", char)
        if len(compatible) == 1 and compatible.isascii():
            folded = ord(compatible)  # no-break/thin spaces, full-width digits and symbols
        elif (digit := unicodedata.decimal(char, None)) is not None:
            folded = 48 + digit  # Arabic-Indic, Devanagari... digits
        elif char in _DASHES:
            folded = 45
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """``text`` with look-alike characters replaced by their ASCII form, position for position."""
    return text if text.isascii() else text.translate(_FOLD)


# --- checks -------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits.

    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    """
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616 check (mod 97 == 1) of a compact, upper-case IBAN.

    >>> iban_valid("GB82WEST12345698765432"), iban_valid("GB82WEST12345698765433")
    (True, False)
    """
    if len(candidate) not in _IBAN_LENGTHS or not candidate[2:4].isdigit():
        return False
    rearranged = candidate[4:] + candidate[:4]
    remainder = 0
    for char in rearranged:
        value = int(char, 36)  # digits keep their value, A=10 ... Z=35
        remainder = (remainder * (100 if value > 9 else 10) + value) % 97
    return remainder == 1


def ssn_issuable(area: str, group: str, serial: str) -> bool:
    """Whether a US SSN could have been issued (area 000, 666, 9xx, group 00 and serial 0000
    never are).

    >>> ssn_issuable("078", "05", "1120"), ssn_issuable("666", "12", "3456")
    (True, False)
    """
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _digit_count(text: str) -> int:
    return sum(char.isdigit() for char in text)


def _prefixes_at_separators(text: str) -> Iterable[str]:
    """``text`` then its prefixes cut before each separator, longest first."""
    yield text
    for match in reversed(list(_SEPARATOR.finditer(text))):
        yield text[: match.start()]


Span = tuple[int, int] | None  # where, in a candidate, the PII is (None: nowhere)
_DIGIT_RUN = re.compile(r"[0-9]+")


class _Check(Protocol):
    def __call__(self, candidate: str) -> Span: ...


def _card_shaped(lengths: list[int]) -> bool:
    """Digit-group lengths as cards are written: one run, 4-4-4-4(-x), or 4-6-5 / 4-6-4."""
    if len(lengths) == 1:
        return True
    if all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4:
        return True
    return lengths in ([4, 6, 5], [4, 6, 4])


def _compact(text: str) -> str:
    return text.replace(" ", "").replace("-", "").replace(".", "")


def _card_check(candidate: str) -> Span:
    """The whole run of digit groups when it is, or holds, a Luhn-valid 13-19 digit card.

    A card inside a longer run (next to a phone number, a quantity...) must be written in
    groups the way cards are; the run is then redacted whole, since which neighbouring
    digits belong to the card cannot be told apart. Dotted runs are amounts and decimals
    more often than cards: in them only digits grouped the way cards are count.
    """
    groups = [(m.start(), m.end()) for m in _DIGIT_RUN.finditer(candidate)]
    lengths = [end - start for start, end in groups]
    dotted = "." in candidate
    if not dotted and sum(lengths) <= 19 and luhn_valid(_compact(candidate)):
        return 0, len(candidate)
    for first in range(len(groups)):
        count = 0
        for last in range(first, len(groups)):
            count += lengths[last]
            if count > 19:
                break
            if (
                count >= 13
                and not (dotted and first == last)  # 3.14159265358979 is no card
                and _card_shaped(lengths[first : last + 1])
                and luhn_valid(_compact(candidate[groups[first][0] : groups[last][1]]))
            ):
                return 0, len(candidate)
    return None


def _iban_check(candidate: str) -> Span:
    """The prefix that is a valid IBAN of its country's length, ending at a group boundary
    (the pattern may run on into the next words)."""
    compact_positions = [i for i, char in enumerate(candidate) if char not in " -"]
    compact = "".join(candidate[i] for i in compact_positions).upper()
    length = IBAN_LENGTHS.get(compact[:2], len(compact))
    if length > len(compact) or not iban_valid(compact[:length]):
        return None
    end = compact_positions[length - 1] + 1
    if end < len(candidate) and candidate[end] not in " -":
        return None
    return 0, end


def _phone_number_check(candidate: str) -> Span:
    """The longest whole-group prefix with a plausible digit count for its format."""
    international = candidate[0] == "+" or candidate.startswith("00")
    if international and candidate[0] == "0" and not _SEPARATOR.search(candidate):
        return None  # 00 followed by a bare digit run reads as an identifier, not a number
    for prefix in _prefixes_at_separators(candidate):
        digits = _digit_count(prefix) - (2 if prefix.startswith("00") else 0)
        if international:
            if digits in _E164_DIGITS:
                return 0, len(prefix)
        elif prefix[0] == "(" or prefix[0] == "0":
            if digits in _NATIONAL_DIGITS:
                return 0, len(prefix)
        elif digits in (10, 11):  # North American, with or without the leading 1
            return 0, len(prefix)
    return None


def _phone_check(candidate: str) -> Span:
    """As :func:`_phone_number_check`; an extension goes with a number that is whole."""
    extension = _EXTENSION_AT_END.search(candidate)
    if extension is None:
        return _phone_number_check(candidate)
    number = candidate[: extension.start()]
    span = _phone_number_check(number)
    if span is not None and span[1] == len(number):
        return 0, len(candidate)
    return span


def _ssn_check(candidate: str) -> Span:
    """The nine digits at the end, when they could have been issued."""
    digits = _SSN_DIGITS_AT_END.search(candidate)
    if digits is None or not ssn_issuable(*digits.groups()):
        return None
    return digits.start(), len(candidate)


def _ipv6_check(candidate: str) -> Span:
    """The candidate (less stray trailing colons) when it parses as IPv6."""
    trimmed = candidate
    while trimmed:
        try:
            ipaddress.IPv6Address(trimmed)
        except ValueError:
            if not trimmed.endswith(":"):
                return None
            trimmed = trimmed[:-1]
        else:
            return 0, len(trimmed)
    return None


def _always(candidate: str) -> Span:
    return 0, len(candidate)


class Rule:
    """One built-in kind: a pattern, a check locating the PII inside each match, and a cheap
    precondition (a substring every match contains, a least number of ASCII digits, of
    characters).

    After a hit the scan resumes right behind it, so a match that ran on into the next
    number or word (``020 7946 0958 020 7946 0959``) is searched again.
    """

    def __init__(
        self,
        placeholder: str,
        pattern: re.Pattern[str],
        check: _Check,
        needs: str = "",
        min_digits: int = 0,
        min_chars: int = 0,
    ) -> None:
        self.placeholder = placeholder
        self.pattern = pattern
        self.check = check
        self.needs = needs
        self.min_digits = min_digits
        self.min_chars = min_chars

    def spans(self, folded: str) -> list[tuple[int, int]]:
        """Where this kind is in ``folded`` (a folded text), in order, not overlapping."""
        search, check = self.pattern.search, self.check
        found: list[tuple[int, int]] = []
        match = search(folded)
        while match is not None:
            span = check(match.group())
            if span is None:
                resume = match.end()
            else:
                resume = match.start() + span[1]
                found.append((match.start() + span[0], resume))
            match = search(folded, resume)
        return found


# Order matters: specific kinds first, so that their digits are gone before the number passes.
RULES: tuple[tuple[str, Rule], ...] = (
    ("email", Rule(PLACEHOLDERS["email"], _EMAIL, _always, needs="@")),
    ("email", Rule(PLACEHOLDERS["email"], _EMAIL_URL_ENCODED, _always, needs="%40")),
    ("iban", Rule(PLACEHOLDERS["iban"], _IBAN, _iban_check, min_digits=2, min_chars=15)),
    ("ip", Rule(PLACEHOLDERS["ip"], _IPV6, _ipv6_check, needs=":")),
    ("ip", Rule(PLACEHOLDERS["ip"], _IPV4, _always, needs=".", min_digits=4)),
    ("ssn", Rule(PLACEHOLDERS["ssn"], _SSN, _ssn_check, min_digits=9)),
    ("card", Rule(PLACEHOLDERS["card"], _CARD, _card_check, min_digits=13)),
    ("phone", Rule(PLACEHOLDERS["phone"], _PHONE, _phone_check, min_digits=7)),
)


def ascii_digits(text: str) -> int:
    """How many ASCII digits ``text`` holds (the precondition of the number kinds).

    >>> ascii_digits("tel. 0\u00a0800-12\uff13")  # the full-width digit is no ASCII digit
    6
    """
    # Bytes 0x30-0x39 in UTF-8 are the ASCII digits only (a multi-byte character's bytes are
    # all >= 0x80), and deleting them is one C loop: 6x faster than ten str.count calls, and
    # this runs on every id and text at the door.
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw) - len(raw.translate(None, _ASCII_DIGITS))


_ASCII_DIGITS = b"0123456789"
