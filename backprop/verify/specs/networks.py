"""Rows for ``backprop.networks`` against ``reference.networks``: each network's ``gradient()`` against
``jax.vjp`` of its whole training loss.

Every entry of a pool fixes the sizes the network is built with; its parameters, inputs and labels are
drawn. Each distinct entry compiles the gradient of a whole network, so the pools are short. Biases are
drawn positive, which keeps most pre-activations off relu's kink. Inside a network the row holds the
library's conventions, relu'(0) = 0 and a pooling tie to its first maximum: shrinking reaches ties (with
W1 = 0 every window of a convolution's output is tied), so a network built from a pooling that splits ties
another valid way fails there. Check such a layer through its own row, which accepts it. Networks are
float64, as the book's are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

import backprop
from backprop.verify.draw import Without, float_arrays
from backprop.verify.lazy import lazy
from backprop.verify.network import NetworkRow
from backprop.verify.row import Arg, ShapeDict, Shapes, ValuesFn
from backprop.verify.tolerances import TOLERANCES
from backprop.verify.vocabulary import Feature

FLOAT64 = {"float64": TOLERANCES["float64"]}
WEIGHTS = (-3.0, 3.0)
BIASES = (0.25, 3.0)
INPUTS = (-3.0, 3.0)


class Sizes(list[int]):
    """A ``hidden_size_list`` that can be compiled into a reference (hashable); a plain list to the
    network, so that the book's ``[input_size] + hidden_size_list + [output_size]`` works."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))


class Param(dict[str, int]):
    """A ``conv_param`` dict that can be compiled into a reference (hashable); it is a plain dict to the
    network."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


CONV_KEYS = ("filter_num", "filter_size", "pad", "stride")


def scalar(shapes: Shapes, key: str) -> int:
    return int(shapes[key][0])


def conv_param(shapes: Shapes, key: str) -> Param:
    return Param(zip(CONV_KEYS, (int(v) for v in shapes[key]), strict=True))


def _fixed(key: str) -> Arg:
    """A constructor keyword the pool entry fixes: ``conv_param*`` from its four sizes, ``*_list`` as a
    list, ``input_dim`` as a tuple, the other sizes as integers."""
    if key.startswith("conv_param"):
        return Arg(name=key, to="init_kw", fixed=lambda shapes: conv_param(shapes, key))
    if key.endswith("_list"):
        return Arg(name=key, to="init_kw", fixed=lambda shapes: Sizes(int(v) for v in shapes[key]))
    if key == "input_dim":
        return Arg(name=key, to="init_kw", fixed=lambda shapes: tuple(int(v) for v in shapes[key]))
    return Arg(name=key, to="init_kw", fixed=lambda shapes: scalar(shapes, key))


def _entry(
    n: int, params: Mapping[str, tuple[int, ...]], x: tuple[int, ...], **sizes: tuple[int, ...]
) -> ShapeDict:
    """One pool entry: the parameters' shapes, the batch, and each fixed size as a tuple of integers."""
    return {**params, "x": (n, *x), "t": (n,), "loss": (), **sizes}


def _dense(sizes: Iterable[int]) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    sizes = list(sizes)
    for i in range(1, len(sizes)):
        out[f"W{i}"], out[f"b{i}"] = (sizes[i - 1], sizes[i]), (sizes[i],)
    return out


