"""The model cache: round trip, verification, rebuild of damaged entries, memos tied to their
weights, and its edges: read-only, not a folder, orphan temp files, disk full."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import time
from pathlib import Path

import pytest
import torch

from unlearnbench import cache as cache_module
from unlearnbench.cache import ModelCache, cache_key
from unlearnbench.errors import ConfigError, UserError


def _creator(calls: list[int], value: float = 1.0):
    def create():
        calls.append(1)
        return {"w": torch.full((64, 64), value), "b": torch.arange(3.0)}, {"train_seconds": 2.5}

    return create


def test_round_trip_and_hit(tmp_path: Path) -> None:
    cache, calls = ModelCache(tmp_path, log=lambda m: None), []
    material = {"model": "mlp", "seed": 0, "role": "original"}
    first = cache.get_or_create(material, _creator(calls))
    second = cache.get_or_create(material, _creator(calls))
    assert not first.hit and second.hit and len(calls) == 1
    assert torch.equal(second.tensors["w"], torch.ones(64, 64))
    assert second.meta["train_seconds"] == 2.5 and second.meta["key"] == cache_key(material)
    assert not list(tmp_path.glob("*.tmp")), "temporary files left behind"


def test_key_depends_on_every_field() -> None:
    base = {"model": "mlp", "seed": 0, "role": "retrain", "forget_sha256": "ab"}
    assert cache_key(base) == cache_key(dict(reversed(list(base.items()))))
    for k, v in [("seed", 1), ("role", "original"), ("forget_sha256", "cd")]:
        assert cache_key({**base, k: v}) != cache_key(base)


def test_truncated_file_is_detected_and_rebuilt(tmp_path: Path) -> None:
    logs: list[str] = []
    cache, calls = ModelCache(tmp_path, log=logs.append), []
    material = {"role": "original"}
    entry = cache.get_or_create(material, _creator(calls))
    weights, _ = cache.paths(entry.key)
    weights.write_bytes(weights.read_bytes()[:100])
    again = cache.get_or_create(material, _creator(calls))
    assert not again.hit and len(calls) == 2 and logs and "rebuilding" in logs[0]
    assert cache.get_or_create(material, _creator(calls)).hit


def test_mismatched_sidecar_is_rebuilt(tmp_path: Path) -> None:
    logs: list[str] = []
    cache, calls = ModelCache(tmp_path, log=logs.append), []
    entry = cache.get_or_create({"role": "original"}, _creator(calls))
    _, sidecar = cache.paths(entry.key)
    meta = json.loads(sidecar.read_text())
    meta["key_material"] = {"role": "retrain"}
    sidecar.write_text(json.dumps(meta))
    assert not cache.get_or_create({"role": "original"}, _creator(calls)).hit
    assert "key material" in logs[0]


SHA_A, SHA_B = "a" * 64, "b" * 64


def _metrics(calls: list[int], ra: float = 55.5):
    def compute() -> dict:
        calls.append(1)
        return {"UA": 12.5, "RA": ra, "FTA": float("nan")}

    return compute


def test_memo_computes_once_per_material(tmp_path: Path) -> None:
    cache, calls = ModelCache(tmp_path, log=lambda m: None), []
    assert cache.memo({"weights": "a"}, _metrics(calls), tied_to=SHA_A)["UA"] == 12.5
    again = cache.memo({"weights": "a"}, _metrics(calls), tied_to=SHA_A)
    assert len(calls) == 1 and again["UA"] == 12.5 and again["FTA"] != again["FTA"]  # NaN kept
    cache.memo({"weights": "b"}, _metrics(calls), tied_to=SHA_A)
    assert len(calls) == 2


def test_memo_needs_the_weights_checksum(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path, log=lambda m: None)
    for bad in ["", "abc", None]:
        with pytest.raises(ValueError, match="tied_to"):
            cache.memo({"weights": "a"}, _metrics([]), tied_to=bad)  # type: ignore[arg-type]


def test_edited_memo_value_is_detected_and_recomputed(tmp_path: Path) -> None:
    logs: list[str] = []
    cache, calls = ModelCache(tmp_path, log=logs.append), []
    cache.memo({"weights": "a"}, _metrics(calls), tied_to=SHA_A)
    (path,) = tmp_path.glob("memo-*.json")
    path.write_text(path.read_text().replace("55.5", "60.93"))  # a hand-edited RA
    again = cache.memo({"weights": "a"}, _metrics(calls), tied_to=SHA_A)
    assert again["RA"] == 55.5 and len(calls) == 2
    assert len(logs) == 1 and re.match(r"memo \w+ unusable \(value checksum.*; recomputing$",
                                        logs[0])
    assert cache.memo({"weights": "a"}, _metrics(calls), tied_to=SHA_A)["RA"] == 55.5
    assert len(calls) == 2  # the recomputed memo was stored again


@pytest.mark.parametrize("damage", [b"", b"\x00\xff garbage", b'{"value": {"UA": 1}}', b"[]"])
def test_corrupt_memo_is_reported_and_recomputed(tmp_path: Path, damage: bytes) -> None:
    logs: list[str] = []
    cache, calls = ModelCache(tmp_path, log=logs.append), []
    cache.memo({"weights": "a"}, _metrics(calls), tied_to=SHA_A)
    (path,) = tmp_path.glob("memo-*.json")
    path.write_bytes(damage)
    assert cache.memo({"weights": "a"}, _metrics(calls), tied_to=SHA_A)["UA"] == 12.5
    assert len(calls) == 2 and len(logs) == 1 and "unreadable" in logs[0]


def test_memo_of_rebuilt_weights_is_not_used(tmp_path: Path) -> None:
    """Weights rebuilt differently (here: damaged, then retrained to other values) get their
    metrics recomputed; the memo of the old weights is never used for them."""
    logs: list[str] = []
    cache, trained, evaluated = ModelCache(tmp_path, log=logs.append), [], []
    material = {"role": "original"}
    old = cache.get_or_create(material, _creator(trained, value=1.0))
    memo_material = {"weights": old.key}  # the runner's material names the key, not the bytes
    cache.memo(memo_material, _metrics(evaluated, ra=55.5), tied_to=old.meta["weights_sha256"])
    weights, _ = cache.paths(old.key)
    weights.write_bytes(weights.read_bytes()[:-8])
    new = cache.get_or_create(material, _creator(trained, value=2.0))
    assert new.key == old.key and new.meta["weights_sha256"] != old.meta["weights_sha256"]
    value = cache.memo(memo_material, _metrics(evaluated, ra=70.0),
                       tied_to=new.meta["weights_sha256"])
    assert value["RA"] == 70.0 and len(evaluated) == 2
    assert "describes weights" in logs[-1] and "recomputing" in logs[-1]


def _make_read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod a-w; where that does not bind (running as root), refuse every write under the
    folder at the system-call wrapper, as a read-only mount would."""
    folder.chmod(0o555)
    try:
        (folder / ".probe").write_text("")
        (folder / ".probe").unlink()
    except PermissionError:
        return
    real_open, inside = os.open, folder.resolve()

    def read_only_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and Path(path).resolve().is_relative_to(
                inside):
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_open)


