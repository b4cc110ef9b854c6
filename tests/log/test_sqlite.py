"""SQLite event log: behaviour specific to the embedded backend (the shared contract is in
tests/contract): URLs, the stored partition count, atomic batches, several processes on one
file, and erasure that leaves no byte of the user in any file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tailorbot.log import LogError, open_log
from tailorbot.log.sqlite import SqliteEventLog
from tests.helpers import wait_until


def open_sqlite_log(path: Path, partitions: int = 4, **options: object) -> SqliteEventLog:
    return SqliteEventLog.from_url(f"sqlite:///{path}", partitions=partitions, **options)


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=True
    )


def test_relative_urls_work_and_parent_directories_are_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    log = open_log("sqlite:///nested/dir/log.db", partitions=2)
    log.append([("u1", b"x")])
    log.close()
    assert (tmp_path / "nested" / "dir" / "log.db").is_file()
    absolute = open_sqlite_log(tmp_path / "a" / "b" / "log.db", partitions=2)
    assert absolute.end_offsets() == {0: 0, 1: 0}
    absolute.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "names no file"),
        ("postgresql:///x.db", "not a sqlite URL"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:///x.db?colour=blue", r"unknown sqlite URL option\(s\) \['colour'\]"),
        ("sqlite:///x.db?session_timeout=-1", "session_timeout='-1': must be a positive number"),
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout='soon'"),
        ("sqlite:///x.db?synchronous=sometimes", "expected one of"),
    ],
)
def test_bad_urls_are_refused_with_a_clear_message(
    url: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        SqliteEventLog.from_url(url, partitions=2)


def test_url_options_reach_every_connection(tmp_path: Path) -> None:
    log = SqliteEventLog.from_url(f"sqlite:///{tmp_path}/log.db?synchronous=full", partitions=2)
    with log._file.read() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    log.close()


def test_reopening_with_another_partition_count_is_refused(tmp_path: Path) -> None:
    open_sqlite_log(tmp_path / "log.db", partitions=4).close()
    with pytest.raises(ValueError, match="has 4 partitions, opened with 8"):
        open_sqlite_log(tmp_path / "log.db", partitions=8)
    log = open_sqlite_log(tmp_path / "log.db", partitions=4)
    assert log.append([("u1", b"x")]) == [(log.partition_for("u1"), 0)]
    log.close()
    with pytest.raises(ValueError, match="positive integer"):
        open_sqlite_log(tmp_path / "other.db", partitions=0)


# The layout of a log file made before each partition had a table of its own.
LEGACY_LAYOUT = """
CREATE TABLE log_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE partitions (partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL);
CREATE TABLE records (
    partition INTEGER NOT NULL, offset INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (partition, offset)
) WITHOUT ROWID;
CREATE TABLE group_offsets (
    grp TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, partition)
) WITHOUT ROWID;
INSERT INTO log_meta VALUES ('partitions', '2');
INSERT INTO partitions VALUES (0, 5), (1, 3);
INSERT INTO records VALUES (0, 3, 'u1', CAST('a' AS BLOB)), (0, 4, 'u2', CAST('b' AS BLOB)),
    (1, 0, 'u3', CAST('c' AS BLOB)), (1, 1, 'u3', CAST('d' AS BLOB)),
    (1, 2, 'u4', CAST('e' AS BLOB));
INSERT INTO group_offsets VALUES ('features', 0, 4);
"""


def test_a_file_with_the_earlier_layout_keeps_its_records_offsets_and_groups(
    tmp_path: Path,
) -> None:
    """A log made by an earlier release (one table for every partition's records; the first
    three offsets of partition 0 trimmed) opens with each record at its offset, the next
    offsets and the groups' commits as they were, and the old table gone."""
    with sqlite3.connect(tmp_path / "log.db") as conn:
        conn.executescript(LEGACY_LAYOUT)
    log = open_sqlite_log(tmp_path / "log.db", partitions=2)
    assert [(r.offset, r.key, r.value) for r in log.read_all(0)] == [
        (3, "u1", b"a"),
        (4, "u2", b"b"),
    ]
    assert [(r.offset, r.value) for r in log.read_all(1)] == [(0, b"c"), (1, b"d"), (2, b"e")]
    assert log.end_offsets() == {0: 5, 1: 3}
    assert log.committed("features") == {0: 4, 1: 0}
    p = log.partition_for("u9")
    assert log.append([("u9", b"new")]) == [(p, {0: 5, 1: 3}[p])]
    log.close()
    with sqlite3.connect(tmp_path / "log.db") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "records" not in tables and {"records_0", "records_1"} <= tables
    reopened = open_sqlite_log(tmp_path / "log.db", partitions=2)  # nothing left to move
    assert len(reopened.read_all(p)) == {0: 3, 1: 4}[p]
    reopened.close()


