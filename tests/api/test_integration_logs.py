"""Chatbot integrations log a user only as ``user_ref`` (a one-way digest), never the raw id."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from tailorbot.errors import InvalidInput
from tailorbot.integrations.chatwoot import Conversation, IncomingMessage
from tailorbot.integrations.chatwoot_bot import ChatwootBot
from tailorbot.integrations.profiles import ProfileUpdater
from tailorbot.integrations.rasa_sink import ServiceSink
from tailorbot.telemetry.logs import user_ref

USER = "cust-88231-jq"


class _RefusingProfiles:
    """A profile updater that refuses every field, as for a slot that does not fit."""

    def update(self, user_id: str, fields: Any, if_missing: Any = None) -> None:
        raise InvalidInput("profile fields from the chatbot do not fit")


def _warnings(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def test_rasa_consumer_logs_a_user_ref(caplog: pytest.LogCaptureFixture) -> None:
    sink = ServiceSink(cast(Any, None), cast(ProfileUpdater, _RefusingProfiles()))
    logger = "tailorbot.integrations.rasa_sink"
    with caplog.at_level(logging.WARNING, logger=logger):
        sink.update_profile(USER, {"tier": "x" * 500})
    (line,) = _warnings(caplog, logger)
    assert USER not in line and user_ref(USER) in line, line


def test_chatwoot_bot_logs_a_user_ref(caplog: pytest.LogCaptureFixture) -> None:
    none = cast(Any, None)
    bot = ChatwootBot(none, none, none, cast(ProfileUpdater, _RefusingProfiles()), none)
    conversation = cast(Conversation, None)  # not read when the profile is written
    message = IncomingMessage(conversation, 1, "hi", "Jo", {"plan": "x" * 500})
    logger = "tailorbot.integrations.chatwoot_bot"
    with caplog.at_level(logging.WARNING, logger=logger):
        bot._update_profile(USER, message)
    (line,) = _warnings(caplog, logger)
    assert USER not in line and user_ref(USER) in line, line
