"""Content-addressed cache of trained weights: safetensors + JSON sidecar, atomic, verified."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def cache_key(material: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines the weights."""
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a temp file in the same folder, then rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.safetensors", self.root / f"{key}.json"

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        # Two jobs needing the same entry: the second waits, then finds it built.
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

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
            entry = self._read(key, material)
            if entry is not None:
                return entry
            tensors, info = create()
            tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            weights, sidecar = self.paths(key)
            _atomic_write(weights, lambda p: save_file(tensors, str(p)))
            meta = {
                **info,
                "key": key,
                "key_material": material,
                "weights_sha256": _file_sha256(weights),
                "versions": {"torch": torch.__version__, "python": platform.python_version()},
            }
            _atomic_write(sidecar, lambda p: p.write_text(json.dumps(meta, indent=2, default=str)))
            return CacheEntry(key, tensors, meta, hit=False)

    def memo(
        self, material: dict[str, Any], compute: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """A small JSON result (e.g. a cached model's metrics) keyed like the weights."""
        path = self.root / f"memo-{cache_key(material)}.json"
        try:
            stored = json.loads(path.read_text())
            if canonical_json(stored["key_material"]) == canonical_json(material):
                return stored["value"]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # absent or unreadable: recompute
        value = compute()
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"key_material": material, "value": value}, default=str)
        _atomic_write(path, lambda p: p.write_text(text))
        return value
