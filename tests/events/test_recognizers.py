"""The pluggable recognizer hook: custom kinds of PII, configured by settings."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from pydantic import ValidationError

from tailorbot.config import Settings
from tailorbot.events.recognizers import PatternRecognizer, Recognizer, load_recognizer
from tailorbot.events.redact import Redactor
from tailorbot.events.schema import EVENT_ADAPTER


class EmployeeIdRecognizer(Recognizer):
    """Employee numbers ``EMP-`` + 6 digits whose digits sum to a multiple of 7 (a made-up
    checksum, the kind of rule a regular expression alone cannot say)."""

    kind = "employee_id"

    def find(self, text: str) -> Iterable[tuple[int, int]]:
        for match in re.finditer(r"\bEMP-([0-9]{6})\b", text):
            if sum(map(int, match.group(1))) % 7 == 0:
                yield match.span()


class OutOfRange(Recognizer):
    kind = "broken"

    def find(self, text: str) -> Iterable[tuple[int, int]]:
        return [(0, len(text) + 5)]


NOT_A_RECOGNIZER = object()


def test_a_custom_recognizer_runs_after_the_built_in_kinds() -> None:
    redactor = Redactor(recognizers=[EmployeeIdRecognizer()])
    text = "EMP-000007 and EMP-000008 wrote from bob@example.com"
    assert redactor.redact(text) == "<EMPLOYEE_ID> and EMP-000008 wrote from <EMAIL>"


def test_a_custom_recognizer_also_sees_texts_without_digits_or_at_signs() -> None:
    redactor = Redactor(recognizers=[PatternRecognizer("codename", r"\bProject [A-Z]\w+")])
    assert redactor.redact("about Project Falcon") == "about <CODENAME>"


def test_overlapping_spans_are_merged() -> None:
    redactor = Redactor(
        recognizers=[
            PatternRecognizer("ticket", r"TCK-[0-9]+"),
            PatternRecognizer("ticket_ref", r"[0-9]+-X"),
        ]
    )
    assert redactor.redact("see TCK-12-X now") == "see <TICKET>-X now"
    assert (
        Redactor(recognizers=[PatternRecognizer("a", "ab"), PatternRecognizer("b", "bc")]).redact(
            "xabcx"
        )
        == "x<A>cx"
    )


def test_a_span_outside_the_text_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="recognizer 'broken' returned the span"):
        Redactor(recognizers=[OutOfRange()]).redact("hello")


def test_recognizers_are_named_in_settings(tmp_path: Path) -> None:
    settings = Settings.load(
        data_dir=tmp_path,
        redact_recognizers=("tests.events.test_recognizers:EmployeeIdRecognizer",),
        redact_patterns={"ticket": r"\bTCK-[0-9]{4}\b"},
    )
    redactor = Redactor.from_settings(settings)
    event = EVENT_ADAPTER.validate_python(
        {
            "type": "message",
            "role": "customer",
            "text": "I am EMP-000007, ticket TCK-1234",
            "user_id": "u1",
            "session_id": "s1",
            "timestamp": "2026-01-01T10:00:00Z",
            "metadata": {"EMP-000007": "TCK-9999"},
        }
    )
    redacted = redactor.redact_event(event)
    assert redacted.text == "I am <EMPLOYEE_ID>, ticket <TICKET>"
    assert redacted.metadata == {"<EMPLOYEE_ID>": "<TICKET>"}


def test_settings_reach_a_child_process_environment(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, redact_patterns={"ticket": r"TCK-[0-9]+"})
    env = settings.to_env()
    assert env["TAILORBOT_REDACT_PATTERNS"] == '{"ticket": "TCK-[0-9]+"}'


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("no_colon_here", "module:attribute"),
        ("tests.events.no_such_module:X", "cannot import"),
        ("tests.events.test_recognizers:Missing", "has no attribute 'Missing'"),
        ("tests.events.test_recognizers:NOT_A_RECOGNIZER", "not a Recognizer"),
    ],
)
def test_a_bad_recognizer_name_is_one_clear_error(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        load_recognizer(spec)


@pytest.mark.parametrize(
    ("patterns", "words"),
    [
        ({"ticket": "TCK-[0-9"}, "not a valid regular expression"),
        ({"Bad Kind": "x"}, "kind"),
        ({"empty": ""}, "matches the empty string"),
        ({"email": "x"}, "built-in"),
    ],
)
def test_bad_patterns_in_settings_are_refused_at_load(
    tmp_path: Path, patterns: dict, words: str
) -> None:
    with pytest.raises(ValidationError, match=words):
        Settings.load(data_dir=tmp_path, redact_patterns=patterns)
