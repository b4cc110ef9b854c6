"""PII redaction: typed placeholders for e-mails, phone numbers, cards, IBANs, IP addresses,
US social security numbers and any kind a pluggable recognizer adds.

Redaction runs at the door, before an event is stored anywhere. The built-in kinds
(:mod:`tailorbot.events.pii`) run in a fixed order so that a more specific kind wins (an
e-mail's digits are never taken for a phone number), each only when its cheap precondition
holds (an ``@`` for e-mails, enough digits for numbers...); they match look-alike characters
too (no-break spaces, full-width digits, ``%40`` for ``@``). Recognizers named in settings
(:mod:`tailorbot.events.recognizers`) run after them. In an event, free-text fields, metadata
keys and metadata values (strings, and integers that are card numbers) are redacted; a
metadata value that is a UUID or a 32/40/64-character hex token is an id and stays as it is.

>>> r = Redactor()
>>> r.redact("mail jane.doe@example.com or call +44 20 7946 0958")
'mail <EMAIL> or call <PHONE>'
>>> r.redact("card 4111 1111 1111 1111, not 4111 1111 1111 1112")
'card <CARD>, not 4111 1111 1111 1112'
>>> r.redact("jane%40example.com, 415\\u00a0555\\u00a02671 x12, SSN 078-05-1120")
'<EMAIL>, <PHONE>, SSN <SSN>'
>>> Redactor(kinds=("ip",)).redact("from 10.0.0.7, bob@example.com")
'from <IP>, bob@example.com'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tailorbot.config import REDACTABLE_KINDS
from tailorbot.events.pii import (
    PLACEHOLDERS,
    RANDOM_TOKEN,
    RULES,
    ascii_digits,
    fold,
    iban_valid,
    luhn_valid,
)
from tailorbot.events.recognizers import Recognizer, recognizers_from_settings
from tailorbot.events.schema import FREE_TEXT_FIELDS, EventBase, MetadataValue

__all__ = ["PLACEHOLDERS", "Redactor", "iban_valid", "luhn_valid"]

_CARD_MIN_DIGITS = 13  # an integer metadata value shorter than this cannot be a card
CLEAN_KEYS_MAX = 4096  # metadata keys a redactor remembers as holding no PII


def _splice(text: str, spans: list[tuple[int, int]], placeholder: str) -> str:
    parts: list[str] = []
    position = 0
    for start, end in spans:
        parts.append(text[position:start])
        parts.append(placeholder)
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _merged(spans: Iterable[tuple[int, int]], length: int, kind: str) -> list[tuple[int, int]]:
    """Spans sorted, overlapping ones joined; a span outside the text is a recognizer bug."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if not 0 <= start < end <= length:
            raise ValueError(
                f"recognizer {kind!r} returned the span {(start, end)} for a text of "
                f"{length} characters"
            )
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class Redactor:
    """Replaces PII in free text with typed placeholders.

    Parameters
    ----------
    kinds
        Which built-in kinds to redact, among ``email``, ``phone``, ``card``, ``iban``,
        ``ip`` and ``ssn``.
    enabled
        ``False`` turns the redactor into a pass-through (recognizers included).
    recognizers
        More kinds (:class:`~tailorbot.events.recognizers.Recognizer`), run in order after
        the built-in ones.

    >>> Redactor(kinds=("email",)).redact("jo@example.org, +1 415 555 2671")
    '<EMAIL>, +1 415 555 2671'
    """

    def __init__(
        self,
        kinds: Iterable[str] = REDACTABLE_KINDS,
        enabled: bool = True,
        recognizers: Iterable[Recognizer] = (),
    ) -> None:
        self.kinds = tuple(kinds)
        self.enabled = enabled
        self.recognizers = tuple(recognizers)
        unknown = sorted(set(self.kinds) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(
                f"unknown redaction kinds {unknown}; expected some of {sorted(PLACEHOLDERS)}"
            )
        wanted = set(self.kinds) if enabled else set()
        self._rules = tuple(rule for kind, rule in RULES if kind in wanted)
        self._recognizers = self.recognizers if enabled else ()
        self._active = bool(self._rules or self._recognizers)
        # Metadata keys in which nothing was found: a bot sends the same few with every
        # event. Only those, which the log keeps as they are anyway: a key redaction
        # changed (PII in it) is redacted again each time, never held here.
        self._clean_keys: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Any) -> Redactor:
        """Configured by ``settings.redact``, ``redact_kinds``, ``redact_recognizers`` and
        ``redact_patterns`` (a recognizer that cannot be loaded is a :class:`ValueError`)."""
        recognizers = recognizers_from_settings(settings) if settings.redact else []
        return cls(kinds=settings.redact_kinds, enabled=settings.redact, recognizers=recognizers)

    def redact(self, text: str) -> str:
        """``text`` with every enabled kind of PII replaced by its placeholder."""
        if self._rules:
            text = self._redact_built_in(text)
        for recognizer in self._recognizers:
            spans = _merged(recognizer.find(text), len(text), recognizer.kind)
            if spans:
                text = _splice(text, spans, recognizer.placeholder)
        return text

    def _redact_built_in(self, text: str) -> str:
        folded = fold(text)
        digits = ascii_digits(folded)
        if digits < 2 and "@" not in folded and ":" not in folded:
            return text  # the common case: no kind can match
        for rule in self._rules:
            if digits >= rule.min_digits and len(folded) >= rule.min_chars and rule.needs in folded:
                spans = rule.spans(folded)
                if spans:
                    text = _splice(text, spans, rule.placeholder)
                    folded = _splice(folded, spans, rule.placeholder)
        return text

    def redact_event(self, event: EventBase) -> EventBase:
        """The event with its free-text fields and its metadata keys and values redacted.

        Returns the same object when there was nothing to redact (events are frozen).
        """
        if not self._active:
            return event
        changes: dict[str, Any] = {}
        fields = event.__dict__  # what getattr reads, minus pydantic's slow miss path
        for name in FREE_TEXT_FIELDS:
            value = fields.get(name)
            if isinstance(value, str) and value:
                redacted = self.redact(value)
                if redacted != value:
                    changes[name] = redacted
        found = fields.get("metadata")  # every event has it: a pydantic read is ~400 instructions
        if found:
            metadata = self._redact_metadata(found)
            if metadata is not None:
                changes["metadata"] = metadata
        return event.model_copy(update=changes) if changes else event

    def _redact_metadata(
        self, metadata: dict[str, MetadataValue]
    ) -> dict[str, MetadataValue] | None:
        """The redacted metadata, or ``None`` when nothing in it changed."""
        redacted: dict[str, MetadataValue] = {}
        changed = False
        clean = self._clean_keys
        for key, value in metadata.items():
            new_value = self._redact_value(value)
            if key in clean:
                new_key = key
            else:
                new_key = self.redact(key)
                if new_key == key and len(clean) < CLEAN_KEYS_MAX:  # keys come from clients
                    clean.add(key)
            if new_key != key:
                new_key = _free_key(new_key, redacted, metadata)
            changed = changed or new_key != key or new_value is not value
            redacted[new_key] = new_value
        return redacted if changed else None

    def _redact_value(self, value: MetadataValue) -> MetadataValue:
        if isinstance(value, str):
            if RANDOM_TOKEN.fullmatch(value):
                return value  # an id (the decision id tailorbot writes here), not PII
            redacted = self.redact(value)
            return value if redacted == value else redacted
        if type(value) is int and abs(value) >= 10 ** (_CARD_MIN_DIGITS - 1):
            # a card number sent as a JSON number is a bare digit run like any other
            text = str(value)
            redacted = self.redact(text)
            return value if redacted == text else redacted
        return value


def _free_key(key: str, taken: dict[str, Any], original: dict[str, Any]) -> str:
    """``key``, or ``key#2``, ``key#3``... when two keys redact to the same placeholder."""
    candidate, number = key, 1
    while candidate in taken or candidate in original:
        number += 1
        candidate = f"{key}#{number}"
    return candidate
