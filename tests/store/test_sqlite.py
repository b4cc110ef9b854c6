"""SQLite online stores: behaviour specific to the embedded backend (the shared contracts are
in tests/contract): URLs, one file shared by the four stores, the read caches against writes
of other processes and threads, and erasure that leaves no byte of the user in any file."""

from __future__ import annotations

import gc
import random
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import orjson
import pytest

from tailorbot.config import Settings
from tailorbot.runtime import Runtime
from tailorbot.store import StoreError, Stores, open_stores
from tailorbot.store.base import FeatureRecord
from tailorbot.store.sqlite import SqliteFeatureStore, SqliteProfileStore, open_file


def open_sqlite_stores(path: Path, **options: object) -> Stores:
    from tailorbot.store.sqlite import open_stores as open_sqlite

    return open_sqlite(f"sqlite:///{path}", **options)


def record(user_id: str, offset: int, **state: object) -> FeatureRecord:
    return FeatureRecord(user_id, dict(state), 0, offset, 1_700_000_000.0, time.time())


def test_relative_urls_work_and_parent_directories_are_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stores = open_stores("sqlite:///nested/dir/store.db?read_cache=10&busy_timeout=2")
    stores.profiles.put("u1", {"tier": "gold"})
    stores.close()
    assert (tmp_path / "nested" / "dir" / "store.db").is_file()
    with pytest.raises(ValueError, match="read_cache='many'"):
        open_stores("sqlite:///store.db?read_cache=many")
    with pytest.raises(ValueError, match="read_cache must be >= 0"):
        open_stores("sqlite:///store.db?read_cache=-1")
    with pytest.raises(ValueError, match=r"unknown sqlite URL option\(s\) \['ttl'\]"):
        open_stores("sqlite:///store.db?ttl=5")
    for bad in ("0", "inf", "nan"):
        with pytest.raises(ValueError, match=f"busy_timeout='{bad}': must be a positive"):
            open_stores(f"sqlite:///store.db?busy_timeout={bad}")
    with pytest.raises(TypeError, match="unexpected sqlite option"):
        open_sqlite_stores(tmp_path / "store.db", ttl=5)


def test_the_four_stores_share_one_file_closed_once(tmp_path: Path) -> None:
    stores = open_sqlite_stores(tmp_path / "store.db")
    assert isinstance(stores.features, SqliteFeatureStore)
    concerns = (stores.features, stores.profiles, stores.decisions, stores.counters)
    files = {getattr(store, "file", None) for store in concerns}
    assert len(files) == 1 and None not in files
    stores.ping()
    stores.close()
    assert stores.features.file.closed


WRITER = """
import sys, time
from tailorbot.store.base import FeatureRecord
from tailorbot.store.sqlite import open_stores
stores = open_stores("sqlite:///" + sys.argv[1])
stores.features.put_many([FeatureRecord("u1", {"mark": "by the other process"}, 0, 2, 1.0,
                                        time.time())])
stores.profiles.put("u1", {"tier": "platinum"})
stores.features.erase("u2", 0, 5)
stores.close()
"""


@pytest.mark.parametrize("read_cache", [100_000, 0])
def test_reads_see_the_writes_of_another_process(tmp_path: Path, read_cache: int) -> None:
    path = tmp_path / "store.db"
    stores = open_sqlite_stores(path, read_cache=read_cache)
    features, profiles = stores.features, stores.profiles
    assert isinstance(features, SqliteFeatureStore) and isinstance(profiles, SqliteProfileStore)
    features.put_many([record("u1", 1, mark="here"), record("u2", 1)])
    profiles.put("u1", {"tier": "gold"})
    for _ in range(2):  # read twice: the second read is a cache hit where there is a cache
        assert features.get("u1").state == {"mark": "here"}
        assert profiles.get("u1") == {"tier": "gold"}
        assert features.get_many(["u2"])["u2"].offset == 1
    assert len(features._rows.cache) == (2 if read_cache else 0)
    assert len(profiles._rows.cache) == (1 if read_cache else 0)

    subprocess.run([sys.executable, "-c", WRITER, str(path)], check=True, timeout=60)
    assert features.get("u1").state == {"mark": "by the other process"}
    assert profiles.get("u1") == {"tier": "platinum"}
    assert features.get_many(["u1", "u2"]).keys() == {"u1"}
    assert features.erasures(["u2"])["u2"].watermark == 5
    stores.close()


