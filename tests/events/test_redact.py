from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailorbot.config import Settings
from tailorbot.events.redact import CLEAN_KEYS_MAX, Redactor, iban_valid, luhn_valid
from tailorbot.events.schema import EVENT_ADAPTER

REDACTOR = Redactor()

POSITIVES = [
    # e-mails
    ("write to jane.doe@example.com please", "write to <EMAIL> please"),
    ("jane.doe+tag@mail.example.co.uk.", "<EMAIL>."),
    ("JOSÉ.García@Example.ES", "<EMAIL>"),
    ("<a_b-c%d@sub-domain.example.org>", "<<EMAIL>>"),
    # phones, international
    ("call +44 20 7946 0958 now", "call <PHONE> now"),
    ("+1 (415) 555-2671", "<PHONE>"),
    ("+4915112345678", "<PHONE>"),
    ("+33 6 12 34 56 78", "<PHONE>"),
    ("+44 (0)20 7946 0958", "<PHONE>"),
    ("+49-151-1234-5678.", "<PHONE>."),
    ("0044 20 7946 0958", "<PHONE>"),
    ("tel:+31.20.123.4567", "tel:<PHONE>"),
    # phones, national
    ("(415) 555-2671", "<PHONE>"),
    ("415-555-2671", "<PHONE>"),
    ("415.555.2671", "<PHONE>"),
    ("415 555 2671", "<PHONE>"),
    ("1-800-555-0199", "<PHONE>"),
    ("020 7946 0958", "<PHONE>"),
    ("07700 900123", "<PHONE>"),
    ("(020) 7946 0958", "<PHONE>"),
    ("06 12 34 56 78", "<PHONE>"),
    ("06.12.34.56.78", "<PHONE>"),
    ("030 12345678", "<PHONE>"),
    ("020 7946 0958 12 times", "<PHONE> 12 times"),
    # cards (Luhn-valid test numbers)
    ("card 4111 1111 1111 1111 ok", "card <CARD> ok"),
    ("4111-1111-1111-1111", "<CARD>"),
    ("4111111111111111", "<CARD>"),
    ("5500 0000 0000 0004", "<CARD>"),
    ("amex 3782 822463 10005", "amex <CARD>"),
    ("6011000990139424", "<CARD>"),
    ("4222222222222", "<CARD>"),  # 13 digits
    ("4111 1111 1111 1111 2", "<CARD>"),  # a run holding a card is redacted whole
    # IBANs
    ("GB82 WEST 1234 5698 7654 32", "<IBAN>"),
    ("GB82WEST12345698765432", "<IBAN>"),
    ("iban de89 3704 0044 0532 0130 00 thanks", "iban <IBAN> thanks"),
    ("FR14 2004 1010 0505 0001 3M02 606", "<IBAN>"),
    ("NL91ABNA0417164300.", "<IBAN>."),
    ("NO9386011117947", "<IBAN>"),
    # IP addresses
    ("from 192.168.1.20 today", "from <IP> today"),
    ("host 10.0.0.1.", "host <IP>."),
    ("255.255.255.255", "<IP>"),
    ("2001:db8::ff00:42:8329.", "<IP>."),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "<IP>"),
    ("[2001:db8::1]:8080", "[<IP>]:8080"),
    ("::ffff:192.0.2.1", "<IP>"),
    ("fe80::1: is down", "<IP>: is down"),
    # several kinds in one text, and numbers right next to each other
    ("+44 20 7946 0958 4111 1111 1111 1111 ok", "+44 <CARD> ok"),
    ("020 7946 0958 020 7946 0959", "<PHONE> <PHONE>"),
    ("ref 12 4111 1111 1111 1111 5", "ref <CARD>"),
    ("call +1 415 555 2671 4111 1111 1111 1111", "call +1 <CARD>"),
    ("GB82 WEST 1234 5698 7654 32 DE89 3704 0044 0532 0130 00", "<IBAN> <IBAN>"),
    ("4111111111111111 5500000000000004", "<CARD>"),
    ("card 4111 1111 1111 1111, call 020 7946 0958", "card <CARD>, call <PHONE>"),
    (
        "I'm bob@example.com, +1 415 555 2671, card 4111 1111 1111 1111, IP 10.1.2.3",
        "I'm <EMAIL>, <PHONE>, card <CARD>, IP <IP>",
    ),
]

