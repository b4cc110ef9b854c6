"""The DeadLetterStore contract: every backend in ``DEAD_LETTER_FACTORIES`` (conftest.py)
passes it. Dead letters live beside the online store (same URL)."""

from __future__ import annotations

from pathlib import Path

from tailorbot.dlq import DeadLetter, DeadLetterStore, open_dead_letters


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
