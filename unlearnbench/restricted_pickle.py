"""Unpickle CIFAR's batch files without letting a crafted file run code.

CIFAR-10/100 ship as Python pickles: dicts of str keys, lists of ints and str, and a uint8
numpy array. ``pickle.load`` would import and call whatever a file names (``os.system``...);
this unpickler resolves only numpy's own array/dtype/scalar rebuilders and ``_codecs.encode``
(how protocol-2 pickles carry bytes). Everything else (dict, list, str, bytes, numbers) needs
no import at all. Object arrays are refused too: their items would be unpickled objects.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

try:  # numpy >= 2 names its core `numpy._core`; pickles from numpy 1.x say `numpy.core`
    from numpy._core import multiarray, numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray, numeric  # type: ignore[no-redef]


class RefusedPickle(Exception):
    """The file asks for something a data batch never contains."""


def _dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(spec, align, copy)
    if dtype.hasobject:
        raise RefusedPickle(f"an array of Python objects (dtype {dtype})")
    return dtype


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles store bytes as `_codecs.encode(str, "latin1")`; no other codec.
    if encoding not in ("latin1", "latin-1"):
        raise RefusedPickle(f"_codecs.encode with codec {encoding!r}")
    return codecs.encode(text, "latin1")


_NUMPY = {"_reconstruct": multiarray._reconstruct, "scalar": multiarray.scalar}
ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1,
    **{(f"numpy.{core}.multiarray", name): f for core in ("core", "_core")
       for name, f in _NUMPY.items()},
    **{(f"numpy.{core}.numeric", "_frombuffer"): numeric._frombuffer
       for core in ("core", "_core")},
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(f"{module}.{name}") from None


def load_data_pickle(path: Path) -> Any:
    """Unpickle ``path`` admitting only numpy arrays, dtypes, numpy scalars and plain data.
    Raises RefusedPickle for anything else; other exceptions mean a corrupt file."""
    with open(path, "rb") as f:
        return _DataUnpickler(f, encoding="latin1").load()