VARIANTS = [
    # cards written with no-break / thin / narrow spaces, dots, full-width digits
    ("card 4111\u00a01111\u00a01111\u00a01111 ok", "card <CARD> ok"),
    ("4111\u202f1111\u202f1111\u202f1111", "<CARD>"),
    ("4111\u20091111\u20091111\u20091111", "<CARD>"),
    ("card 4111.1111.1111.1111.", "card <CARD>."),
    ("4111 1111 1111 1111 5500.0000.0000.0004 ok", "<CARD> ok"),
    # 14159265358976 alone is Luhn-valid: a decimal part is still no card
    ("pi 3.14159265358976 and 5500.0000.0000.0004", "pi 3.14159265358976 and <CARD>"),
    ("\uff14\uff11\uff11\uff11 1111 1111 1111", "<CARD>"),
    # other decimal digits: Arabic-Indic (a card), Devanagari (a phone)
    ("\u0664\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 1111", "<CARD>"),
    ("\u0966\u0968\u0966 \u096d\u096f\u096a\u096c \u0966\u096f\u096b\u096e", "<PHONE>"),
    # phones with no-break spaces, non-breaking hyphens, extensions
    ("call +44\u00a020\u00a07946\u00a00958 now", "call <PHONE> now"),
    ("415\u2011555\u20112671", "<PHONE>"),
    ("+1 415 555 2671 x123, thanks", "<PHONE>, thanks"),
    ("415-555-2671x9", "<PHONE>"),
    ("(415) 555-2671 ext. 1234", "<PHONE>"),
    ("+44 20 7946 0958 extension 12", "<PHONE>"),
    ("020\u00a07946\u00a00958 ext 7", "<PHONE>"),
    # URL-encoded and full-width e-mails
    ("jane%40example.com", "<EMAIL>"),
    ("mailto:jane.doe%40example.co.uk?subject=hi", "mailto:<EMAIL>?subject=hi"),
    ("/unsubscribe?email=jane%40example.com&x=1", "/unsubscribe?email=<EMAIL>&x=1"),
    ("jane\uff20example.com", "<EMAIL>"),
    # US social security numbers
    ("my ssn is 123-45-6789.", "my ssn is <SSN>."),
    ("SSN 078 05 1120", "SSN <SSN>"),
    ("SSN: 123456789", "SSN: <SSN>"),
    ("social security number 123456789, thanks", "social security number <SSN>, thanks"),
]

VARIANT_NEGATIVES = [
    "prix\u00a0: 12\u00a0\u20ac, d\u00e9lai\u00a03\u00a0jours",  # French spacing stays as is
    "1.234.567.890.123 EUR",  # a dotted amount is not a card
    "3.14159265358979",
    "666-12-3456 900-12-3456 123-00-4567 123-45-0000",  # never-issued SSNs
    "order 123456789 shipped",  # a bare 9-digit run without the word SSN
    "x-ray 415 or box x123",
    "100%40 of it",  # not an e-mail
]

