"""Versioned models on disk: ``DATA_DIR/models/<kind>/<version>/{model.pkl,metadata.json}``.

A version is the UTC save time (``20260101T100000123456Z``), so versions sort in save order
and :func:`latest` is the last one. A version is written into a hidden temporary folder and
renamed into place, so a reader never sees a half-written model.

**Model files are trusted input.** They are pickles: loading one runs code. Only load from a
data directory you control, as you would with any scikit-learn model file.

>>> import tempfile
>>> root = tempfile.mkdtemp()
>>> saved = save(root, {"weights": [1, 2]}, {"metrics": {"accuracy": 0.9}}, kind="demo")
>>> latest(root, kind="demo").model, latest(root, kind="demo").metadata["metrics"]
({'weights': [1, 2]}, {'accuracy': 0.9})
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODEL_FILE = "model.pkl"
METADATA_FILE = "metadata.json"
_KIND = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION = re.compile(r"^\d{8}T\d{12}Z(-\d+)?$")


class ModelNotFoundError(LookupError):
    """No saved model of that kind (or version) under the data directory."""


class ModelLoadError(RuntimeError):
    """A saved version whose files cannot be read back (corrupt, or from incompatible code)."""


@dataclass(frozen=True)
class SavedModel:
    kind: str
    version: str
    path: Path
    model: Any
    metadata: dict[str, Any]


def kind_dir(data_dir: str | Path, kind: str) -> Path:
    if not _KIND.match(kind):
        raise ValueError(f"model kind must match {_KIND.pattern}, got {kind!r}")
    return Path(data_dir) / "models" / kind


def save(
    data_dir: str | Path,
    model: Any,
    metadata: Mapping[str, Any],
    kind: str = "intent",
    now: datetime | None = None,
) -> SavedModel:
    """Store ``model`` and ``metadata`` as a new version; adds kind, version and created_at."""
    root = kind_dir(data_dir, kind)
    root.mkdir(parents=True, exist_ok=True)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    base = created.strftime("%Y%m%dT%H%M%S%fZ")
    meta = {**metadata, "kind": kind, "created_at": created.isoformat()}
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    staging.chmod(0o755)  # mkdtemp makes it private; a model is no secret
    try:
        with (staging / MODEL_FILE).open("wb") as handle:
            pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)
        for _ in range(100):
            version = _next_version(_newest_name(root), base)
            meta["version"] = version
            (staging / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
            try:
                os.rename(staging, root / version)
            except OSError:
                if (root / version).exists():
                    continue  # another process took that name first
                raise
            return SavedModel(kind, version, root / version, model, meta)
        raise RuntimeError(f"could not find a free version name under {root}")
    finally:
        if staging.exists():
            for child in staging.iterdir():
                child.unlink()
            staging.rmdir()


def versions(data_dir: str | Path, kind: str = "intent") -> list[str]:
    """Complete versions of ``kind``, oldest first."""
    root = kind_dir(data_dir, kind)
    if not root.is_dir():
        return []
    found = [
        p.name
        for p in root.iterdir()
        if p.is_dir() and _VERSION.match(p.name) and (p / METADATA_FILE).is_file()
    ]
    return sorted(found, key=_version_key)


def load(data_dir: str | Path, version: str, kind: str = "intent") -> SavedModel:
    """Load one version (the model file is trusted input: see the module doc)."""
    if not _VERSION.match(version):
        raise ModelNotFoundError(f"not a model version: {version!r}")
    path = kind_dir(data_dir, kind) / version
    if not (path / METADATA_FILE).is_file():
        raise ModelNotFoundError(f"no {kind} model version {version} under {Path(data_dir)}")
    try:
        metadata = json.loads((path / METADATA_FILE).read_text())
        with (path / MODEL_FILE).open("rb") as handle:
            model = pickle.load(handle)  # noqa: S301 - trusted input, see the module doc
    except (
        OSError,
        ValueError,
        EOFError,
        pickle.UnpicklingError,
        AttributeError,
        ImportError,
    ) as exc:
        raise ModelLoadError(f"cannot load {kind} model {path}: {exc}") from exc
    return SavedModel(kind, version, path, model, metadata)


def latest(data_dir: str | Path, kind: str = "intent") -> SavedModel:
    """The newest version of ``kind``; raises :class:`ModelNotFoundError` when there is none."""
    found = versions(data_dir, kind)
    if not found:
        raise ModelNotFoundError(
            f"no {kind} model under {kind_dir(data_dir, kind)}; train one with `tailorbot train`"
        )
    return load(data_dir, found[-1], kind)


def _version_key(version: str) -> tuple[str, int]:
    base, _, suffix = version.partition("-")
    return base, int(suffix or 0)


def _newest_name(root: Path) -> str | None:
    names = [p.name for p in root.iterdir() if _VERSION.match(p.name)]
    return max(names, key=_version_key) if names else None


def _next_version(newest: str | None, base: str) -> str:
    """``base``, unless it would not sort after ``newest`` (clock went back, same instant)."""
    if newest is None or _version_key(newest) < _version_key(base):
        return base
    newest_base, newest_suffix = _version_key(newest)
    return f"{newest_base}-{newest_suffix + 1}"


# --- the current version: what servers load, moved only by promotion and rollback ---------
#
# ``DATA_DIR/models/<kind>/CURRENT`` names the served version; ``HISTORY.jsonl`` lists every
# move of it (promote, rollback) with its reason. Without a CURRENT file the newest version is
# current, as before there was promotion. Servers poll :func:`current_version` off the
# request path and load a new current version when it changes (hot swap).

CURRENT_FILE = "CURRENT"
HISTORY_FILE = "HISTORY.jsonl"
HELDOUT_FILE = "heldout.jsonl"


def current_version(data_dir: str | Path, kind: str = "intent") -> str | None:
    """The served version of ``kind`` (None when there is no version at all)."""
    pointer = kind_dir(data_dir, kind) / CURRENT_FILE
    try:
        version = pointer.read_text().strip()
    except FileNotFoundError:
        found = versions(data_dir, kind)
        return found[-1] if found else None
    return version or None


def current_metadata(data_dir: str | Path, kind: str = "intent") -> dict[str, Any] | None:
    """The current version's metadata (its labels, metrics...) without loading the model;
    None when no version is current or its metadata cannot be read."""
    version = current_version(data_dir, kind)
    if version is None or not _VERSION.match(version):
        return None
    try:
        found = json.loads((kind_dir(data_dir, kind) / version / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def load_current(data_dir: str | Path, kind: str = "intent") -> SavedModel:
    """The current version, loaded; raises :class:`ModelNotFoundError` when there is none."""
    version = current_version(data_dir, kind)
    if version is not None:
        return load(data_dir, version, kind)
    where = kind_dir(data_dir, kind)
    if versions(data_dir, kind):
        raise ModelNotFoundError(
            f"no {kind} model promoted under {where}; promote one with `tailorbot models promote`"
        )
    raise ModelNotFoundError(f"no {kind} model under {where}; train one with `tailorbot train`")


def set_current(
    data_dir: str | Path,
    version: str,
    kind: str = "intent",
    *,
    action: str,
    reason: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Point CURRENT at ``version`` (atomically) and record the move in the history (with
    ``extra`` fields: what the move decided, e.g. a promotion's bar)."""
    if version not in versions(data_dir, kind):
        raise ModelNotFoundError(f"no {kind} model version {version} under {Path(data_dir)}")
    root = kind_dir(data_dir, kind)
    previous = current_version(data_dir, kind)
    _write_atomic(root / CURRENT_FILE, version + "\n")
    entry = {
        "at": datetime.now(UTC).isoformat(),
        "action": action,
        "version": version,
        "previous": previous,
        "reason": reason,
        **(extra or {}),
    }
    with (root / HISTORY_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


def pin_current(data_dir: str | Path, kind: str = "intent") -> str | None:
    """Make the implicit current version (the newest) explicit, so that versions saved from
    now on stay candidates until promoted; an empty pointer when there is none yet."""
    root = kind_dir(data_dir, kind)
    if (root / CURRENT_FILE).is_file():
        return current_version(data_dir, kind)
    root.mkdir(parents=True, exist_ok=True)
    version = current_version(data_dir, kind)
    _write_atomic(root / CURRENT_FILE, (version or "") + "\n")
    return version


def history(data_dir: str | Path, kind: str = "intent") -> list[dict[str, Any]]:
    """Every move of CURRENT, oldest first."""
    path = kind_dir(data_dir, kind) / HISTORY_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def update_metadata(
    data_dir: str | Path, version: str, extra: Mapping[str, Any], kind: str = "intent"
) -> dict[str, Any]:
    """Merge ``extra`` into a version's metadata (e.g. its audit result); returns it."""
    path = kind_dir(data_dir, kind) / version / METADATA_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"no {kind} model version {version} under {Path(data_dir)}")
    metadata = {**json.loads(path.read_text()), **extra}
    _write_atomic(path, json.dumps(metadata, indent=2, sort_keys=True))
    return metadata


