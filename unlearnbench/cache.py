"""Content-addressed cache of trained weights: safetensors + JSON sidecar, atomic, verified."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from .errors import ConfigError, UserError

# A memo is written in milliseconds without the entry lock: a temp file of one that is older
# than this was left by a killed run.
ORPHAN_AGE_S = 600.0


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def cache_key(material: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines the weights."""
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()


def _text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_bytes(path: Path, data: bytes) -> None:
    """Write and fsync, so an error such as a full disk surfaces here as an OSError."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _temp_name(target: str) -> re.Pattern[str]:
    """The names `tempfile.mkstemp` gives our temp files for ``target`` (8 random chars)."""
    return re.compile(rf"\.{re.escape(target)}\.[a-z0-9_]{{8}}\.tmp")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _write_bytes(Path(tmp), data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


@dataclass
class CacheEntry:
    key: str
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    hit: bool


class CorruptEntry(Exception):
    pass


class ModelCache:
    """Weights keyed by the sha256 of their key material. Never unpickles anything."""

    def __init__(self, root: str | Path, log: Callable[[str], None] = print) -> None:
        self.root = Path(root)
        self.log = log
        self._lock_fallback_said = False

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.safetensors", self.root / f"{key}.json"

    # --- the folder and its failures -------------------------------------------------------

    def _ensure_root(self) -> None:
        if self.root.is_dir():
            return
        if self.root.exists():
            raise ConfigError("cache_dir", self.root, "a folder (this path is a file)")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("cache_dir", self.root,
                              f"a folder that can be created ({_why(exc)})") from None

    def _check_writable(self, key: str) -> None:
        """Before training an entry: can it be stored? (A read-only cache may still serve hits.)"""
        try:
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".write-test.", suffix=".tmp")
        except OSError as exc:
            raise ConfigError("cache_dir", self.root,
                              f"a writable folder ({_why(exc)}, and entry {key[:12]} is not in "
                              "it); use a writable cache_dir or one that holds every entry"
                              ) from None
        os.close(fd)
        os.unlink(probe)

    def _store(self, path: Path, data: bytes) -> None:
        """Atomic write; a failure is one line naming cache_dir, with nothing partial kept."""
        try:
            _atomic_write(path, data)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise UserError(f"cache_dir={self.root}: no space left on device while writing "
                                f"{path.name} (nothing partial kept); free some space or point "
                                "cache_dir at another disk") from None
            raise UserError(f"cache_dir={self.root}: cannot write {path.name} ({_why(exc)})"
                            ) from None

    def _remove_orphans(self, target: str, min_age_s: float) -> None:
        """Delete temp files of ``target`` left by a killed write: only names `_atomic_write`
        makes, only at least ``min_age_s`` old (0 when the caller holds the entry's lock)."""
        pattern, now = _temp_name(target), time.time()
        for path in self.root.glob(f".{target}.*.tmp"):
            try:
                if not pattern.fullmatch(path.name) or now - path.stat().st_mtime < min_age_s:
                    continue
                path.unlink()
            except OSError:
                continue  # removed meanwhile, or a read-only cache: leave it
            self.log(f"cache: removed {path.name}, a partial write left by an interrupted run")

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        # Two jobs needing the same entry: the second waits, then finds it built.
        self._ensure_root()
        try:
            fd: int | None = os.open(self.root / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            fd = self._fallback_lock(key, exc)
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _fallback_lock(self, key: str, exc: OSError) -> int | None:
        """A cache we cannot write (read-only mount, shared copy) can still serve its entries:
        lock in the temp folder instead, or not at all; say so once."""
        folder = Path(tempfile.gettempdir()) / "unlearnbench-locks"
        try:
            folder.mkdir(exist_ok=True)
            fd: int | None = os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            where = f"locking in {folder} instead"
        except OSError:
            fd, where = None, "using it without a lock"
        if not self._lock_fallback_said:
            self.log(f"cache_dir={self.root} is not writable ({_why(exc)}); {where}")
            self._lock_fallback_said = True
        return fd

    # --- weights ----------------------------------------------------------------------------

    def _read(self, key: str, material: dict[str, Any]) -> CacheEntry | None:
        weights, sidecar = self.paths(key)
        if not weights.exists() and not sidecar.exists():
            return None
        try:
            meta = json.loads(sidecar.read_text())
            if canonical_json(meta.get("key_material")) != canonical_json(material):
                raise CorruptEntry("key material differs from the request")
            if meta.get("weights_sha256") != _file_sha256(weights):
                raise CorruptEntry("weights checksum mismatch (truncated or modified file)")
            tensors = load_file(str(weights))
        except Exception as exc:  # any unreadable entry is rebuilt, never used
            self.log(f"cache entry {key[:12]} is unusable ({exc}); rebuilding it")
            return None
        return CacheEntry(key, tensors, meta, hit=True)

    def get_or_create(
        self,
        material: dict[str, Any],
        create: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
    ) -> CacheEntry:
        """Return the verified entry for ``material``, creating and storing it if needed."""
        key = cache_key(material)
        with self._lock(key):
            weights, sidecar = self.paths(key)
            for path in (weights, sidecar):  # we hold the lock: nobody is writing them
                self._remove_orphans(path.name, min_age_s=0)
            entry = self._read(key, material)
            if entry is not None:
                return entry
            self._check_writable(key)  # before training, not after
            tensors, info = create()
            tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            data = save(tensors)
            meta = {
                **info,
                "key": key,
                "key_material": material,
                "weights_sha256": hashlib.sha256(data).hexdigest(),
                "versions": {"torch": torch.__version__, "python": platform.python_version()},
            }
            try:
                self._store(weights, data)
                self._store(sidecar, json.dumps(meta, indent=2, default=str).encode())
            except UserError:
                weights.unlink(missing_ok=True)  # no weights without their sidecar
                raise
            return CacheEntry(key, tensors, meta, hit=False)

    # --- memos ------------------------------------------------------------------------------

    def memo(
        self, material: dict[str, Any], compute: Callable[[], dict[str, Any]], *, tied_to: str
    ) -> dict[str, Any]:
        """A small JSON result about cached weights (e.g. their metrics), stored beside them.

        ``tied_to`` is the sha256 of the weights the result describes (the entry's
        ``meta["weights_sha256"]``). A stored memo is used only when its key material, that
        checksum and the checksum of its value all match; otherwise one line says why and it
        is recomputed. The value checksum detects an edit or corruption, not a forger who
        recomputes it."""
        if not (isinstance(tied_to, str) and re.fullmatch(r"[0-9a-f]{64}", tied_to)):
            raise ValueError(f"memo tied_to must be a weights sha256 (64 hex digits), "
                             f"got {tied_to!r}")
        key = cache_key(material)
        path = self.root / f"memo-{key}.json"
        self._remove_orphans(path.name, min_age_s=ORPHAN_AGE_S)
        if path.exists():
            try:
                return self._read_memo(path, material, tied_to)
            except CorruptEntry as exc:
                self.log(f"memo {key[:12]} unusable ({exc}); recomputing")
        value = compute()
        value_json = canonical_json(value)
        record = {"key_material": material, "tied_to": tied_to,
                  "value_sha256": _text_sha256(value_json), "value": json.loads(value_json)}
        try:
            self._ensure_root()
            self._store(path, json.dumps(record, default=str).encode())
        except UserError as exc:  # the value is right; storing it only saves time later
            self.log(f"memo {key[:12]} not stored ({exc})")
        return value

    @staticmethod
    def _read_memo(path: Path, material: dict[str, Any], tied_to: str) -> dict[str, Any]:
        try:
            stored = json.loads(path.read_text())
            value, checksum = stored["value"], stored["value_sha256"]
            stored_material, stored_tie = stored["key_material"], stored["tied_to"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptEntry(f"unreadable: {type(exc).__name__}: {exc}") from None
        if canonical_json(stored_material) != canonical_json(material):
            raise CorruptEntry("key material differs from the request")
        if stored_tie != tied_to:
            raise CorruptEntry(f"it describes weights {str(stored_tie)[:12]}, the cached "
                               f"weights are {tied_to[:12]}")
        if _text_sha256(canonical_json(value)) != checksum:
            raise CorruptEntry("value checksum mismatch: edited or corrupt")
        return value
