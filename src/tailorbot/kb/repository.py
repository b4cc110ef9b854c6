"""The live knowledge base of a deployment: versioned snapshots that every process polls.

``GET/PUT/DELETE /v1/kb/articles/{id}`` (and ``/v1/kb/templates/{id}``) change the KB of a
running deployment. The KB lives under ``<data_dir>/kb/`` as numbered snapshots
(``v000001/``, ``v000002/``...: a complete KB folder each) and a ``CURRENT`` file naming the
one in force. A change is written as a new snapshot, validated like ``tailorbot kb check``
(nothing is published when it has errors), then published by replacing ``CURRENT``
atomically; a file lock serializes writers across processes. Server processes compare
``CURRENT`` with the version they loaded (a cheap read, every ``kb_poll_s``) and swap in the
new KB without a restart.

The first snapshot is a copy of the configured ``kb_dir`` (or the bundled KB), made by the
first load of an empty repository. After that only :meth:`KBRepository.seed` reads ``kb_dir``
again: ``tailorbot serve`` calls it at start-up, and when the folder's content changed since
it was last copied in (a deploy shipping a new KB) it is copied in as a new snapshot, which
replaces the changes made through the API since. Reads and API changes never look at
``kb_dir``: a CLI command with another ``kb_dir``, or a file edited in it while servers run,
cannot replace or break the live KB.

>>> import tempfile
>>> from tailorbot.kb.loader import default_kb_dir
>>> repo = KBRepository(tempfile.mkdtemp(), default_kb_dir())
>>> version, kb = repo.load()
>>> new_version = repo.put("article", "kb-new", {"title": "New", "body": "B.",
...                                              "intents": ["card_arrival"]})
>>> new_version == version + 1, repo.get("article", "kb-new")["title"]
(True, 'New')
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tailorbot.errors import InvalidInput, NotFound, Problem
from tailorbot.kb.loader import KBError, load_kb
from tailorbot.kb.manifest import MANIFEST_FILE
from tailorbot.kb.model import KnowledgeBase
from tailorbot.kb.validate import SUFFIXES, KBIssue, check_kb

logger = logging.getLogger(__name__)

KINDS = {"article": "articles", "template": "templates"}
KEEP_SNAPSHOTS = 5  # older ones are deleted (a process still reading one has it loaded)
# A valid record nests 3 levels (audience.tiers[0]); the YAML writer and reader recurse
# per level and hit Python's recursion limit a few hundred levels down, before check_kb
# could refuse the record: deeper values are refused first.
MAX_NESTING = 32

# What a deployment checks on top of `kb check` (the fixed control variant): (field, reason).
KBCheck = Callable[[KnowledgeBase], list[tuple[str, str]]]


class KBRepository:
    """Versioned KB snapshots under ``root``, seeded from ``seed_dir``; ``check`` vets every
    KB before it is published (a change, a seed) beyond what ``kb check`` covers."""

    def __init__(
        self,
        root: str | Path,
        seed_dir: str | Path,
        labels: Iterable[str] | None = None,
        check: KBCheck | None = None,
    ) -> None:
        self.root = Path(root)
        self.seed_dir = Path(seed_dir)
        self.labels = list(labels) if labels is not None else None
        self.check = check

    # --- reading ------------------------------------------------------------------------
    def version(self) -> int:
        """The version in force (0 before the first snapshot)."""
        try:
            return int((self.root / "CURRENT").read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def load(self) -> tuple[int, KnowledgeBase]:
        """The version in force and its KB (an empty repository is seeded first)."""
        self._seed_if_empty()
        version = self.version()
        return version, load_kb(self._snapshot(version), self.labels)

    def read(self) -> KnowledgeBase:
        """The KB in force, or before the first snapshot the one a seed would copy in;
        writes nothing (for commands that only look, like ``label import``)."""
        version = self.version()
        return load_kb(self._snapshot(version) if version else self.seed_dir, self.labels)

    def get(self, kind: str, record_id: str) -> dict[str, Any]:
        """One record as stored; :class:`NotFound` when there is none."""
        _, kb = self.load()
        record = kb.article(record_id) if _section(kind) == "articles" else kb.template(record_id)
        if record is None:
            raise NotFound(f"no {kind} {record_id!r} in the knowledge base")
        return record.model_dump(mode="json", exclude_defaults=True)

    # --- changing -----------------------------------------------------------------------
    def put(self, kind: str, record_id: str, body: Any) -> int:
        """Create or replace a record; returns the new version. :class:`InvalidInput` (422)
        lists every problem of the resulting KB and publishes nothing."""
        section = _section(kind)
        if not isinstance(body, dict):
            raise InvalidInput(
                f"the {kind} must be a JSON object",
                problems=[Problem(None, "(body)", f"got a JSON {type(body).__name__}")],
            )
        if body.get("id", record_id) != record_id:
            raise InvalidInput(
                "the id in the body differs from the one in the path",
                problems=[Problem(None, "id", f"expected {record_id!r}")],
            )
        record = {**body, "id": record_id}
        too_deep = _too_deeply_nested(record)
        if too_deep is not None:
            raise InvalidInput(
                f"the {kind} is nested too deeply; nothing was changed",
                problems=[
                    Problem(
                        None,
                        f"{section}[{record_id}].{too_deep}",
                        f"nested more than {MAX_NESTING} levels deep",
                    )
                ],
            )

        def change(records: dict[str, list[dict[str, Any]]]) -> None:
            items = records[section]
            for index, item in enumerate(items):
                if item.get("id") == record_id:
                    items[index] = record
                    return
            items.append(record)

        return self._change(change)

    def delete(self, kind: str, record_id: str) -> int:
        """Remove a record; :class:`NotFound` when there is none, :class:`InvalidInput` when
        the KB would break (e.g. a template still names the article)."""
        section = _section(kind)

        def change(records: dict[str, list[dict[str, Any]]]) -> None:
            kept = [item for item in records[section] if item.get("id") != record_id]
            if len(kept) == len(records[section]):
                raise NotFound(f"no {kind} {record_id!r} in the knowledge base")
            records[section] = kept

        return self._change(change)

    # --- seeding ------------------------------------------------------------------------
    def seed(self) -> int | None:
        """Copy ``seed_dir`` in as a new version when its content differs from what was last
        copied in (or nothing is there yet); returns that version, None when unchanged.

        The new version replaces the changes made through the API since the last seed (a
        warning says so). An invalid ``seed_dir`` raises :class:`KBError` and publishes
        nothing. ``tailorbot serve`` calls it once at start-up, before any process serves.
        """
        return self._seed(only_if_empty=False)

    def _seed_if_empty(self) -> None:
        """Before the first snapshot, the configured KB becomes version 1."""
        if not self.version():
            self._seed(only_if_empty=True)

    def _seed(self, only_if_empty: bool) -> int | None:
        digest = _folder_digest(self.seed_dir)
        with self._locked():
            seeded_digest, seeded_version = self._seeded()
            current = self.version()
            if current and (only_if_empty or seeded_digest == digest):
                return None  # unchanged, or another process seeded meanwhile
            self._check_seed()
            self._warn_replacing(seeded_version, current)
            return self._publish_seed(current + 1, digest)

    def _warn_replacing(self, seeded_version: int | None, current: int) -> None:
        """A re-seed replaces the API changes made since the last seed: say which versions
        (a SEED file of an older release has no version: version 1 was the seed)."""
        first = (seeded_version if seeded_version is not None else 1) + 1
        if current < first:
            return
        logger.warning(
            "knowledge base: %s changed since it was copied in; the new version replaces the "
            "changes made through the API (versions %d to %d; their snapshots stay in %s "
            "until they fall out of the %d newest)",
            self.seed_dir, first, current, self.root, KEEP_SNAPSHOTS,
        )  # fmt: skip

    def _check_seed(self) -> None:
        """:class:`KBError` unless the configured KB is valid as it is (strict: a KB without
        a default template is refused too)."""
        issues = self._issues(self.seed_dir)
        if issues:
            raise KBError(issues)

    def _publish_seed(self, version: int, digest: str) -> int:
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            shutil.copytree(self.seed_dir, staging, dirs_exist_ok=True)
            staging.rename(self._snapshot(version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._set_current(version)
        _replace_text(self.root / "SEED", f"{digest}\n{version}\n")
        return version

    def _seeded(self) -> tuple[str | None, int | None]:
        """The digest of the folder last copied in and the version it became (None: unknown,
        a SEED file written before the version was recorded)."""
        try:
            lines = (self.root / "SEED").read_text().split()
        except FileNotFoundError:
            return None, None
        digest = lines[0] if lines else None
        version = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None
        return digest, version

    # --- internals ----------------------------------------------------------------------
    def _change(self, change: Any) -> int:
        self._seed_if_empty()
        with self._locked():
            version = self.version()
            manifest, records = _read_snapshot(self._snapshot(version))
            change(records)
            return self._publish(version + 1, manifest, records)

    def _publish(
        self, version: int, manifest: dict[str, Any], records: dict[str, list[dict[str, Any]]]
    ) -> int:
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            _write_yaml(staging / MANIFEST_FILE, manifest)
            for section, items in records.items():
                _write_yaml(staging / f"{section}.yaml", {section: items})
            self._refuse_problems(staging)
            staging.rename(self._snapshot(version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._set_current(version)
        return version

    def _refuse_problems(self, staging: Path) -> None:
        """:class:`InvalidInput` (422) listing what :meth:`_issues` finds."""
        issues = self._issues(staging)
        if issues:
            raise InvalidInput(
                f"the knowledge base would have {len(issues)} error(s); nothing was changed",
                problems=[Problem(None, issue.field, issue.reason) for issue in issues],
            )

    def _issues(self, folder: Path) -> list[KBIssue]:
        """The errors ``kb check`` finds in ``folder`` and, on a KB it passes, ``check``'s
        (one vetting for a change and a seed)."""
        report = check_kb(folder, self.labels)
        if report.errors or report.kb is None or self.check is None:
            return list(report.errors)
        return [KBIssue(str(folder), field, reason) for field, reason in self.check(report.kb)]

    def _set_current(self, version: int) -> None:
        _replace_text(self.root / "CURRENT", str(version))
        for old in sorted(self.root.glob("v[0-9]*")):
            if old.is_dir() and int(old.name[1:]) <= version - KEEP_SNAPSHOTS:
                shutil.rmtree(old, ignore_errors=True)

    def _snapshot(self, version: int) -> Path:
        return self.root / f"v{version:06d}"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _section(kind: str) -> str:
    section = KINDS.get(kind)
    if section is None:
        raise NotFound(f"unknown KB record kind {kind!r}; expected article or template")
    return section


def _too_deeply_nested(record: dict[str, Any]) -> str | None:
    """The first field of ``record`` whose value nests past :data:`MAX_NESTING`, or ``None``.

    Iterative, since the point is a value too deep to recurse into.

    >>> deep: list[Any] = []
    >>> for _ in range(MAX_NESTING - 1):
    ...     deep = [deep]
    >>> _too_deeply_nested({"title": "T", "x": deep}), _too_deeply_nested({"x": [deep]})
    (None, 'x')
    """
    for name, value in record.items():
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, dict | list):
                if depth > MAX_NESTING:
                    return str(name)
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return None


def _read_snapshot(folder: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The manifest sections and every record of a snapshot, as plain data."""
    manifest: dict[str, Any] = {}
    records: dict[str, list[dict[str, Any]]] = {section: [] for section in KINDS.values()}
    for path in sorted(p for p in folder.rglob("*") if p.suffix in SUFFIXES and p.is_file()):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, value in document.items():
            if key in records:
                records[key].extend(value or [])
            elif path.parent == folder and path.name == MANIFEST_FILE:
                manifest[key] = value
    return manifest, records


def _write_yaml(path: Path, document: dict[str, Any]) -> None:
    if document:
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
        path.write_text(text, encoding="utf-8")


def _replace_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.suffix in SUFFIXES and p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