NEGATIVES = [
    "no pii here, just words",
    "user@localhost or @handle or a@b",
    "order 4155552671 and ticket 1234567890123",  # bare digit runs are identifiers
    "amount $1,234,567.89 and 1 234 567 and 12.500.000 and 0.99 EUR",
    "at 10:30 on 01.02.2024, 2024-01-02 and 02/03/2024",
    "version 1.2.3 and 1.2.3.4.5 and 256.1.1.1",
    "call 911 or 112; year 2024; 5 items; 12345",
    "4111 1111 1111 1112",  # not Luhn-valid
    "1234 5678 9012 3456 7890 1234 5678",  # no Luhn-valid card-shaped window
    "4111111111111112",
    "GB82 WEST 1234 5698 7654 33",  # bad IBAN check digits
    "DE543704004405320130001",  # good check digits, but 23 characters: a German IBAN has 22
    "std::vector and a:b:c and 12:30:45",
    "room 42, floor 3, zip 94103, 3-5 days, 100-200 units",
    "model XR12 3456 is fine",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_redacts_pii(text: str, expected: str) -> None:
    assert REDACTOR.redact(text) == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_leaves_non_pii_alone(text: str) -> None:
    assert REDACTOR.redact(text) == text


@pytest.mark.parametrize(("text", "expected"), VARIANTS)
def test_redacts_variant_formats(text: str, expected: str) -> None:
    assert REDACTOR.redact(text) == expected


@pytest.mark.parametrize("text", VARIANT_NEGATIVES)
def test_leaves_variant_lookalikes_alone(text: str) -> None:
    assert REDACTOR.redact(text) == text


def test_text_around_a_variant_keeps_its_own_characters() -> None:
    text = "n\u00b0\u00a042 : 4111\u00a01111\u00a01111\u00a01111 \uff08ok\uff09"
    assert REDACTOR.redact(text) == "n\u00b0\u00a042 : <CARD> \uff08ok\uff09"


def test_kinds_select_what_is_redacted() -> None:
    text = "bob@example.com +44 20 7946 0958 4111111111111111 GB82WEST12345698765432 10.0.0.1"
    assert Redactor(kinds=("email", "ip")).redact(text) == (
        "<EMAIL> +44 20 7946 0958 4111111111111111 GB82WEST12345698765432 <IP>"
    )
    assert Redactor(kinds=("card",)).redact(text).count("<CARD>") == 1
    assert Redactor(enabled=False).redact(text) == text


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown redaction kinds \\['passport'\\]"):
        Redactor(kinds=("email", "passport"))


def test_from_settings(tmp_path) -> None:
    off = Redactor.from_settings(Settings.load(data_dir=tmp_path, redact=False))
    assert off.redact("bob@example.com") == "bob@example.com"
    only_ip = Redactor.from_settings(Settings.load(data_dir=tmp_path, redact_kinds=("ip",)))
    assert only_ip.redact("bob@example.com 10.0.0.1") == "bob@example.com <IP>"


def _event(**fields):
    base = {"user_id": "u1", "session_id": "s1", "timestamp": "2026-01-01T10:00:00Z"}
    return EVENT_ADAPTER.validate_python({**base, **fields})


def test_redact_event_covers_free_text_and_string_metadata() -> None:
    event = _event(
        type="message",
        role="customer",
        text="I am bob@example.com",
        metadata={"contact": "+44 20 7946 0958", "count": 12, "ok": "fine"},
    )
    redacted = REDACTOR.redact_event(event)
    assert redacted.text == "I am <EMAIL>"
    assert redacted.metadata == {"contact": "<PHONE>", "count": 12, "ok": "fine"}
    assert event.text == "I am bob@example.com"  # the original is frozen, not mutated
    handoff = REDACTOR.redact_event(_event(type="handoff", reason="card 4111-1111-1111-1111"))
    assert handoff.reason == "card <CARD>"


def test_redact_event_returns_the_same_object_when_clean() -> None:
    event = _event(type="message", role="bot", text="hello", metadata={"a": "b"})
    assert REDACTOR.redact_event(event) is event
    rating = _event(type="rating", score=4)
    assert REDACTOR.redact_event(rating) is rating


def test_checksums() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE88370400440532013000")
    assert not iban_valid("DEXX370400440532013000")


def test_long_adversarial_inputs_finish() -> None:
    # Patterns are anchored at the start of a run; these would take ages with backtracking.
    for text in (
        "a" * 5000,
        "1" * 5000,
        "1 " * 2500,
        "a." * 2500 + "@",
        "1:" * 2500,
        "Ab12" * 1250,
    ):
        assert REDACTOR.redact(text) == text


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable: one check digit always fits")


@given(st.integers(min_value=12, max_value=18), st.randoms(use_true_random=False))
def test_any_luhn_valid_card_is_redacted(length: int, rng: random.Random) -> None:
    body = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(length - 1))
    number = _luhn_complete(body)
    grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    assert REDACTOR.redact(f"pay with {grouped} today") == "pay with <CARD> today"
    assert REDACTOR.redact(f"pay with {number}.") == "pay with <CARD>."


