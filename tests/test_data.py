"""Dataset readers on small local stand-ins in the real on-disk formats."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy.io import savemat

from unlearnbench.data import load_data
from unlearnbench.errors import ConfigError, DatasetMissingError

RNG = np.random.default_rng(0)


def _idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


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


@pytest.mark.parametrize(("name", "folder", "files", "key", "k"), [
    ("cifar10", "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "labels", 10),
    ("cifar100", "cifar-100-python", ["train"], "fine_labels", 100),
])
def test_cifar_stand_in(tmp_path: Path, name, folder, files, key, k) -> None:
    d = tmp_path / name / folder
    d.mkdir(parents=True)
    for f in [*files, "test"]:
        batch = {"data": RNG.integers(0, 255, (8, 3072), dtype=np.uint8), key: list(range(8))}
        (d / f).write_bytes(pickle.dumps(batch))
    data = load_data(_cfg(name, k), tmp_path)
    assert data.train_x.shape == (8 * len(files), 3, 32, 32) and data.num_classes == k


def test_svhn_stand_in_maps_label_10_to_0(tmp_path: Path) -> None:
    d = tmp_path / "svhn"
    d.mkdir()
    for split in ("train", "test"):
        images = RNG.integers(0, 255, (32, 32, 3, 6), dtype=np.uint8)
        labels = np.array([[10], [1], [2], [3], [4], [5]])
        savemat(d / f"{split}_32x32.mat", {"X": images, "y": labels})
    data = load_data(_cfg("svhn"), tmp_path)
    assert data.train_x.shape == (6, 3, 32, 32) and data.train_y.tolist() == [0, 1, 2, 3, 4, 5]


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