def labels(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
    """Integer labels for the batch, one of the last layer's classes each."""
    from hypothesis.extra import numpy as hnp  # 0.3 s to import: not needed by --list

    last = max((k for k in shapes if k.startswith("b") and k[1:].isdigit()), key=lambda k: int(k[1:]))
    return hnp.arrays(np.int64, (shapes["x"][0],), elements=st.integers(0, shapes[last][0] - 1))


def _params(
    names: Iterable[str], batch_norm: Iterable[str] = (), weights: tuple[float, float] = WEIGHTS
) -> tuple[Arg, ...]:
    out = [Arg(name=k, to="params", grad=f"d{k}", domain=BIASES if k[0] == "b" else weights) for k in names]
    out += [
        Arg(name=k, to="params", grad=f"d{k}", domain=(0.5, 2.0) if k[0] == "g" else weights)
        for k in batch_norm
    ]
    return tuple(out)


def _data(x: ValuesFn | None = None) -> tuple[Arg, ...]:
    return (Arg(name="x", domain=INPUTS, values=x, batch=True), Arg(name="t", values=labels, batch=True))


SPREAD = 2.0


def spread_rows(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
    """x whose sample n is offset by n * 2 in every feature. Batch normalization divides by the batch's
    standard deviation: near-identical samples (where shrinking heads) make it amplify rounding a
    million-fold through two layers, and any two ways of computing it disagree there. With positive
    weights the samples stay apart in every layer."""
    n = shapes["x"][0]
    offsets = (np.arange(n, dtype=np.float64) * SPREAD).reshape(n, *([1] * (len(shapes["x"]) - 1)))
    return float_arrays(shapes["x"], *INPUTS, dtype, without).map(lambda x: (x + offsets).astype(x.dtype))


def dropout_masks(network: Any) -> dict[str, Any]:
    """The mask of every Dropout layer of ``network.layers``, in order, as ``mask1``, ``mask2``, ..."""
    layers = getattr(network, "layers", None)
    found = [
        layer
        for layer in (layers.values() if isinstance(layers, Mapping) else layers or ())
        if hasattr(layer, "dropout_ratio") and getattr(layer, "mask", None) is not None
    ]
    if not found:
        raise ValueError(f"{type(network).__name__}.layers holds no Dropout layer with a mask after loss()")
    return {f"mask{i}": np.asarray(layer.mask) for i, layer in enumerate(found, start=1)}


# ---- pools ------------------------------------------------------------------------------------------------


def _two_layer(n: int, d: int, h: int, c: int) -> ShapeDict:
    return _entry(n, _dense((d, h, c)), (d,), input_size=(d,), hidden_size=(h,), output_size=(c,))


def _multi(n: int, d: int, hidden: tuple[int, int], c: int) -> ShapeDict:
    params = _dense((d, *hidden, c))
    params |= {f"{g}{i}": (size,) for i, size in enumerate(hidden, start=1) for g in ("gamma", "beta")}
    return _entry(n, params, (d,), input_size=(d,), hidden_size_list=hidden, output_size=(c,))


def _simple_conv(
    n: int, image: tuple[int, int, int], fn: int, fs: int, pad: int, hidden: int, c: int
) -> ShapeDict:
    """conv (stride 1) then a 2x2 pool of a square image: fn * (conv // 2)**2 inputs to the first affine."""
    flat = fn * ((image[1] + 2 * pad - fs + 1) // 2) ** 2
    params = {"W1": (fn, image[0], fs, fs), "b1": (fn,), "W2": (flat, hidden), "b2": (hidden,)}
    params |= {"W3": (hidden, c), "b3": (c,)}
    sizes = {
        "input_dim": image,
        "conv_param": (fn, fs, pad, 1),
        "hidden_size": (hidden,),
        "output_size": (c,),
    }
    return _entry(n, params, image, **sizes)


_DEEP_PADS = (1, 1, 1, 2, 1, 1)


def _deep_conv(n: int, fn: int, hidden: int, c: int) -> ShapeDict:
    """An 8x8 image through the book's six 3x3 convolutions (8 -> 8 -> pool 4 -> 4 -> 6 -> pool 3 -> 3 -> 3
    -> pool 1), ``fn`` filters each."""
    params: dict[str, tuple[int, ...]] = {}
    channels = 1
    for i in range(1, 7):
        params[f"W{i}"], params[f"b{i}"] = (fn, channels, 3, 3), (fn,)
        channels = fn
    params |= {"W7": (fn, hidden), "b7": (hidden,), "W8": (hidden, c), "b8": (c,)}
    sizes = {f"conv_param_{i}": (fn, 3, pad, 1) for i, pad in enumerate(_DEEP_PADS, start=1)}
    return _entry(n, params, (1, 8, 8), input_dim=(1, 8, 8), hidden_size=(hidden,), output_size=(c,), **sizes)


TWO_LAYER_POOL = (
    _two_layer(1, 2, 2, 2),
    _two_layer(3, 4, 5, 3),
    _two_layer(4, 3, 6, 10),
    _two_layer(16, 6, 4, 4),
)
MULTI_POOL = (_multi(2, 2, (2, 2), 2), _multi(3, 4, (5, 3), 3), _multi(12, 5, (4, 6), 4))
SIMPLE_CONV_POOL = (_simple_conv(1, (1, 4, 4), 2, 3, 1, 3, 2), _simple_conv(3, (2, 5, 5), 3, 2, 0, 4, 3))
DEEP_CONV_POOL = (_deep_conv(1, 2, 3, 2), _deep_conv(3, 2, 4, 3))


def _sizes(*keys: str) -> tuple[Arg, ...]:
    return tuple(_fixed(k) for k in keys)


def _switches(**values: Any) -> tuple[Arg, ...]:
    return tuple(Arg(name=k, to="init_kw", fixed=_constant(v)) for k, v in values.items())


def _constant(value: Any) -> Any:
    def read(shapes: Shapes) -> Any:
        return value

    return read


SECTION = (1, 8, 9)  # the networks of chapters 5-8, after every layer


def _network(
    name: str, layer: type, signature: str, args: tuple[Arg, ...], shapes: tuple[ShapeDict, ...], **more: Any
) -> NetworkRow:
    """A float64 network row: ``loss`` against the reference of the same name (or ``reference=``)."""
    return NetworkRow(
        name=name,
        layer=layer,
        reference=lazy("reference.networks", more.pop("reference", name)),
        signature=signature,
        args=args,
        shapes=shapes,
        outputs=("loss",),
        loss=True,
        tolerances=FLOAT64,
        # large only where the pool holds a large batch: each network shape costs a whole compilation
        features=(Feature.BATCH, *([Feature.LARGE] if max(e["x"][0] for e in shapes) > 8 else [])),
        **more,
    )


_LOSS = "loss(x, t) -> mean cross entropy   (gradient(x, t) -> dict like params)"

ROWS = (
    _network(
        "two_layer_net",
        backprop.TwoLayerNet,
        f"TwoLayerNet(input_size, hidden_size, output_size).{_LOSS}",
        (
            *_sizes("input_size", "hidden_size", "output_size"),
            *_params(["W1", "b1", "W2", "b2"]),
            *_data(),
        ),
        TWO_LAYER_POOL,
    ),
    _network(
        "multi_layer_net",
        backprop.MultiLayerNet,
        f"MultiLayerNet(input_size, [h1, h2], output_size, activation='sigmoid', "
        f"weight_decay_lambda=0.1).{_LOSS}",
        (
            *_sizes("input_size", "hidden_size_list", "output_size"),
            *_switches(activation="sigmoid", weight_decay_lambda=0.1),
            *_params(["W1", "b1", "W2", "b2", "W3", "b3"]),
            *_data(),
        ),
        MULTI_POOL,
        reference="multi_layer_net_extend",
    ),
    _network(
        "multi_layer_net_extend",
        backprop.MultiLayerNetExtend,
        "MultiLayerNetExtend(input_size, [h1, h2], output_size, weight_decay_lambda=0.1, use_dropout=True, "
        f"use_batchnorm=True).{_LOSS.replace('loss(x, t)', 'loss(x, t, train_flg=True)')}",
        (
            *_sizes("input_size", "hidden_size_list", "output_size"),
            *_switches(weight_decay_lambda=0.1, use_dropout=True, dropout_ration=0.5, use_batchnorm=True),
            *_params(
                ["W1", "b1", "W2", "b2", "W3", "b3"], ["gamma1", "beta1", "gamma2", "beta2"], (0.25, 3.0)
            ),
            *_data(spread_rows),
            Arg(name="train_flg", to="keyword", fixed=lambda shapes: True),
        ),
        MULTI_POOL,
        reference="multi_layer_net_extend",
        capture=dropout_masks,
    ),
    _network(
        "simple_conv_net",
        backprop.SimpleConvNet,
        f"SimpleConvNet(input_dim, conv_param, hidden_size, output_size).{_LOSS}",
        (
            *_sizes("input_dim", "conv_param", "hidden_size", "output_size"),
            *_params(["W1", "b1", "W2", "b2", "W3", "b3"]),
            *_data(),
        ),
        SIMPLE_CONV_POOL,
    ),
    _network(
        "deep_conv_net",
        backprop.DeepConvNet,
        f"DeepConvNet(input_dim, conv_param_1..6, hidden_size, output_size).{_LOSS}",
        (
            *_sizes("input_dim", *(f"conv_param_{i}" for i in range(1, 7)), "hidden_size", "output_size"),
            *_params([f"{p}{i}" for i in range(1, 9) for p in ("W", "b")]),
            *_data(),
        ),
        DEEP_CONV_POOL,
        capture=dropout_masks,
    ),
)