def test_a_batch_that_fails_midway_leaves_nothing_behind(tmp_path: Path) -> None:
    log = open_sqlite_log(tmp_path / "log.db")
    # A real failure inside SQLite on the second record of the batch (whose partition's table
    # may be written after the others').
    with sqlite3.connect(tmp_path / "log.db") as conn:
        for p in range(4):
            conn.execute(
                f"CREATE TRIGGER refuse_{p} BEFORE INSERT ON records_{p} "
                "WHEN NEW.value = CAST('boom' AS BLOB) "
                "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
            )
    with pytest.raises(LogError, match="refused by trigger"):
        log.append([("u1", b"fine"), ("u2", b"boom"), ("u3", b"fine")])
    assert log.end_offsets() == dict.fromkeys(range(4), 0)
    assert all(log.read_all(p) == [] for p in range(4))
    assert log.append([("u1", b"fine")]) == [(log.partition_for("u1"), 0)]
    log.close()


def test_items_must_be_text_keys_with_bytes_values(tmp_path: Path) -> None:
    log = open_sqlite_log(tmp_path / "log.db")
    with pytest.raises(TypeError, match="str key, bytes value"):
        log.append([("u1", "not bytes")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="str key, bytes value"):
        log.append([(17, b"x")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="out of range"):
        log.read(4, 0, 10)
    assert log.end_offsets() == dict.fromkeys(range(4), 0)
    log.close()


APPENDER = """
import sys
from tailorbot.log.sqlite import SqliteEventLog
log = SqliteEventLog.from_url("sqlite:///" + sys.argv[1], partitions=4)
for b in range(25):
    log.append([("process-user", f"p:{b}:{i}".encode()) for i in range(20)])
log.close()
"""


def test_threads_and_another_process_append_to_one_file(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = open_sqlite_log(path)
    other = subprocess.Popen([sys.executable, "-c", APPENDER, str(path)])

    def write(w: int) -> None:
        for b in range(25):
            log.append([(f"thread-user-{w}", f"{w}:{b}:{i}".encode()) for i in range(20)])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other.wait(timeout=60) == 0

    values: dict[str, list[str]] = defaultdict(list)
    for p in range(4):
        records = log.read_all(p)
        assert [r.offset for r in records] == list(range(len(records)))  # dense, no reuse
        for r in records:
            values[r.key].append(r.value.decode())
    assert values["process-user"] == [f"p:{b}:{i}" for b in range(25) for i in range(20)]
    for w in range(4):
        assert values[f"thread-user-{w}"] == [f"{w}:{b}:{i}" for b in range(25) for i in range(20)]
    log.close()


MEMBER = """
import sys
from tailorbot.log.sqlite import SqliteEventLog
log = SqliteEventLog.from_url("sqlite:///" + sys.argv[1], partitions=4)
member = log.consumer("g", "member-remote")
print(sorted(member.assignment()), flush=True)
sys.stdin.readline()  # hold the membership until told to leave
member.close()
log.close()
"""


def test_a_member_in_another_process_takes_a_share_and_gives_it_back(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = open_sqlite_log(path)
    local = log.consumer("g", "member-local")
    assert local.assignment() == {0, 1, 2, 3}
    remote = subprocess.Popen(
        [sys.executable, "-c", MEMBER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # Sorted ids: "member-local" < "member-remote", so the remote member gets 1 and 3.
        assert remote.stdout is not None and remote.stdout.readline().strip() == "[1, 3]"
        assert local.assignment() == {0, 2}
    finally:
        remote.communicate("leave\n", timeout=60)
    assert local.assignment() == {0, 1, 2, 3}
    log.close()


def test_a_member_whose_session_ended_cannot_commit_until_it_rejoins(tmp_path: Path) -> None:
    # 3 s, as the log contract's: with a shorter session a stall of this busy process (the
    # suite runs in two workers) ended member-a's too before member-b's split was seen
    log = open_sqlite_log(tmp_path / "log.db", session_timeout=3.0)
    log.append([(f"user-{i}", b"x") for i in range(40)])
    first, second = log.consumer("g", "member-a"), log.consumer("g", "member-b")
    theirs = second.assignment()
    assert theirs == {1, 3}
    wait_until(lambda: first.assignment() == {0, 1, 2, 3}, "the session of member-b to end", 60)
    second.commit({p: 1 for p in theirs})  # late: member-a owns these partitions now
    assert log.committed("g") == dict.fromkeys(range(4), 0)
    # At its next poll member-b is back in the group; the partitions are shared again.
    assert second.poll(100) and second.assignment() == {1, 3}
    wait_until(lambda: first.assignment() == {0, 2}, "member-a to see member-b again", 60)
    log.close()


def test_a_closed_log_and_consumer_answer_with_errors(tmp_path: Path) -> None:
    log = open_sqlite_log(tmp_path / "log.db")
    consumer = log.consumer("g")
    with pytest.raises(ValueError, match="max_records"):
        consumer.poll(0)
    assert consumer.poll(10, timeout_s=0.05) == []
    log.close()
    log.close()  # closing twice is fine
    for call in (lambda: log.append([("u1", b"x")]), log.ping, log.end_offsets):
        with pytest.raises(LogError, match="closed"):
            call()
    with pytest.raises(LogError, match="closed"):
        consumer.poll(10)


def files_mentioning(directory: Path, needle: bytes) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and needle in p.read_bytes())


def test_erasure_leaves_no_byte_of_the_user_in_any_file(tmp_path: Path) -> None:
    directory = tmp_path / "logdir"
    log = open_sqlite_log(directory / "log.db")
    reader = open_sqlite_log(directory / "log.db")  # another client holding the file open
    filler = b" lorem ipsum" * 30
    for batch in range(30):  # many pages, the victim's records spread over all of them
        items = [(f"user-{batch}-{i}", b"bystander-planted-text" + filler) for i in range(40)]
        items.insert(batch % 40, ("victim-7731", b"victim-planted-text" + filler))
        log.append(items)
    consumer = reader.consumer("g")
    assert len(consumer.poll(5000)) == 30 * 41
    assert files_mentioning(directory, b"victim-planted-text")

    watermark = log.erase_user("victim-7731")
    assert watermark == log.end_offsets()[log.partition_for("victim-7731")]
    assert files_mentioning(directory, b"victim-7731") == []
    assert files_mentioning(directory, b"victim-planted-text") == []
    assert files_mentioning(directory, b"bystander-planted-text") == ["log.db"]  # the scan works
    assert len([r for p in range(4) for r in reader.read_all(p)]) == 30 * 40
    reader.close()
    log.close()


def test_an_idle_poll_reads_no_partition_until_someone_commits(tmp_path: Path) -> None:
    """A dry poll notes the file's change token; the next polls only compare it (the cheap
    wake-up check of an idle worker) until a commit by this process or by another
    connection (as another process would) changes it."""
    path = tmp_path / "log.db"
    log = open_sqlite_log(path)
    other = open_sqlite_log(path)  # a connection of its own, like another process
    consumer = log.consumer("g")
    reads: list[int] = []
    read = log.read

    def counted(partition: int, offset: int, max_records: int) -> list:
        reads.append(partition)
        return read(partition, offset, max_records)

    log.read = counted  # type: ignore[method-assign]
    assert consumer.poll(100) == []
    assert len(reads) == 4  # a first, dry, read of every partition
    assert consumer.poll(100) == [] and consumer.poll(100, timeout_s=0.02) == []
    assert len(reads) == 4, "nothing was committed: the partitions were not read again"
    other.append([("u1", b"from another connection")])
    assert [r.value for r in consumer.poll(100)] == [b"from another connection"]
    log.append([("u2", b"from this process")])
    assert [r.value for r in consumer.poll(100)] == [b"from this process"]
    other.close()
    log.close()


def test_an_idle_poll_checks_less_and_less_often(tmp_path: Path) -> None:
    """While nothing arrives, the pauses between two checks double from 1 ms up to 16: a
    poll waiting 0.3 s checks about 22 times, not 300 (an idle worker's CPU)."""
    log = open_sqlite_log(tmp_path / "log.db")
    consumer = log.consumer("g")
    checks: list[float] = []
    token = log.change_token

    def counted() -> tuple[int, int]:
        checks.append(time.monotonic())
        return token()

    log.change_token = counted  # type: ignore[method-assign]
    assert consumer.poll(100, timeout_s=0.3) == []
    # at most (a busy machine only sleeps longer); every millisecond would be ~300
    assert 1 <= len(checks) <= 30, len(checks)
    log.close()


def test_a_waiting_poll_wakes_up_when_another_connection_appends(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = open_sqlite_log(path)
    other = open_sqlite_log(path)
    consumer = log.consumer("g")
    assert consumer.poll(100) == []
    appender = threading.Timer(0.05, lambda: other.append([("u1", b"late")]))
    appender.start()
    try:
        # Within the wait the record arrives: the poll returns it, not an empty batch.
        assert [r.value for r in consumer.poll(100, timeout_s=30)] == [b"late"]
    finally:
        appender.join()
    other.close()
    log.close()


def test_an_append_waits_for_another_process_s_write_lock_then_gives_up(tmp_path: Path) -> None:
    """The writer waits for a write lock held elsewhere (by retrying, with short pauses) and
    goes on as soon as it is released; past ``busy_timeout`` it answers a LogError."""
    log = open_sqlite_log(tmp_path / "log.db", busy_timeout=0.2)
    holder = sqlite3.connect(tmp_path / "log.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(LogError, match="locked"):
        log.append([("u1", b"refused")])
    holder.execute("COMMIT")
    log_wide = open_sqlite_log(tmp_path / "log.db", busy_timeout=30)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.05, lambda: holder.execute("COMMIT"))
    release.start()
    assert log_wide.append([("u1", b"after the release")]) == [(log.partition_for("u1"), 0)]
    release.join()
    holder.close()
    log_wide.close()
    log.close()


def test_bytes_values_are_bound_through_an_identity_adapter(tmp_path: Path) -> None:
    # the sqlite3 module's lookup for a bytes value raises and clears an AttributeError at
    # every bind; the file registers bytes -> bytes, which must keep each record as it was
    log = open_sqlite_log(tmp_path / "log.db", partitions=1)
    assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)] is bytes
    values = [b"", b"\x00\xff" * 3, bytes(range(256))]
    log.append([("u1", v) for v in values])
    assert [r.value for r in log.read(0, 0, 10)] == values
    log.close()
