"""Identifiers (user, session, event, article, decision ids) must be pseudonymous.

Ids are keys: they reach the log, the store, the archive and Kafka as they are, so they
cannot be redacted like text. An id in which a built-in kind of PII is recognized (an
e-mail, a phone number, a card, an IBAN, an IP address, a US SSN: the same patterns and
checks as redaction, :mod:`tailorbot.events.pii`) is refused with a reason that names the
kind, never the value. The chatbot sends its own pseudonymous ids (a database key, a UUID,
or a keyed hash of an e-mail); tailorbot never needs the person behind them.

UUIDs (``8-4-4-4-12`` hex) and hex tokens of 32, 40 or 64 characters (random ids, hashes),
whole or as a part of an id between separators (``<uuid4 hex>-message``), are never taken
for PII: one UUID in a few hundred would otherwise pass the IBAN or card checks by chance.

Not caught: a name (``jane-doe``), a kind only a recognizer from settings knows, PII split
by separators the patterns do not read as one number.

>>> pii_kind_of("jane@example.com"), pii_kind_of("cust-000123")
('email', None)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, Field

from tailorbot.events.pii import RANDOM_TOKEN, RULES, SHORTEST_RANDOM_TOKEN, ascii_digits

KIND_NAMES = {
    "email": "an e-mail address",
    "phone": "a phone number",
    "card": "a payment card number",
    "iban": "an IBAN",
    "ip": "an IP address",
    "ssn": "a US social security number",
}
ID_PATTERN = r"^[A-Za-z0-9_.:@\-]+$"
# The rules' preconditions unpacked once: most ids pass none of them, and reading them from
# the rules took a third of the check of an id (run on every new id at the door).
_RULE_GATES = tuple(
    (kind, rule.min_digits, rule.min_chars, rule.needs, rule.spans) for kind, rule in RULES
)


@lru_cache(maxsize=65_536)  # the same user and session ids come back event after event
def pii_kind_of(identifier: str) -> str | None:
    """The first built-in kind of PII found in ``identifier`` (an ASCII id), or ``None``."""
    # random tokens inside an id ("<uuid4 hex>-message") are no PII; the rest still counts
    if len(identifier) >= SHORTEST_RANDOM_TOKEN:
        identifier = RANDOM_TOKEN.sub("_", identifier)
    digits = ascii_digits(identifier)
    if digits < 2 and "@" not in identifier and ":" not in identifier:
        return None
    size = len(identifier)
    for kind, min_digits, min_chars, needs, spans in _RULE_GATES:
        if digits >= min_digits and size >= min_chars and needs in identifier and spans(identifier):
            return kind
    return None


def check_pseudonymous(identifier: str) -> str:
    """``identifier`` itself, or :class:`ValueError` naming the kind of PII it looks like."""
    kind = pii_kind_of(identifier)
    if kind is not None:
        raise ValueError(
            f"looks like {KIND_NAMES[kind]}; identifiers must not carry personal data: "
            "send a pseudonymous id (e.g. your own key for the person, or a keyed hash)"
        )
    return identifier


Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=ID_PATTERN),
    AfterValidator(check_pseudonymous),
]
