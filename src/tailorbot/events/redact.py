"""PII redaction: typed placeholders for e-mails, phone numbers, cards, IBANs and IP addresses.

Redaction runs at the door, before an event is stored anywhere. Every kind is one precompiled
regular expression plus, where a pattern alone over-matches, a checksum (Luhn for cards,
ISO 13616 mod-97 for IBANs, :mod:`ipaddress` for IPv6). Kinds run in a fixed order so that a
more specific kind wins (an e-mail's digits are never taken for a phone number), and a pass
only runs when its cheap precondition holds (an ``@`` for e-mails, a digit for numbers...).

What counts as a phone number: a number with a ``+`` (or ``00``) country prefix, a North
American ``(415) 555-2671`` / ``415-555-2671`` number, or a trunk-prefixed national number
written in groups (``020 7946 0958``, ``06 12 34 56 78``). A bare digit run (an order number)
or an amount is not a phone number.

>>> r = Redactor()
>>> r.redact("mail jane.doe@example.com or call +44 20 7946 0958")
'mail <EMAIL> or call <PHONE>'
>>> r.redact("card 4111 1111 1111 1111, not 4111 1111 1111 1112")
'card <CARD>, not 4111 1111 1111 1112'
>>> Redactor(kinds=("ip",)).redact("from 10.0.0.7, bob@example.com")
'from <IP>, bob@example.com'
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any, Protocol

from tailorbot.config import REDACTABLE_KINDS
from tailorbot.events.schema import FREE_TEXT_FIELDS, EventBase

PLACEHOLDERS = {
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "card": "<CARD>",
    "iban": "<IBAN>",
    "ip": "<IP>",
}

_DIGITS = "0123456789"
_SEPARATOR = re.compile(r"[ \-.]")

_EMAIL = re.compile(
    r"(?<![\w.%+\-])[\w%+\-](?:[\w.%+\-]*[\w%+\-])?"  # local part, not starting mid-word
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w\-])"
)
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
_CARD = re.compile(r"(?<![\w+\-.])[0-9](?:[ \-]?[0-9]){12,}(?![\w])")  # 13+ digits
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
    r")(?![\w])"
)

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


def _card_check(candidate: str) -> Span:
    """The whole run of digit groups when it is, or holds, a Luhn-valid 13-19 digit card.

    A card inside a longer run (next to a phone number, a quantity...) must be written in
    groups the way cards are; the run is then redacted whole, since which neighbouring
    digits belong to the card cannot be told apart.
    """
    groups = [(m.start(), m.end()) for m in _DIGIT_RUN.finditer(candidate)]
    lengths = [end - start for start, end in groups]
    if sum(lengths) <= 19 and luhn_valid(_compact(candidate)):
        return 0, len(candidate)
    for first in range(len(groups)):
        count = 0
        for last in range(first, len(groups)):
            count += lengths[last]
            if count > 19:
                break
            if (
                count >= 13
                and _card_shaped(lengths[first : last + 1])
                and luhn_valid(_compact(candidate[groups[first][0] : groups[last][1]]))
            ):
                return 0, len(candidate)
    return None


def _compact(text: str) -> str:
    return text.replace(" ", "").replace("-", "")


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


def _phone_check(candidate: str) -> Span:
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


class _Rule:
    """One kind: a pattern, a check locating the PII inside each match, a precondition.

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
    ) -> None:
        self.placeholder = placeholder
        self.pattern = pattern
        self.check = check
        self.needs = needs  # a character every match contains
        self.min_digits = min_digits  # digits every match contains

    def apply(self, text: str) -> str:
        search, check = self.pattern.search, self.check
        parts: list[str] = []
        position = 0
        match = search(text)
        while match is not None:
            span = check(match.group())
            if span is None:
                resume = match.end()
            else:
                parts.append(text[position : match.start() + span[0]])
                parts.append(self.placeholder)
                position = resume = match.start() + span[1]
            match = search(text, resume)
        if not parts:
            return text
        parts.append(text[position:])
        return "".join(parts)


# Order matters: specific kinds first, so that their digits are gone before the number passes.
_RULES: tuple[tuple[str, _Rule], ...] = (
    ("email", _Rule(PLACEHOLDERS["email"], _EMAIL, _always, needs="@")),
    ("iban", _Rule(PLACEHOLDERS["iban"], _IBAN, _iban_check, min_digits=2)),
    ("ip", _Rule(PLACEHOLDERS["ip"], _IPV6, _ipv6_check, needs=":")),
    ("ip", _Rule(PLACEHOLDERS["ip"], _IPV4, _always, needs=".", min_digits=4)),
    ("card", _Rule(PLACEHOLDERS["card"], _CARD, _card_check, min_digits=13)),
    ("phone", _Rule(PLACEHOLDERS["phone"], _PHONE, _phone_check, min_digits=7)),
)


class Redactor:
    """Replaces PII in free text with typed placeholders.

    Parameters
    ----------
    kinds
        Which kinds to redact, among ``email``, ``phone``, ``card``, ``iban`` and ``ip``.
    enabled
        ``False`` turns the redactor into a pass-through.

    >>> Redactor(kinds=("email",)).redact("jo@example.org, +1 415 555 2671")
    '<EMAIL>, +1 415 555 2671'
    """

    def __init__(self, kinds: Iterable[str] = REDACTABLE_KINDS, enabled: bool = True) -> None:
        self.kinds = tuple(kinds)
        self.enabled = enabled
        unknown = sorted(set(self.kinds) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(
                f"unknown redaction kinds {unknown}; expected some of {sorted(PLACEHOLDERS)}"
            )
        wanted = set(self.kinds) if enabled else set()
        self._rules = tuple(rule for kind, rule in _RULES if kind in wanted)

    @classmethod
    def from_settings(cls, settings: Any) -> Redactor:
        """Configured by ``settings.redact`` and ``settings.redact_kinds``."""
        return cls(kinds=settings.redact_kinds, enabled=settings.redact)

    def redact(self, text: str) -> str:
        """``text`` with every enabled kind of PII replaced by its placeholder."""
        digits = sum(map(text.count, _DIGITS))
        if digits < 2 and "@" not in text and ":" not in text:
            return text  # the common case: no kind can match
        for rule in self._rules:
            if digits >= rule.min_digits and rule.needs in text:
                text = rule.apply(text)
        return text

    def redact_event(self, event: EventBase) -> EventBase:
        """The event with its free-text fields and string metadata values redacted.

        Returns the same object when there was nothing to redact (events are frozen).
        """
        if not self._rules:
            return event
        changes: dict[str, Any] = {}
        fields = event.__dict__  # what getattr reads, minus pydantic's slow miss path
        for name in FREE_TEXT_FIELDS:
            value = fields.get(name)
            if isinstance(value, str) and value:
                redacted = self.redact(value)
                if redacted != value:
                    changes[name] = redacted
        if event.metadata:
            metadata = {
                key: self.redact(value) if isinstance(value, str) else value
                for key, value in event.metadata.items()
            }
            if metadata != event.metadata:
                changes["metadata"] = metadata
        return event.model_copy(update=changes) if changes else event
