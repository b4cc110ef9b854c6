"""SQLite online store: behaviour specific to the embedded backend (the shared contract is in
tests/contract): URLs, the read cache against writes of other processes and threads, and
erasure that leaves no byte of the user in any file."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tailorbot.store import StoreError, open_store
from tailorbot.store.base import FeatureRecord
from tailorbot.store.sqlite import SqliteOnlineStore


def open_sqlite_store(path: Path, **options: object) -> SqliteOnlineStore:
    return SqliteOnlineStore.from_url(f"sqlite:///{path}", **options)


def record(user_id: str, offset: int, **state: object) -> FeatureRecord:
    return FeatureRecord(user_id, dict(state), 0, offset, 1_700_000_000.0, time.time())


def test_relative_urls_work_and_parent_directories_are_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///nested/dir/store.db?read_cache=10")
    store.put_profile("u1", {"tier": "gold"})
    store.close()
    assert (tmp_path / "nested" / "dir" / "store.db").is_file()
    with pytest.raises(ValueError, match="read_cache='many'"):
        open_store("sqlite:///store.db?read_cache=many")
    with pytest.raises(ValueError, match=r"unknown sqlite URL option\(s\) \['ttl'\]"):
        open_store("sqlite:///store.db?ttl=5")


WRITER = """
import sys, time
from tailorbot.store.base import FeatureRecord
from tailorbot.store.sqlite import SqliteOnlineStore
store = SqliteOnlineStore.from_url("sqlite:///" + sys.argv[1])
store.put_many([FeatureRecord("u1", {"seen": "by the other process"}, 0, 2, 1.0, time.time())])
store.put_profile("u1", {"tier": "platinum"})
store.erase_user("u2", 0, 5)
store.close()
"""


@pytest.mark.parametrize("read_cache", [100_000, 0])
def test_reads_see_the_writes_of_another_process(tmp_path: Path, read_cache: int) -> None:
    path = tmp_path / "store.db"
    store = open_sqlite_store(path, read_cache=read_cache)
    store.put_many([record("u1", 1, seen="here"), record("u2", 1)])
    store.put_profile("u1", {"tier": "gold"})
    for _ in range(2):  # read twice: the second read is a cache hit where there is a cache
        assert store.get("u1").state == {"seen": "here"}
        assert store.get_profile("u1") == {"tier": "gold"}
        assert store.get_many(["u2"])["u2"].offset == 1
    assert len(store._cache) == (3 if read_cache else 0)

    subprocess.run([sys.executable, "-c", WRITER, str(path)], check=True, timeout=60)
    assert store.get("u1").state == {"seen": "by the other process"}
    assert store.get_profile("u1") == {"tier": "platinum"}
    assert store.get_many(["u1", "u2"]).keys() == {"u1"}
    assert store.erasure_watermarks(["u2"]) == {"u2": 5}
    store.close()


def test_cached_reads_stay_right_while_threads_write(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "store.db")
    writer_store = open_sqlite_store(tmp_path / "store.db")  # like another process
    last = 300
    seen: list[list[int]] = [[] for _ in range(3)]
    done = threading.Event()

    def write() -> None:
        for offset in range(1, last + 1):
            (store if offset % 2 else writer_store).put_many([record("hot", offset, n=offset)])
        done.set()

    def read(i: int) -> None:
        while not done.is_set():
            got = store.get("hot")
            if got is not None:
                seen[i].append(got.offset)

    threads = [threading.Thread(target=write)] + [
        threading.Thread(target=read, args=(i,)) for i in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for offsets in seen:  # never back in time ...
        assert offsets == sorted(offsets)
    assert store.get("hot").state == {"n": last}  # ... and the cache holds the last write
    assert writer_store.get("hot").state == {"n": last}
    writer_store.close()
    store.close()


def test_erasure_keeps_the_highest_watermark(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "store.db")
    store.erase_user("u1", 0, 9)
    store.erase_user("u1", 0, 5)
    assert store.erasure_watermarks(["u1"]) == {"u1": 9}
    store.close()


def test_values_must_be_json(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "store.db")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        store.put_profile("u1", {"when": object()})
    with pytest.raises(TypeError, match="JSON-serialisable"):
        store.put_many([record("u1", 1, when=object())])
    assert store.get_profile("u1") is None and store.get("u1") is None
    store.close()


def test_a_closed_store_answers_with_store_errors(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "store.db")
    store.close()
    store.close()
    for call in (lambda: store.get("u1"), store.ping, lambda: store.counters("n")):
        with pytest.raises(StoreError, match="closed"):
            call()


def files_mentioning(directory: Path, needle: bytes) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and needle in p.read_bytes())


def test_erasure_leaves_no_byte_of_the_user_in_any_file(tmp_path: Path) -> None:
    directory = tmp_path / "storedir"
    store = open_sqlite_store(directory / "store.db")
    other = open_sqlite_store(directory / "store.db")  # another client holding the file open
    victim = "victim-7731"
    filler = "lorem ipsum " * 20
    for offset in range(1, 25):  # rewritten again and again: old versions freed on the way
        bystanders = [
            record(f"user-{offset}-{i}", offset, note=f"bystander-text {filler}") for i in range(30)
        ]
        store.put_many([record(victim, offset, note=f"victim-planted-text {offset}"), *bystanders])
        store.put_profile(victim, {"name": f"victim-planted-name {offset}", "tier": "gold"})
        store.put_decision(f"d-{offset}", victim, {"message": f"victim-planted-text {filler}"})
        store.record_feedback(f"d-{offset}", {"comment": "victim-planted-text"})
    store.increment("bandit", {"short": 1.0})
    assert other.get(victim) is not None and other.get_profile(victim) is not None
    assert files_mentioning(directory, b"victim-planted-text")

    store.erase_user(victim, 0, 25)
    assert files_mentioning(directory, victim.encode()) == []
    assert files_mentioning(directory, b"victim-planted") == []
    assert files_mentioning(directory, b"bystander-text") == ["store.db"]  # the scan works
    assert other.get(victim) is None and other.get_profile(victim) is None
    assert other.erasure_watermarks([victim]) == {victim: 25}
    other.close()
    store.close()