def test_a_decision_reads_its_user_in_one_statement(tmp_path: Path) -> None:
    """Past the read caches: their checks (``PRAGMA data_version`` on the writer) would cost
    more than the read, and another process's commits empty them under load anyway."""
    stores = open_sqlite_stores(tmp_path / "store.db")
    stores.profiles.put("u1", {"tier": "gold"})
    stores.features.put_many([record("u1", 3, clicks=1)])
    file = stores.features.file  # type: ignore[attr-defined]
    statements: list[str] = []
    with file.read() as conn:
        conn.set_trace_callback(statements.append)
    file._writer.set_trace_callback(statements.append)
    profile, stored = stores.profile_and_record("u1")
    assert profile == {"tier": "gold"} and stored == stores.features.get("u1")
    assert len([s for s in statements if s.startswith("SELECT p.profile")]) == 1
    statements.clear()
    assert stores.profile_and_record("nobody") == (None, None)
    assert len(statements) == 1 and "data_version" not in statements[0]
    stores.close()


def test_cached_reads_stay_right_while_threads_write(tmp_path: Path) -> None:
    stores = open_sqlite_stores(tmp_path / "store.db")
    writer_stores = open_sqlite_stores(tmp_path / "store.db")  # like another process
    store, writer_store = stores.features, writer_stores.features
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
    writer_stores.close()
    stores.close()


def test_data_written_by_the_old_single_store_still_reads(tmp_path: Path) -> None:
    """Same file, same tables: a file of the former SqliteOnlineStore opens unchanged."""
    import sqlite3

    from tailorbot.store.sqlite import SCHEMA

    path = tmp_path / "store.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO feature_records VALUES ('u1', '{\"n\":1}', 0, 3, 1.0, 2.0, 1)")
    conn.execute("INSERT INTO counters VALUES ('bandit', 'a', 2.5)")
    conn.commit()
    conn.close()
    stores = open_sqlite_stores(path)
    assert stores.features.get("u1") == FeatureRecord("u1", {"n": 1}, 0, 3, 1.0, 2.0, 1)
    assert stores.counters.counters("bandit") == {"a": 2.5}
    stores.close()


def test_values_must_be_json(tmp_path: Path) -> None:
    stores = open_sqlite_stores(tmp_path / "store.db")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        stores.profiles.put("u1", {"when": object()})
    with pytest.raises(TypeError, match="JSON-serialisable"):
        stores.features.put_many([record("u1", 1, when=object())])
    with pytest.raises(TypeError, match="JSON-serialisable"):
        stores.decisions.put("d1", "u1", {"when": object()})
    assert stores.profiles.get("u1") is None and stores.features.get("u1") is None
    stores.close()


def test_closed_stores_answer_with_store_errors(tmp_path: Path) -> None:
    stores = open_sqlite_stores(tmp_path / "store.db")
    stores.close()
    stores.close()
    calls = (
        lambda: stores.features.get("u1"),
        lambda: stores.profiles.get("u1"),
        lambda: stores.decisions.get("d1"),
        lambda: stores.counters.counters("n"),
        stores.ping,
    )
    for call in calls:
        with pytest.raises(StoreError, match="closed"):
            call()


def test_sqlite_errors_inside_a_read_are_store_errors_others_pass(tmp_path: Path) -> None:
    file = open_file(tmp_path / "store.db")
    with pytest.raises(StoreError, match="no such table") as raised, file.read() as conn:
        conn.execute("SELECT * FROM missing")
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    with pytest.raises(KeyError), file.read():
        raise KeyError("x")
    file.close()


def test_a_dropped_unclosed_file_is_freed_at_once(tmp_path: Path) -> None:
    # with its connections, not at the next full collection (the stream worker's process
    # freezes its collector for long)
    file = open_file(tmp_path / "store.db")
    with file.read() as conn:
        conn.execute("SELECT 1").fetchall()
    dropped = weakref.ref(file)
    gc.disable()
    try:
        del file
        assert dropped() is None
    finally:
        gc.enable()


def files_mentioning(directory: Path, needle: bytes) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and needle in p.read_bytes())


