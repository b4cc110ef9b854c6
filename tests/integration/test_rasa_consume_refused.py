"""`tailorbot rasa consume` against a real broker: a batch whose every event tailorbot
refuses (40 days old) is skipped and committed, so the next run does not read it again."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.test_rasa_consume import consume, publish_like_rasa

pytestmark = pytest.mark.integration


def test_a_batch_refused_whole_is_committed(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"rasa-old-{uuid.uuid4().hex[:10]}"
    group = f"tb-rasa-old-{uuid.uuid4().hex[:8]}"
    old = time.time() - 40 * 86400  # beyond max_event_age_s (30 days)
    events = [
        {"sender_id": "c-old", "event": "user", "timestamp": old + i, "text": f"message {i}"}
        for i in range(3)
    ]
    publish_like_rasa(
        kafka_bootstrap, topic, [json.dumps(e).encode() for e in events], ["c-old"] * 3
    )
    out = consume(kafka_bootstrap, topic, group, tmp_path)
    assert "events ingested: 0, records skipped: 3, records committed: 3" in out
    again = consume(kafka_bootstrap, topic, group, tmp_path)
    assert "events ingested: 0, records skipped: 0, records committed: 0" in again
