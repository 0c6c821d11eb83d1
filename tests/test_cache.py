"""The model cache: round trip, verification, rebuild of damaged entries."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from unlearnbench.cache import ModelCache, cache_key


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


def test_memo_computes_once_per_material(tmp_path: Path) -> None:
    cache, calls = ModelCache(tmp_path, log=lambda m: None), []

    def compute() -> dict:
        calls.append(1)
        return {"UA": 12.5, "FTA": float("nan")}

    assert cache.memo({"weights": "a"}, compute)["UA"] == 12.5
    again = cache.memo({"weights": "a"}, compute)
    assert len(calls) == 1 and again["UA"] == 12.5 and again["FTA"] != again["FTA"]  # NaN kept
    cache.memo({"weights": "b"}, compute)
    assert len(calls) == 2
