"""The row that drives a whole model of book 2: ``forward(xs, ts)`` is its loss, ``backward(dout)`` its
gradient, read from the model's ``grads`` list.

A model is built from its sizes (``init``/``init_kw`` arguments the pool entry fixes, ``dtype`` among
them when the constructor takes it). Its parameters are drawn like any argument (``to="params"``) and
written *in place* into the distinct arrays of its ``params`` list, in the order they first appear there:
an array listed again (a weight shared by several layers) or listed transposed (a view such as
``embed_W.T``, BetterRnnlm's tie) is the same parameter. After ``backward()`` each parameter's gradient is
the sum of the ``grads`` entries of every listing, transposed back for a transposed one (book 2's
``remove_duplicate``), so a model that drops one of them is caught.

Every ``forward`` starts from a zero recurrent state (``reset_state()`` first, when the model has it) and
runs under one fixed global random state, so that dropout and negative sampling draw the same masks and
samples on every call; ``capture`` reads them after ``forward`` for the reference (the masks from the
dropout layers, the negative samples from a recorder placed on each ``sampler``). Carrying state across
batches is the time layers' rows' concern.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop.verify.network import seeded
from backprop.verify.row import Arg, Read, Row
from backprop.verify.vocabulary import Kind

__all__ = ["ModelRow", "distinct_params", "dropout_masks", "negative_samples"]


def transposed_view(a: Any, b: Any) -> bool:
    """``b`` is ``a.T``: the same memory read with the axes swapped (a tie, not merely equal values)."""
    return (
        isinstance(a, np.ndarray)
        and isinstance(b, np.ndarray)
        and a.ndim == 2
        and b.shape == a.shape[::-1]
        and b.strides == a.strides[::-1]
        and b.__array_interface__["data"][0] == a.__array_interface__["data"][0]
    )


def distinct_params(params: Any) -> list[np.ndarray[Any, Any]]:
    """The arrays of a ``params`` list, each once, in the order they first appear (an entry that is an
    earlier one, or its transposed view, is not new)."""
    out: list[np.ndarray[Any, Any]] = []
    for p in params or ():
        if isinstance(p, np.ndarray) and not any(p is q or transposed_view(q, p) for q in out):
            out.append(p)
    return out


def dropout_masks(model: Any) -> dict[str, Any]:
    """The mask of every dropout layer of ``model.layers`` after forward, in order, as ``mask1``, ...:
    the factor each element was multiplied by (a boolean or 0/1 mask is scaled by 1 / (1 - ratio), as
    inverted dropout does)."""
    found = [layer for layer in getattr(model, "layers", None) or () if hasattr(layer, "dropout_ratio")]
    if not found:
        raise ValueError(f"{type(model).__name__}.layers holds no dropout layer")
    out = {}
    for i, layer in enumerate(found, start=1):
        mask = getattr(layer, "mask", None)
        if mask is None:
            raise ValueError(f"{type(model).__name__}'s dropout layer {i} has no mask after forward()")
        mask = np.asarray(mask)
        kept = mask[mask != 0]
        if mask.dtype == bool or (kept.size and np.all(kept == 1) and layer.dropout_ratio > 0):
            mask = mask.astype(np.float64) / (1.0 - layer.dropout_ratio)
        out[f"mask{i}"] = mask
    return out


class _Recorder:
    """Stands in for a sampler's ``get_negative_sample``, keeping what the real one returned."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.last: Any = None

    def __call__(self, target: Any) -> Any:
        self.last = self.draw(target)
        return self.last


def _samplers(model: Any) -> list[Any]:
    """Every ``sampler`` (anything with ``get_negative_sample``) of the model's negative-sampling layers,
    in attribute order: ``model.ns_loss`` (CBOW), ``model.loss_layers`` (SkipGram), ..."""
    found = []
    for value in vars(model).values():
        for item in value if isinstance(value, list | tuple) else [value]:
            sampler = getattr(item, "sampler", None)
            if sampler is not None and hasattr(sampler, "get_negative_sample"):
                found.append(sampler)
    return found


def record_samples(model: Any) -> None:
    """Put a recorder on every sampler of the model (once), so that ``negative_samples`` can read the
    draws of the last forward."""
    for sampler in _samplers(model):
        if not isinstance(sampler.get_negative_sample, _Recorder):
            sampler.get_negative_sample = _Recorder(sampler.get_negative_sample)


def negative_samples(model: Any) -> dict[str, Any]:
    """The negative samples every negative-sampling layer drew in the last forward, stacked as
    ``negatives`` of shape (layers, N, sample_size)."""
    draws = [getattr(s.get_negative_sample, "last", None) for s in _samplers(model)]
    if not draws or any(d is None for d in draws):
        raise ValueError(
            f"{type(model).__name__} drew no negative samples through a sampler's get_negative_sample()"
        )
    return {"negatives": np.stack([np.asarray(d) for d in draws])}


