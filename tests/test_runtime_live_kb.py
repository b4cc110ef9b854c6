"""The live KB and hot swaps, as one process's runtime wires them: a KB change made here is
served at once (the door included, whatever ``kb_poll_s``), a change that would break the
fixed control variant is refused, and the metrics and the drift reference follow each swap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tailorbot.config import Settings
from tailorbot.errors import InvalidInput
from tailorbot.models import registry
from tailorbot.runtime import Runtime
from tests.api.support import event, wait_until
from tests.services.decisions.conftest import SEED, save_model, small_intent_model

ARTICLE = {"title": "Lockers", "body": "Pick your card up.", "intents": ["card_arrival"]}
TINY_KB = {
    "articles.yaml": "articles:\n  - {id: art-1, title: T, body: B., intents: [card_arrival]}\n",
    "templates.yaml": "templates:\n"
    "  - {id: tpl-default, default: true, variants: {a: 'Hi {name}', b: 'Hello {name}'}}\n",
}


def _runtime(data_dir: Path, **overrides: Any) -> Runtime:
    values: dict[str, Any] = {"seed": SEED, "bandit_sync_s": 0.0, "run_worker_in_server": False}
    return Runtime(Settings.load(data_dir=data_dir, **{**values, **overrides}))


def _info(runtime: Runtime, kind: str, version: str) -> float | None:
    labels = {"kind": kind, "version": version}
    return runtime.metrics.registry.get_sample_value("tailorbot_model_info", labels)


def test_the_door_accepts_a_new_article_right_after_the_change(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, kb_poll_s=60.0)
    try:
        viewed = [event("article_viewed", article_id="kb-lockers")]
        assert [p.field for p in runtime.ingestion.problems(viewed)] == ["article_id"]
        runtime.kb.put("article", "kb-lockers", ARTICLE)
        runtime.reload_kb()  # what PUT /v1/kb/... does after the change
        assert runtime.ingestion.problems(viewed) == []
    finally:
        runtime.stop()


def test_a_process_that_never_polls_serves_its_own_changes(tmp_path: Path) -> None:
    save_model(tmp_path)
    runtime = _runtime(tmp_path, kb_poll_s=0.0)
    try:
        service = runtime.load_decisions()
        version = runtime.kb.put("article", "kb-lockers", ARTICLE)
        runtime.reload_kb()
        assert service.models.versions["kb"] == f"live-v{version}"
        assert service.models.composer.kb.article("kb-lockers") is not None
    finally:
        runtime.stop()


def test_a_change_that_drops_the_fixed_control_variant_is_refused(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    for name, text in TINY_KB.items():
        (kb_dir / name).write_text(text)
    runtime = _runtime(tmp_path / "data", kb_dir=kb_dir, control_variant="a")
    try:
        version, _ = runtime.kb.load()
        with pytest.raises(InvalidInput) as caught:
            runtime.kb.put("template", "tpl-default", {"default": True, "variants": {"b": "Hi"}})
        (problem,) = caught.value.problems
        assert problem.field == "control_variant" and "'a'" in problem.reason
        assert runtime.kb.version() == version
        kept = {"default": True, "variants": {"a": "Hey", "b": "Hi"}}
        assert runtime.kb.put("template", "tpl-default", kept) == version + 1
    finally:
        runtime.stop()


def test_model_info_follows_a_kb_swap(tmp_path: Path) -> None:
    save_model(tmp_path)
    runtime = _runtime(tmp_path, kb_poll_s=0.0)
    try:
        runtime.load_decisions()
        assert _info(runtime, "kb", "live-v1") == 1
        runtime.kb.put("article", "kb-lockers", ARTICLE)
        runtime.reload_kb()
        assert _info(runtime, "kb", "live-v2") == 1
        assert not _info(runtime, "kb", "live-v1")
    finally:
        runtime.stop()


def test_an_intent_swap_brings_its_metadata_drift_reference_and_model_info(
    tmp_path: Path,
) -> None:
    first = save_model(tmp_path)
    runtime = _runtime(tmp_path, model_poll_s=0.05)
    try:
        service = runtime.load_decisions()
        assert _info(runtime, "intent", first) == 1
        trained = small_intent_model()
        reference = {**trained.metadata["reference"], "n": 12345}
        second = registry.save(
            tmp_path, trained.model, {**trained.metadata, "reference": reference}
        )
        registry.set_current(tmp_path, second.version, action="promote", reason="test")
        wait_until(lambda: service.models.versions["intent"] == second.version, "the swap")
        assert service.models.metadata["reference"]["n"] == 12345
        assert service.models.metadata["version"] == second.version
        assert runtime.drift is not None and runtime.drift.reference == reference
        assert _info(runtime, "intent", second.version) == 1
        assert not _info(runtime, "intent", first)
    finally:
        runtime.stop()