@pytest.fixture()
def read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # fallback locks stay in the test
    made: list[Path] = []
    yield lambda folder: (made.append(folder), _make_read_only(folder, monkeypatch))
    for folder in made:
        folder.chmod(0o755)


def test_read_only_cache_with_every_entry_is_usable(tmp_path: Path, read_only) -> None:
    root, calls, logs = tmp_path / "cache", [], []
    material = {"role": "original"}
    writer = ModelCache(root, log=lambda m: None)
    entry = writer.get_or_create(material, _creator(calls))
    writer.memo({"weights": entry.key}, _metrics(calls), tied_to=entry.meta["weights_sha256"])
    for lock in root.glob("*.lock"):  # a copied cache: no lock files
        lock.unlink()
    before = sorted(p.name for p in root.iterdir())
    read_only(root)
    cache = ModelCache(root, log=logs.append)
    again = cache.get_or_create(material, _creator(calls))
    cache.get_or_create(material, _creator(calls))
    memo = cache.memo({"weights": entry.key}, _metrics(calls),
                      tied_to=again.meta["weights_sha256"])
    assert again.hit and memo["UA"] == 12.5 and len(calls) == 2  # 1 training + 1 evaluation
    assert len(logs) == 1 and re.match(r"cache_dir=.* is not writable .*; locking in", logs[0])
    assert sorted(p.name for p in root.iterdir()) == before