@dataclass(frozen=True, kw_only=True, eq=False)
class ModelRow(Row):
    """A book-2 model as a row: see the module's docstring."""

    seed: int = 20261129
    """The global random state every ``forward`` starts from."""
    shared_scale: bool = True  # as a network's: every gradient flows from the one at the logits
    book_dtype: str = "float32"
    """The dtype the book's models allocate (``.astype('f')``): a model whose constructor takes no
    ``dtype`` is checked in it, and a check runs in it unless another is asked."""

    @property
    def redraws_state(self) -> bool:
        return False  # every forward draws the same masks and samples, from the same seed

    def dtypes_for(self, layer: type) -> tuple[str, ...]:
        if _accepts(layer, "dtype"):
            return (self.book_dtype, *(d for d in self.dtypes if d != self.book_dtype))
        return (self.book_dtype,)

    def dtype_refusal(self, layer: type, dtype: str) -> str:
        if dtype not in self.dtypes or _accepts(layer, "dtype"):
            return super().dtype_refusal(layer, dtype)
        return (
            f"{layer.__qualname__}'s constructor takes no dtype: it is checked in {self.book_dtype}, the "
            f"dtype the book's models allocate; give it a dtype argument to check it in {dtype}"
        )

    def constructor_keywords(self, layer: type) -> tuple[Arg, ...]:
        kept = super().constructor_keywords(layer)
        # a model written as the book's allocates its own dtype (checked in build)
        return kept if _accepts(layer, "dtype") else tuple(a for a in kept if a.name != "dtype")

    def build(self, layer: type, values: Mapping[str, Any]) -> Any:
        """Build from the sizes, then write each drawn parameter into the model's own array in place;
        ``values`` (the stage's copy) then names those arrays, so that an in-place update reaches them."""
        model = super().build(layer, values)
        record_samples(model)
        name = type(model).__name__
        own = distinct_params(getattr(model, "params", None))
        wanted = self.placed("params")
        if len(own) != len(wanted):
            shapes = ", ".join(str(p.shape) for p in own)
            raise ValueError(
                f"{name}.params holds {len(own)} distinct arrays ({shapes}) but the row names {len(wanted)} "
                f"({', '.join(a.name for a in wanted)}): is a shared weight copied instead of shared?"
            )
        for arg, array in zip(wanted, own, strict=True):
            drawn = np.asarray(values[arg.name])
            if array.shape != drawn.shape:
                raise ValueError(
                    f"{name}: {arg.name} is {array.shape} in params but the sizes given to the constructor "
                    f"call for {drawn.shape}"
                )
            if array.dtype != drawn.dtype and not _wider(array.dtype, drawn.dtype):
                raise ValueError(
                    f"{name}: {arg.name} is {array.dtype} but the row checks {drawn.dtype}; give the "
                    "constructor a dtype argument, as backprop.nlp's models have"
                )
            array[...] = drawn
            if isinstance(values, MutableMapping):
                values[arg.name] = array
        return model

    def call(self, instance: Any, values: Mapping[str, Any]) -> Any:
        reset = getattr(instance, "reset_state", None)
        if callable(reset):
            reset()
        args = [values[a.name] for a in self.placed("forward")]
        with seeded(self.seed):
            return instance.forward(*args, **{a.name: values[a.name] for a in self.placed("keyword")})

    def _from_grads(self, instance: Any, arg: Arg, values: Mapping[str, Any]) -> Read:
        """Every listing of the parameter in ``params``, its ``grads`` entry summed (transposed back for a
        transposed listing)."""
        params, grads = getattr(instance, "params", None) or [], getattr(instance, "grads", None)
        if not isinstance(grads, list | tuple) or len(grads) != len(params):
            n = len(grads) if isinstance(grads, list | tuple) else 0
            message = f"grads has {n} entries but params has {len(params)}"
            return Read(arg, "grads", None, Kind.ARITY, message)
        own = values[arg.name]
        same = [i for i, p in enumerate(params) if p is own]
        flipped = [i for i, p in enumerate(params) if p is not own and transposed_view(own, p)]
        if not same and not flipped:
            message = f"params no longer holds the array {arg.name} was written into"
            return Read(arg, f"grads ({arg.name})", None, Kind.MISSING, message)
        where = "+".join([f"grads[{i}]" for i in same] + [f"grads[{i}].T" for i in flipped])
        try:
            parts = [np.asarray(grads[i]) for i in same] + [np.asarray(grads[i]).T for i in flipped]
            total = parts[0] if len(parts) == 1 else np.sum(parts, axis=0)
        except (TypeError, ValueError) as exc:
            return Read(arg, where, None, Kind.TYPE, f"cannot sum the tied gradients: {exc}")
        return Read(arg, where, total)

    def source(self, op: str, who: str, args: str, given: Mapping[str, str]) -> list[str]:
        """``build`` writes the drawn parameters into the model's distinct arrays (and names them so); every
        forward starts from a zero state and the row's seed."""
        if op == "forward":
            return [
                f"getattr({who}, 'reset_state', lambda: None)()  # a zero state before every forward",
                f"np.random.seed({self.seed})",
                f"{who}.forward({args})",
            ]
        names = [given[a.name] for a in self.placed("params")]
        if op != "build" or not names:
            return super().source(op, who, args, given)
        return [
            f"{who} = {args}",
            "# its distinct parameter arrays, in the order params lists them first (a tie is one array)",
            f"_own = [p for i, p in enumerate({who}.params) if not any(np.shares_memory(p, q) "
            f"for q in {who}.params[:i])]",
            f"assert len(_own) == {len(names)}, f'params holds {{len(_own)}} distinct arrays, the row names "
            f"{len(names)}: a shared weight copied?'",
            f"for _p, _v in zip(_own, [{', '.join(names)}]):",
            "    _p[...] = _v",
            f"{', '.join(names)}{',' if len(names) == 1 else ''} = _own",
        ]


def _wider(allocated: np.dtype[Any], drawn: np.dtype[Any]) -> bool:
    """A float parameter array that holds the drawn values exactly (float64 for float32): the model then
    computes in its wider dtype, as a layer that promotes does."""
    return allocated.kind == "f" and drawn.kind == "f" and np.can_cast(drawn, allocated, "safe")


def _accepts(layer: type, keyword: str) -> bool:
    try:
        params = inspect.signature(layer).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
