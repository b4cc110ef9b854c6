"""The DeadLetterStore contract: every backend in :data:`DEAD_LETTER_FACTORIES` passes it.

Dead letters live beside the online store (same URL), so a backend joins with one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tailorbot.dlq import DeadLetter, DeadLetterStore, open_dead_letters
from tests.contract.conftest import redis_prefix
from tests.helpers import REDIS_URL

DeadLetterOpener = Callable[[], DeadLetterStore]


def sqlite_dead_letters(request: pytest.FixtureRequest, tmp_path: Path) -> DeadLetterOpener:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return lambda: open_dead_letters(url)


def redis_dead_letters(request: pytest.FixtureRequest, tmp_path: Path) -> DeadLetterOpener:
    url = f"{REDIS_URL}?prefix={redis_prefix(request)}"
    return lambda: open_dead_letters(url)


DEAD_LETTER_FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], DeadLetterOpener]] = {
    "sqlite": sqlite_dead_letters,
    "redis": redis_dead_letters,
}


@pytest.fixture(params=sorted(DEAD_LETTER_FACTORIES))
def dead_letters(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeadLetterStore]:
    store = DEAD_LETTER_FACTORIES[request.param](request, tmp_path)()
    yield store
    store.close()


def letter(offset: int, key: str, text: str = "", group: str = "g") -> DeadLetter:
    value = f'{{"user_id": "{key}", "text": "{text}"}}'.encode()
    return DeadLetter(group, 0, offset, key, value, "refused", float(offset))


def test_put_list_drop_count(dead_letters: DeadLetterStore) -> None:
    assert dead_letters.list() == [] and dead_letters.count() == 0
    dead_letters.put([letter(2, "u2"), letter(1, "u1")])
    dead_letters.put([letter(1, "u1", "again")])  # a retried batch replaces its letters
    assert [d.letter_id for d in dead_letters.list()] == ["g:0:1", "g:0:2"]
    assert dead_letters.list()[0].value == letter(1, "u1", "again").value
    assert [d.letter_id for d in dead_letters.list(limit=1)] == ["g:0:1"]
    assert dead_letters.count() == 2
    assert dead_letters.drop(["g:0:1", "g:0:9"]) == 1
    assert dead_letters.drop([]) == 0
    assert [d.letter_id for d in dead_letters.list()] == ["g:0:2"]


def test_erase_user_forgets_only_that_users_letters(dead_letters: DeadLetterStore) -> None:
    dead_letters.put(
        [
            letter(1, "victim", "first secret"),
            letter(2, "bystander", "kept"),
            letter(3, "victim", "second secret", group="other-group"),
        ]
    )
    assert dead_letters.erase_user("victim") == 2
    assert dead_letters.erase_user("victim") == 0
    assert dead_letters.erase_user("nobody") == 0
    assert [(d.letter_id, d.key) for d in dead_letters.list()] == [("g:0:2", "bystander")]
    assert dead_letters.count() == 1


def test_erased_letters_leave_no_byte_in_the_sqlite_files(tmp_path: Path) -> None:
    store = open_dead_letters(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store.put([letter(1, "victim-7q", "badgerword"), letter(2, "bystander", "kept")])
        store.erase_user("victim-7q")
    finally:
        store.close()
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert b"victim-7q" not in data and b"badgerword" not in data, path.name