def test_read_only_cache_missing_an_entry_fails_before_training(tmp_path: Path,
                                                                read_only) -> None:
    root, calls = tmp_path / "cache", []
    root.mkdir()
    read_only(root)
    with pytest.raises(ConfigError, match=rf"^cache_dir={root} is invalid; allowed: a writable "
                                          r"folder \(.*entry \w+ is not in it"):
        ModelCache(root, log=lambda m: None).get_or_create({"role": "x"}, _creator(calls))
    assert not calls and not list(root.iterdir())


@pytest.mark.parametrize("layout", ["file", "under_a_file"])
def test_cache_dir_that_is_no_folder_is_one_line(tmp_path: Path, layout: str) -> None:
    (tmp_path / "f").write_text("user data")
    root = tmp_path / "f" if layout == "file" else tmp_path / "f" / "cache"
    calls: list[int] = []
    with pytest.raises(ConfigError, match=r"^cache_dir=.* is invalid; allowed: a folder") as exc:
        ModelCache(root, log=lambda m: None).get_or_create({"role": "x"}, _creator(calls))
    assert "\n" not in str(exc.value) and not calls
    assert (tmp_path / "f").read_text() == "user data"


def test_orphan_temp_files_are_removed_and_nothing_else(tmp_path: Path) -> None:
    logs: list[str] = []
    cache, calls = ModelCache(tmp_path, log=logs.append), []
    material = {"role": "original"}
    key = cache_key(material)
    orphans = [tmp_path / f".{key}.safetensors.k1ll3d_x.tmp",
               tmp_path / f".{key}.json.ab12cd34.tmp"]
    kept = [tmp_path / f".{key}.safetensors.mine.tmp", tmp_path / "notes.tmp",
            tmp_path / f".{cache_key({'role': 'other'})}.json.ab12cd34.tmp"]
    for path in orphans + kept:
        path.write_bytes(b"partial")
    cache.get_or_create(material, _creator(calls))
    assert not any(p.exists() for p in orphans) and all(p.exists() for p in kept)
    assert len(logs) == 2 and all("partial write left by an interrupted run" in m for m in logs)


def test_orphan_memo_temp_file_is_removed_only_when_old(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path, log=lambda m: None)
    name = f"memo-{cache_key({'weights': 'a'})}.json"
    fresh, old = tmp_path / f".{name}.fresh123.tmp", tmp_path / f".{name}.old12345.tmp"
    for path in (fresh, old):
        path.write_bytes(b"{")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    cache.memo({"weights": "a"}, _metrics([]), tied_to=SHA_A)
    assert fresh.exists() and not old.exists()  # a fresh one may be another job's write


def _disk_full_after(monkeypatch: pytest.MonkeyPatch, good_writes: int) -> None:
    """The writer succeeds ``good_writes`` times, then writes half and hits ENOSPC."""
    real, count = cache_module._write_bytes, [0]

    def writer(path: Path, data: bytes) -> None:
        count[0] += 1
        if count[0] <= good_writes:
            return real(path, data)
        path.write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(cache_module, "_write_bytes", writer)


@pytest.mark.parametrize("good_writes", [0, 1])  # the weights, or their sidecar
def test_disk_full_is_one_line_and_leaves_no_partial_file(tmp_path: Path, good_writes: int,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    _disk_full_after(monkeypatch, good_writes)
    cache = ModelCache(tmp_path, log=lambda m: None)
    with pytest.raises(UserError, match=rf"^cache_dir={tmp_path}: no space left on device "
                                        r"while writing \w+\.(safetensors|json)") as exc:
        cache.get_or_create({"role": "original"}, _creator([]))
    assert "\n" not in str(exc.value)
    assert [p.suffix for p in tmp_path.iterdir()] == [".lock"]


def test_disk_full_while_storing_a_memo_keeps_the_value(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _disk_full_after(monkeypatch, 0)
    logs: list[str] = []
    value = ModelCache(tmp_path, log=logs.append).memo({"w": 1}, _metrics([]), tied_to=SHA_A)
    assert value["UA"] == 12.5 and not list(tmp_path.iterdir())
    assert len(logs) == 1 and "not stored (cache_dir=" in logs[0] and "no space left" in logs[0]
