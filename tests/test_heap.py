"""The start-up heap is frozen out of full collections, and a later freeze reclaims what the
replaced objects left as cyclic garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailorbot._heap import freeze_long_lived
from tests.api.conftest import make_client
from tests.api.support import wait_until


class Node:
    def __init__(self) -> None:
        self.partner: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen_after() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


def test_what_lives_at_the_call_is_frozen_and_later_cyclic_garbage_is_reclaimed() -> None:
    model = Node()
    model.partner = Node()
    model.partner.partner = model  # a cycle: only the cyclic collector frees it
    alive = weakref.ref(model)
    assert freeze_long_lived() > 0
    assert gc.is_tracked(model) and gc.get_freeze_count() > 0
    del model  # replaced (a hot swap): now cyclic garbage, frozen
    gc.collect()
    assert alive() is not None, "a frozen object is skipped by collections"
    freeze_long_lived()  # the next freeze unfreezes first
    assert alive() is None


def test_a_server_without_a_model_freezes_its_start_up_heap_too(tmp_path: Path) -> None:
    gc.unfreeze()
    with make_client(tmp_path, run_worker_in_server=False):  # no model in tmp_path
        wait_until(gc.get_freeze_count, "the start-up freeze")
