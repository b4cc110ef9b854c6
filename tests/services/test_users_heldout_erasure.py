"""A user's erasure reaches the model registry: every saved version's held-out rows
(``heldout.jsonl``, of every kind) lose the user's rows, the others' stay byte for byte, and
the promotion gate of a model trained after the erasure never meets the user's text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tailorbot.log import open_log
from tailorbot.models import registry
from tailorbot.models.pipeline import promotion
from tailorbot.models.pipeline.audit import AuditGate
from tailorbot.models.pipeline.dataset import build_dataset
from tailorbot.models.pipeline.trainer import train_intent
from tailorbot.services.users import UserService
from tailorbot.store import open_stores
from tests.models.pipeline.support import support_log

GATE = AuditGate(max_gap=1.0, min_rows=20)


@pytest.fixture
def users(tmp_path: Path):
    log = open_log(f"sqlite:///{tmp_path}/log.db", 2)
    stores = open_stores(f"sqlite:///{tmp_path}/stores.db")
    yield UserService(log, stores, data_dir=tmp_path)
    log.close()
    stores.close()


def _heldout(data_dir: Path, version: str, kind: str = "intent") -> list[bytes]:
    path = registry.kind_dir(data_dir, kind) / version / registry.HELDOUT_FILE
    return path.read_bytes().splitlines(keepends=True)


def _user_of(line: bytes) -> str:
    return str(json.loads(line)["user_id"])


def test_erasure_removes_the_users_heldout_rows_and_the_next_gate_never_sees_them(
    tmp_path: Path, users: UserService
) -> None:
    events, profiles = support_log(users=120, contacts=6, seed=3)
    rows = build_dataset(events, profiles)
    first = promotion.save_candidate(tmp_path, train_intent(rows, search=False, k=3))
    promotion.promote(tmp_path, first.version, GATE)
    # the customer with the most held-out rows of the served version
    served = Counter(_user_of(line) for line in _heldout(tmp_path, first.version))
    victim = served.most_common(1)[0][0]
    other = registry.save(tmp_path, {"m": 1}, {}, kind="item_knn")  # another kind's version
    (other.path / registry.HELDOUT_FILE).write_text(
        json.dumps({"user_id": victim, "basket": ["a"]}) + "\n"
        + json.dumps({"user_id": "someone", "basket": ["b"]}) + "\n"
    )  # fmt: skip
    before = _heldout(tmp_path, first.version)

    users.erase_user(victim)

    after = _heldout(tmp_path, first.version)
    assert after == [line for line in before if _user_of(line) != victim]
    assert len(after) < len(before)
    assert [_user_of(line) for line in _heldout(tmp_path, other.version, "item_knn")] == ["someone"]
    second = promotion.save_candidate(
        tmp_path, train_intent([r for r in rows if r["user_id"] != victim], search=False, k=3)
    )
    gated, _ = promotion.gate_rows(tmp_path, second.version, first.version)
    assert gated and victim not in {r["user_id"] for r in gated}


def test_nothing_is_rewritten_without_the_user_or_the_registry(
    tmp_path: Path, users: UserService
) -> None:
    users.erase_user("nobody")  # no models/ at all
    saved = registry.save(tmp_path, {"m": 1}, {}, kind="intent")
    heldout = saved.path / registry.HELDOUT_FILE
    heldout.write_text(json.dumps({"user_id": "u1", "text": "hi"}) + "\n")
    stamp = heldout.stat().st_mtime_ns, heldout.stat().st_ino
    assert registry.erase_heldout_rows(tmp_path, "u2") == 0
    assert (heldout.stat().st_mtime_ns, heldout.stat().st_ino) == stamp
    assert registry.erase_heldout_rows(tmp_path, "u1") == 1
    assert heldout.read_bytes() == b""
