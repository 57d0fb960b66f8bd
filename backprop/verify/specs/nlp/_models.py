"""What the model rows of book 2 share: the fixed sizes, word ids drawn from the vocabulary, and the
row itself, in the book's float32 first and in float64. A whole model is one long chain of roundings: the
float32 tolerance holds because it counts the native float32 reference's own distance from the float64
truth on each example (``tolerances``), and the pools stay narrow and short (H and T up to 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from backprop.verify.draw import Without
from backprop.verify.lazy import lazy
from backprop.verify.model import ModelRow
from backprop.verify.row import Arg, ShapeDict, Shapes, ValuesFn
from backprop.verify.tolerances import TOLERANCES
from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st

WEIGHTS = (-2.0, 2.0)


def size(key: str) -> Arg:
    """A constructor size the pool entry fixes (``vocab_size``, ``hidden_size``, ...), an integer."""
    return Arg(name=key, to="init_kw", fixed=lambda shapes: int(shapes[key][0]))


def constant(key: str, value: Any) -> Arg:
    return Arg(name=key, to="init_kw", fixed=lambda shapes: value)


def _checked_dtype(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.just(dtype.name)


DTYPE = Arg(name="dtype", to="init_kw", values=_checked_dtype)
"""The dtype the check runs in ('float32' or 'float64'), for a model that allocates in the dtype it is
given (the book's 'f' by default), so the drawn values fit; a model written as the book's, without a
``dtype`` argument, is not given it (``ModelRow.constructor_keywords``)."""


def params(*names: str) -> tuple[Arg, ...]:
    """The model's parameters, in the order its ``params`` list first holds each."""
    return tuple(Arg(name=n, to="params", grad=f"d{n}", read="param", domain=WEIGHTS) for n in names)


def ids(name: str) -> ValuesFn:
    """Word ids of the argument's shape, from the vocabulary (small, so that repeats are common), int32
    as the book makes them."""

    def draw(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
        from hypothesis import strategies as st
        from hypothesis.extra import numpy as hnp  # 0.3 s to import: not needed by --list

        vocab = int(shapes["vocab_size"][0])
        return hnp.arrays(np.int32, shapes[name], elements=st.integers(0, vocab - 1))

    return draw


def one_hot(name: str) -> ValuesFn:
    """One-hot rows (int32, as the book's ``convert_one_hot`` makes them) of the argument's shape."""

    def draw(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
        from hypothesis import strategies as st
        from hypothesis.extra import numpy as hnp

        vocab = int(shapes["vocab_size"][0])
        labels = hnp.arrays(np.int32, shapes[name][:-1], elements=st.integers(0, vocab - 1))
        return labels.map(lambda t: np.eye(vocab, dtype=np.int32)[t])

    return draw


def data(*names: str) -> tuple[Arg, ...]:
    """The forward arguments: word ids (``one_hot`` names drawn one-hot), batch first."""
    return tuple(Arg(name=n, values=ids(n), batch=True) for n in names)


def entry(params: dict[str, tuple[int, ...]], inputs: dict[str, tuple[int, ...]], **sizes: int) -> ShapeDict:
    return {**params, **inputs, "loss": (), **{k: (v,) for k, v in sizes.items()}}


def model_row(
    module: str,
    name: str,
    layer: type,
    signature: str,
    args: tuple[Arg, ...],
    pool: tuple[ShapeDict, ...],
    epsilon: bool = False,
    **more: Any,
) -> ModelRow:
    """``epsilon``: the reference, given ``eps``, is the loss as the book writes it, ``-log(y + eps)``
    (the row's ``--allow epsilon``)."""
    return ModelRow(
        name=name,
        layer=layer,
        reference=lazy(f"reference.nlp.{module}", name),
        epsilon=lazy(f"reference.nlp.{module}", name) if epsilon else None,
        signature=signature,
        args=args,
        shapes=pool,
        outputs=("loss",),
        loss=True,
        tolerances=TOLERANCES,
        features=(Feature.BATCH,),
        **more,
    )