def test_erasure_leaves_no_byte_of_the_user_in_any_file(tmp_path: Path) -> None:
    directory = tmp_path / "storedir"
    stores = open_sqlite_stores(directory / "store.db")
    other = open_sqlite_stores(directory / "store.db")  # another client holding the file open
    victim = "victim-7731"
    filler = "lorem ipsum " * 20
    for offset in range(1, 25):  # rewritten again and again: old versions freed on the way
        bystanders = [
            record(f"user-{offset}-{i}", offset, note=f"bystander-text {filler}") for i in range(30)
        ]
        stores.features.put_many(
            [
                record(
                    victim,
                    offset,
                    note=f"victim-planted-text {offset}",
                    seen={f"victim-planted-event-{offset}-{k}": float(k) for k in range(20)},
                ),
                *bystanders,
            ]
        )
        stores.profiles.put(victim, {"name": f"victim-planted-name {offset}", "tier": "gold"})
        stores.decisions.put(f"d-{offset}", victim, {"message": f"victim-planted-text {filler}"})
        stores.decisions.record_feedback(f"d-{offset}", {"comment": "victim-planted-text"})
    stores.counters.increment("bandit", {"short": 1.0})
    assert other.features.get(victim) is not None and other.profiles.get(victim) is not None
    assert files_mentioning(directory, b"victim-planted-text")

    stores.features.erase(victim, 0, 25)
    stores.profiles.delete(victim)
    stores.decisions.erase_user(victim)
    assert files_mentioning(directory, victim.encode()) == []
    assert files_mentioning(directory, b"victim-planted") == []
    assert files_mentioning(directory, b"bystander-text") == ["store.db"]  # the scan works
    assert other.features.get(victim) is None and other.profiles.get(victim) is None
    assert other.features.erasures([victim])[victim].watermark == 25
    other.close()
    stores.close()


@pytest.mark.parametrize("concern", ["features", "profiles", "decisions"])
def test_each_concern_scrubs_what_it_erases(tmp_path: Path, concern: str) -> None:
    directory = tmp_path / "storedir"
    stores = open_sqlite_stores(directory / "store.db")
    stores.features.put_many([record("victim", 1, note="victim-planted-text")])
    stores.profiles.put("victim", {"note": "victim-planted-text"})
    stores.decisions.put("d1", "victim", {"note": "victim-planted-text"})
    {
        "features": lambda: stores.features.erase("victim", 0, 2),
        "profiles": lambda: stores.profiles.delete("victim"),
        "decisions": lambda: stores.decisions.erase_user("victim"),
    }[concern]()
    # The other two concerns still hold their copies: two mentions left, in the main file.
    stored = b"".join(p.read_bytes() for p in directory.iterdir() if p.is_file())
    assert stored.count(b"victim-planted-text") == 2
    stores.close()


CACHE_BYTES = 300_000  # about nine of the profiles below
_MISSING = object()


def large_profile(n: int) -> dict:
    """The most a profile may hold: 32 attributes of 1024 characters (~33 KB as JSON)."""
    values = {f"a{k:02d}": f"{n:04d}-{k:02d}-".ljust(1024, "x") for k in range(32)}
    return {"tier": "gold", "attributes": values}


def test_the_profile_cache_stays_under_its_byte_bound(tmp_path: Path) -> None:
    stores = open_sqlite_stores(tmp_path / "store.db", read_cache_bytes=CACHE_BYTES)
    profiles = stores.profiles
    assert isinstance(profiles, SqliteProfileStore)
    written = {f"u{n:03d}": large_profile(n) for n in range(200)}  # 6.6 MB of profiles
    for user, profile in written.items():
        profiles.put(user, profile)
    blob_bytes = min(len(orjson.dumps(profile)) for profile in written.values())
    cache = profiles._rows.cache
    order = list(written) + random.Random(5).sample(list(written), k=len(written))
    for i, user in enumerate(order):
        if i % 2:
            assert profiles.get(user) == written[user]
        else:
            assert profiles.get_many([user, "nobody"]) == {user: written[user]}
        # each cached profile holds its JSON at least: counted apart from the cache's sizes
        assert len(cache) * blob_bytes <= CACHE_BYTES
        assert cache.nbytes <= CACHE_BYTES
    capacity = len(cache)
    assert capacity >= 5  # it still caches

    # Least recently used out first: the oldest entry, read again, outlives a newer one.
    users = [f"v{n}" for n in range(capacity + 3)]
    for user in users:
        profiles.put(user, large_profile(1))
        profiles.get(user)
    oldest, second = users[3], users[4]  # the first three were pushed out already
    assert profiles.get(oldest) == large_profile(1)  # a hit: now the most recent
    profiles.put("newest", large_profile(2))
    profiles.get("newest")
    assert cache.lookup(oldest, _MISSING) is not _MISSING
    assert cache.lookup(second, _MISSING) is _MISSING
    stores.close()


def test_the_read_cache_bytes_setting_reaches_the_store(tmp_path: Path) -> None:
    runtime = Runtime(Settings.load(data_dir=tmp_path, store_read_cache_bytes=12_345))
    try:
        for concern in (runtime.stores.features, runtime.stores.profiles):
            assert isinstance(concern, SqliteFeatureStore | SqliteProfileStore)
            assert concern._rows.cache.max_bytes == 12_345
    finally:
        runtime.stop()
    with pytest.raises(ValueError, match="read_cache_bytes must be >= 0"):
        open_sqlite_stores(tmp_path / "store.db", read_cache_bytes=-1)