# --- erasure: a user's held-out rows leave every saved version --------------------------

ERASURE_LOCK = ".erasure.lock"


def erase_heldout_rows(data_dir: str | Path, user_id: str) -> int:
    """Remove ``user_id``'s rows from the held-out file of every version of every kind (each
    file rewritten atomically, the other rows byte for byte, and only when it held some);
    returns how many rows went."""
    root = Path(data_dir) / "models"
    if not root.is_dir():
        return 0
    removed = 0
    with _erasure_lock(root):
        for kind in sorted(p.name for p in root.iterdir() if p.is_dir() and _KIND.match(p.name)):
            for version in versions(data_dir, kind):
                removed += _drop_rows(root / kind / version / HELDOUT_FILE, user_id)
    return removed


@contextmanager
def _erasure_lock(root: Path) -> Iterator[None]:
    # Two erasures rewriting one file at once would each keep the other's user: one at a time.
    with open(root / ERASURE_LOCK, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _drop_rows(path: Path, user_id: str) -> int:
    try:
        lines = path.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return 0
    kept = [
        line for line in lines if not line.strip() or json.loads(line).get("user_id") != user_id
    ]
    if len(kept) < len(lines):
        _write_atomic(path, b"".join(kept))
    return len(lines) - len(kept)


def _write_atomic(path: Path, data: str | bytes) -> None:
    handle, staging = tempfile.mkstemp(prefix=".staging-", dir=path.parent)
    with os.fdopen(handle, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)
    os.chmod(staging, 0o644)
    os.replace(staging, path)