@given(st.ip_addresses(v=4))
def test_any_ipv4_is_redacted(address) -> None:
    assert REDACTOR.redact(f"from {address} now") == "from <IP> now"


@given(st.ip_addresses(v=6))
def test_any_ipv6_is_redacted(address) -> None:
    assert REDACTOR.redact(f"from {address} now") == "from <IP> now"


def test_metadata_keys_are_redacted_too() -> None:
    event = _event(
        type="session_started",
        metadata={"jane@example.com": "vip", "+44 20 7946 0958": 1, "plan": "gold"},
    )
    redacted = REDACTOR.redact_event(event)
    assert redacted.metadata == {"<EMAIL>": "vip", "<PHONE>": 1, "plan": "gold"}


def test_only_keys_without_pii_are_remembered_and_each_event_is_redacted_alike() -> None:
    redactor = Redactor()
    metadata = {"jane@example.com": "vip", "plan": "gold", "decision_id": "x"}
    first = redactor.redact_event(_event(type="session_started", metadata=metadata)).metadata
    again = redactor.redact_event(_event(type="session_started", metadata=metadata)).metadata
    assert first == again == {"<EMAIL>": "vip", "plan": "gold", "decision_id": "x"}
    assert redactor._clean_keys == {"plan", "decision_id"}  # never the key with an email
    for n in range(CLEAN_KEYS_MAX + 10):  # bounded: more keys are redacted, not remembered
        redactor.redact_event(_event(type="session_started", metadata={f"k{n}": 1}))
    assert len(redactor._clean_keys) == CLEAN_KEYS_MAX


def test_keys_that_redact_to_the_same_placeholder_are_all_kept() -> None:
    event = _event(
        type="session_started",
        metadata={"a@example.com": 1, "b@example.com": 2, "<EMAIL>": 3},
    )
    redacted = REDACTOR.redact_event(event).metadata
    assert sorted(redacted.values()) == [1, 2, 3]
    assert not any("example.com" in key for key in redacted)
    assert all(key.startswith("<EMAIL>") for key in redacted)


def test_a_card_number_sent_as_a_json_integer_is_redacted() -> None:
    event = _event(
        type="session_started",
        metadata={"card": 4111111111111111, "order": 4111111111111112, "n": 7, "ok": True},
    )
    redacted = REDACTOR.redact_event(event).metadata
    assert redacted == {"card": "<CARD>", "order": 4111111111111112, "n": 7, "ok": True}


def test_variants_are_redacted_in_events() -> None:
    event = _event(
        type="handoff",
        reason="call 415\u00a0555\u00a02671 x12 or jane%40example.com, SSN 123-45-6789",
    )
    assert REDACTOR.redact_event(event).reason == "call <PHONE> or <EMAIL>, SSN <SSN>"


def test_a_metadata_value_that_is_an_id_is_kept() -> None:
    """A decision id (a uuid4 hex) that passes the IBAN check by chance (about one in 2,500
    do) is an id, not PII: the feedback events tailorbot logs keep their decision."""
    decision_id = "dc84556ee3d348029a4528a4daabbe1c"
    assert REDACTOR.redact(decision_id) == "<IBAN>"  # the pattern and the checksum hold
    event = _event(
        type="rating",
        score=4,
        metadata={"decision_id": decision_id, "iban": "DE89 3704 0044 0532 0130 00"},
    )
    redacted = REDACTOR.redact_event(event).metadata
    assert redacted == {"decision_id": decision_id, "iban": "<IBAN>"}
