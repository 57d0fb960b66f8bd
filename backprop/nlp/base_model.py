"""What every book-2 layer and model shares: ``params`` and ``grads`` (``Layer``), and, for a model
(``common/base_model.py``), saving and loading ``params``.

``save_params``/``load_params`` take a ``.pkl`` file, as the book does (a pickled list of the arrays of
``params``, in order; the book's own files, saved as float16, load too), or a ``.npz`` file (``arr_0``,
``arr_1``, ... in order; no pickle, so safe to load from anywhere). Only load a ``.pkl`` you trust: unpickling
runs code. Loading writes into the arrays the layers hold, so a model's tied weights stay tied, and keeps
the model's own dtype.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = ["BaseModel", "Layer"]

Array = NDArray[Any]


def float_dtype(dtype: DTypeLike, model: str) -> np.dtype[Any]:
    """A model's parameter dtype: a float dtype (the book's ``'f'`` by default), else a ValueError."""
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"{model}: dtype must be a float dtype such as 'f' or float64, got {dt}")
    return dt


class Layer:
    """Book 2's layer: ``params`` and ``grads``, lists in the same order (empty when there are none).

    ``params`` holds the very arrays given (an optimizer updates them in place, and every call reads them
    from the list, as the book does); ``grads`` holds one array of zeros shaped and typed like each, into
    which ``backward`` writes its gradient in place (``self.grads[0][...] = dW``), so that whoever holds
    those arrays (an optimizer, a model's list of every layer's ``grads``) sees it.
    """

    params: list[Array]
    grads: list[Array]

    def __init__(self, *params: Any) -> None:
        self.params = list(params)
        self.grads = [np.zeros_like(p) for p in params]

    def _collect(self, *layers: Layer) -> None:
        """``params`` and ``grads`` as those of ``layers`` in turn: the very arrays, so a weight that several
        layers hold is listed once per layer (its gradient is the sum of those entries)."""
        self.params, self.grads = [], []
        for layer in layers:
            self.params += layer.params
            self.grads += layer.grads


class BaseModel(Layer):
    """A model: a ``Layer`` made of layers (``_collect``), with its ``params`` saved and loaded."""

    def _file(self, file_name: str | os.PathLike[str] | None) -> Path:
        return Path(file_name if file_name is not None else f"{type(self).__name__}.pkl")

    def save_params(self, file_name: str | os.PathLike[str] | None = None) -> None:
        """Every array of ``params``, in order, to ``file_name`` (``ClassName.pkl`` by default; ``.npz``
        writes a NumPy archive instead of a pickle)."""
        path = self._file(file_name)
        arrays = [np.array(p) for p in self.params]
        if path.suffix == ".npz":
            with path.open("wb") as f:  # an open file: np.savez would append .npz to another suffix
                np.savez(f, *arrays)  # arr_0, arr_1, ... in order
            return
        with path.open("wb") as f:
            pickle.dump(arrays, f)

    def load_params(self, file_name: str | os.PathLike[str] | None = None) -> None:
        """Read the arrays ``save_params`` wrote and copy them into ``params`` in place."""
        name = type(self).__name__
        path = self._file(file_name)
        try:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as data:
                    loaded = [data[f"arr_{i}"] for i in range(len(data.files))]
            else:
                with path.open("rb") as f:
                    loaded = list(pickle.load(f))
        except (OSError, ValueError, KeyError, pickle.UnpicklingError, EOFError, TypeError) as exc:
            raise ValueError(f"{name}.load_params: {str(path)!r} is not a parameter file ({exc})") from None
        if len(loaded) != len(self.params):
            raise ValueError(
                f"{name}.load_params: the file holds {len(loaded)} arrays but params has {len(self.params)}"
            )
        for i, (param, value) in enumerate(zip(self.params, loaded, strict=True)):
            if np.shape(value) != param.shape:
                raise ValueError(
                    f"{name}.load_params: params[{i}] has shape {np.shape(value)} in the file but "
                    f"{param.shape} here"
                )
        for param, value in zip(self.params, loaded, strict=True):
            param[...] = np.asarray(value, dtype=param.dtype)
