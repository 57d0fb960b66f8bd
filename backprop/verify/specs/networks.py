"""Rows for ``backprop.networks`` against ``reference.networks``: each network's ``gradient()`` against
``jax.vjp`` of its whole training loss.

Every entry of a pool fixes the sizes the network is built with; its parameters, inputs and labels are
drawn. Each distinct entry compiles the gradient of a whole network, so the pools are short. Biases are
drawn positive, which keeps most pre-activations off relu's kink. Inside a network the row holds the
library's conventions, relu'(0) = 0 and a pooling tie to its first maximum: shrinking reaches ties (with
W1 = 0 every window of a convolution's output is tied), so a network built from a pooling that splits ties
another valid way fails there. Check such a layer through its own row, which accepts it. Networks are
float64, as the book's are.

Targets are integer labels or one-hot rows, both forms of the book's SoftmaxWithLoss (features ``labels``
and ``one_hot``). The book's switches (``activation``, ``weight_decay_lambda``, ``use_dropout``,
``use_batchnorm``) are fixed by each pool entry too, and the entries cover every pair of their positions
(and of the target form), so that a mistake in one position of one switch is drawn and scoped ("right on
networks without batch normalization; wrong when batch normalization is on"). A switch compiles in like a
size, except lambda, which reaches the reference as an array: entries that differ only in lambda share
one compilation. The book's own loss is ``-log(y + 1e-7)``: each row has the ``-log(y + eps)`` form of its
reference (the same function with ``eps``), so that it is diagnosed ``epsilon`` and passes with ``--allow
epsilon``. DeepConvNet is drawn at the book's 1x28x28 input only, with 64 filters in its last convolution:
the book's W7 has 64 * 4 * 4 rows whatever its constructor is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

import backprop
from backprop.verify.draw import Without, float_arrays
from backprop.verify.lazy import lazy
from backprop.verify.network import NetworkRow
from backprop.verify.row import Arg, ShapeDict, Shapes, ValuesFn
from backprop.verify.tolerances import TOLERANCES
from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st

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
    n: int,
    params: Mapping[str, tuple[int, ...]],
    x: tuple[int, ...],
    one_hot: bool = False,
    **sizes: tuple[int, ...],
) -> ShapeDict:
    """One pool entry: the parameters' shapes, the batch and its targets (labels (N,), or one-hot (N, C)
    with C the last bias's size), and each fixed size or switch as a tuple of integers."""
    classes = params[_last_bias(params)][0]
    return {**params, "x": (n, *x), "t": (n, classes) if one_hot else (n,), "loss": (), **sizes}


def _last_bias(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return max((k for k in shapes if k.startswith("b") and k[1:].isdigit()), key=lambda k: int(k[1:]))


def _dense(sizes: Iterable[int]) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    sizes = list(sizes)
    for i in range(1, len(sizes)):
        out[f"W{i}"], out[f"b{i}"] = (sizes[i - 1], sizes[i]), (sizes[i],)
    return out


def labels(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
    """Integer labels for the batch, one of the last layer's classes each; one-hot rows of the same labels
    in the run's dtype where the entry's t has two axes."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp  # 0.3 s to import: not needed by --list

    classes = shapes[_last_bias(shapes)][0]
    drawn = hnp.arrays(np.int64, (shapes["x"][0],), elements=st.integers(0, classes - 1))
    if len(shapes["t"]) == 1:
        return drawn
    return drawn.map(lambda t: np.eye(classes, dtype=dtype)[t])


# ---- the book's switches -------------------------------------------------------------------------------

ACTIVATIONS = ("relu", "sigmoid")
DECAYS = (0.0, 0.1, 0.5)
"""The weight decay lambdas drawn: off, the book's 0.1, and a strong one."""
OFF_ON = (False, True)
SWITCHES: dict[str, tuple[Any, ...]] = {
    "activation": ACTIVATIONS,
    "weight_decay_lambda": DECAYS,
    "use_dropout": OFF_ON,
    "use_batchnorm": OFF_ON,
}
"""Each switch's positions; a pool entry holds the index of its position, as a size."""


def _switch(key: str) -> Arg:
    """A constructor switch the pool entry fixes. Lambda is a NumPy float (a float to the network): the
    reference takes it as an array, so that entries differing only in lambda compile once."""
    choices = SWITCHES[key]

    def read(shapes: Shapes) -> Any:
        value = choices[int(shapes[key][0])]
        return np.float64(value) if key == "weight_decay_lambda" else value

    return Arg(name=key, to="init_kw", fixed=read)


def _switched(activation: str = "relu", decay: float = 0.0, **flags: bool) -> dict[str, tuple[int, ...]]:
    """A pool entry's switches, as indices into ``SWITCHES`` (``flags``: use_dropout, use_batchnorm)."""
    out: dict[str, tuple[int, ...]] = {
        "activation": (ACTIVATIONS.index(activation),),
        "weight_decay_lambda": (DECAYS.index(decay),),
    }
    return out | {k: (int(v),) for k, v in flags.items()}


_PAIRS: dict[str, tuple[Feature, Feature]] = {
    # a switch's off and on positions (activation: relu and sigmoid)
    "activation": (Feature.RELU, Feature.SIGMOID),
    "weight_decay_lambda": (Feature.NO_WEIGHT_DECAY, Feature.WEIGHT_DECAY),
    "use_dropout": (Feature.NO_DROPOUT, Feature.DROPOUT),
    "use_batchnorm": (Feature.NO_BATCHNORM, Feature.BATCHNORM),
}
SWITCH_FEATURES = tuple(f for pair in _PAIRS.values() for f in pair)


def network_features(values: Mapping[str, Any]) -> set[Feature]:
    """The target form and the position of every switch the network is built with."""
    found = {Feature.ONE_HOT if np.ndim(values["t"]) == 2 else Feature.LABELS}
    for key, (off, on) in _PAIRS.items():
        if key in values:
            value = values[key]
            found.add(on if (value == "sigmoid" if key == "activation" else bool(value)) else off)
    return found


def _seeded(name: str, domain: tuple[float, float]) -> ValuesFn:
    """``name`` drawn from a seeded generator whatever its size (``float_arrays(elementwise=False)``)."""

    def draw(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
        return float_arrays(shapes[name], *domain, dtype, without, elementwise=False)

    return draw


def _params(
    names: Iterable[str],
    batch_norm: Iterable[str] = (),
    weights: tuple[float, float] = WEIGHTS,
    seeded: Iterable[str] = (),
) -> tuple[Arg, ...]:
    """The parameters: biases positive, weights in ``weights``; ``seeded`` ones never drawn elementwise."""
    dense = set(seeded)

    def param(name: str, domain: tuple[float, float]) -> Arg:
        values = _seeded(name, domain) if name in dense else None
        return Arg(name=name, to="params", grad=f"d{name}", domain=domain, values=values)

    out = [param(k, BIASES if k[0] == "b" else weights) for k in names]
    out += [param(k, (0.5, 2.0) if k[0] == "g" else weights) for k in batch_norm]
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


def _two_layer(n: int, d: int, h: int, c: int, one_hot: bool = False) -> ShapeDict:
    return _entry(n, _dense((d, h, c)), (d,), one_hot, input_size=(d,), hidden_size=(h,), output_size=(c,))


def _multi(
    n: int,
    d: int,
    hidden: tuple[int, int],
    c: int,
    switches: Mapping[str, tuple[int, ...]],
    one_hot: bool = False,
) -> ShapeDict:
    """Every batch normalization's gamma and beta have a shape even where it is off: the row draws them
    always and uses them only where the entry turns it on (``NetworkRow.only_with``)."""
    params = _dense((d, *hidden, c))
    params |= {f"{g}{i}": (size,) for i, size in enumerate(hidden, start=1) for g in ("gamma", "beta")}
    sizes = {"input_size": (d,), "hidden_size_list": hidden, "output_size": (c,)}
    return _entry(n, params, (d,), one_hot, **sizes, **switches)


def _simple_conv(
    n: int,
    image: tuple[int, int, int],
    fn: int,
    fs: int,
    pad: int,
    hidden: int,
    c: int,
    one_hot: bool = False,
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
    return _entry(n, params, image, one_hot, **sizes)


_DEEP_PADS = (1, 1, 1, 2, 1, 1)
DEEP_IMAGE = (1, 28, 28)
"""The only input the book's DeepConvNet is built for: its W7 has 64 * 4 * 4 rows, the 64 filters of the
last convolution over 28 -> 28 -> pool 14 -> 14 -> 16 -> pool 8 -> 8 -> 8 -> pool 4."""


def _deep_conv(
    n: int, filters: tuple[int, int, int, int, int], hidden: int, c: int, one_hot: bool
) -> ShapeDict:
    """A 1x28x28 image through the book's six 3x3 convolutions, ``filters`` in the first five (few, so that
    an example stays cheap) and the book's 64 in the sixth."""
    params: dict[str, tuple[int, ...]] = {}
    channels = DEEP_IMAGE[0]
    for i, fn in enumerate((*filters, 64), start=1):
        params[f"W{i}"], params[f"b{i}"] = (fn, channels, 3, 3), (fn,)
        channels = fn
    params |= {"W7": (64 * 4 * 4, hidden), "b7": (hidden,), "W8": (hidden, c), "b8": (c,)}
    sizes: dict[str, tuple[int, ...]] = {
        f"conv_param_{i}": (params[f"b{i}"][0], 3, pad, 1) for i, pad in enumerate(_DEEP_PADS, start=1)
    }
    sizes |= {"input_dim": DEEP_IMAGE, "hidden_size": (hidden,), "output_size": (c,)}
    return _entry(n, params, DEEP_IMAGE, one_hot, **sizes)


# Where a pool has a batch of one, each target form comes with a batch of one and with more: a scope search
# without one of the three features still draws the other two together, so a mistake in one target form is
# never taken for one in batches (a false "right on a batch of one").
TWO_LAYER_POOL = (
    _two_layer(1, 2, 2, 2),
    _two_layer(3, 4, 5, 3),
    _two_layer(1, 3, 2, 2, one_hot=True),
    _two_layer(4, 3, 6, 10),
    _two_layer(3, 5, 4, 3, one_hot=True),
    _two_layer(16, 6, 4, 4),
)
MULTI_POOL = (
    # every pair of positions of activation, weight decay and the target form; entries that differ only in
    # lambda share a compilation
    _multi(2, 2, (2, 2), 2, _switched("relu", 0.0)),
    _multi(3, 4, (5, 3), 3, _switched("relu", 0.1), one_hot=True),
    _multi(3, 4, (5, 3), 3, _switched("sigmoid", 0.0), one_hot=True),
    _multi(12, 5, (4, 6), 4, _switched("sigmoid", 0.1)),
    _multi(2, 2, (2, 2), 2, _switched("relu", 0.5)),
    _multi(3, 4, (5, 3), 3, _switched("sigmoid", 0.5), one_hot=True),
)
EXTEND_POOL = (
    # every pair of positions of activation, weight decay, dropout, batch normalization and the target form
    # in the first six (six compilations); the last two differ from one of them in lambda only
    _multi(2, 2, (2, 2), 2, _switched("relu", 0.0, use_dropout=False, use_batchnorm=False)),
    _multi(2, 2, (2, 2), 2, _switched("sigmoid", 0.1, use_dropout=False, use_batchnorm=False), one_hot=True),
    _multi(3, 4, (5, 3), 3, _switched("sigmoid", 0.0, use_dropout=True, use_batchnorm=False), one_hot=True),
    _multi(12, 5, (4, 6), 4, _switched("sigmoid", 0.0, use_dropout=True, use_batchnorm=True)),
    _multi(3, 4, (5, 3), 3, _switched("relu", 0.5, use_dropout=False, use_batchnorm=True), one_hot=True),
    _multi(2, 2, (2, 2), 2, _switched("relu", 0.1, use_dropout=True, use_batchnorm=True)),
    _multi(2, 2, (2, 2), 2, _switched("relu", 0.5, use_dropout=False, use_batchnorm=False)),
    _multi(12, 5, (4, 6), 4, _switched("sigmoid", 0.1, use_dropout=True, use_batchnorm=True)),
)
SIMPLE_CONV_POOL = (
    _simple_conv(1, (1, 4, 4), 2, 3, 1, 3, 2),
    _simple_conv(3, (2, 5, 5), 3, 2, 0, 4, 3),
    _simple_conv(1, (2, 5, 5), 3, 2, 0, 4, 3, one_hot=True),
    _simple_conv(2, (1, 4, 4), 2, 3, 1, 3, 2, one_hot=True),
)
DEEP_CONV_POOL = (
    # Each entry is a compilation of the whole network at 28x28 (7 s or so) and 5-25 ms a reference call;
    # filters enough that a border of zeros (conv 4 pads by 2) or a dead channel seldom ties a pooling
    # window, which the kink filter would throw away (one example in ten at these sizes).
    _deep_conv(1, (2, 2, 4, 4, 4), 2, 2, False),
    _deep_conv(2, (2, 2, 4, 4, 4), 3, 3, True),
    _deep_conv(1, (2, 2, 4, 4, 4), 3, 2, True),
    _deep_conv(2, (2, 2, 4, 4, 4), 2, 3, False),
)


def _sizes(*keys: str) -> tuple[Arg, ...]:
    return tuple(_fixed(k) for k in keys)


def _switches(*keys: str, **values: Any) -> tuple[Arg, ...]:
    """The switches the pool entry fixes (``keys``), then those every example shares (``values``)."""
    drawn = tuple(_switch(k) for k in keys)
    return drawn + tuple(Arg(name=k, to="init_kw", fixed=_constant(v)) for k, v in values.items())


def _constant(value: Any) -> Any:
    def read(shapes: Shapes) -> Any:
        return value

    return read


SECTION = (1, 8, 9)  # the networks of chapters 5-8, after every layer


def _network(
    name: str,
    layer: type,
    signature: str,
    args: tuple[Arg, ...],
    shapes: tuple[ShapeDict, ...],
    switches: tuple[Feature, ...] = (),
    **more: Any,
) -> NetworkRow:
    """A float64 network row: ``loss`` against the reference of the same name (or ``reference=``), which
    with ``eps`` is also its ``-log(y + eps)`` form; ``switches``: the features of its switches."""
    reference = lazy("reference.networks", more.pop("reference", name))
    graph = lazy("reference.networks", f"{reference.__name__}_graph")
    return NetworkRow(
        name=name,
        layer=layer,
        reference=reference,
        graph=graph,
        signature=signature,
        args=args,
        shapes=shapes,
        outputs=("loss",),
        loss=True,
        tolerances=FLOAT64,
        features=(
            Feature.LABELS,
            Feature.ONE_HOT,
            Feature.BATCH,
            # large only where the pool holds a large batch: each network shape costs a whole compilation
            *([Feature.LARGE] if max(e["x"][0] for e in shapes) > 8 else []),
            *switches,
        ),
        row_features=network_features,
        epsilon=reference,
        **more,
    )


_LOSS = (
    "loss(x, t) -> mean cross entropy, t[N] labels | t[N,C] one-hot   (gradient(x, t) -> dict like params)"
)
_BN = {f"{g}{i}": "use_batchnorm" for i in (1, 2) for g in ("gamma", "beta")}

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
        f"MultiLayerNet(input_size, [h1, h2], output_size, activation='relu'|'sigmoid', "
        f"weight_decay_lambda=0|0.1|0.5).{_LOSS}",
        (
            *_sizes("input_size", "hidden_size_list", "output_size"),
            *_switches("activation", "weight_decay_lambda"),
            *_params(["W1", "b1", "W2", "b2", "W3", "b3"]),
            *_data(),
        ),
        MULTI_POOL,
        SWITCH_FEATURES[:4],
        reference="multi_layer_net_extend",
    ),
    _network(
        "multi_layer_net_extend",
        backprop.MultiLayerNetExtend,
        "MultiLayerNetExtend(input_size, [h1, h2], output_size, activation='relu'|'sigmoid', "
        "weight_decay_lambda=0|0.1|0.5, use_dropout=False|True, use_batchnorm=False|True)."
        f"{_LOSS.replace('loss(x, t)', 'loss(x, t, train_flg=True)')}",
        (
            *_sizes("input_size", "hidden_size_list", "output_size"),
            *_switches(
                "activation", "weight_decay_lambda", "use_dropout", "use_batchnorm", dropout_ration=0.5
            ),
            *_params(
                ["W1", "b1", "W2", "b2", "W3", "b3"], ["gamma1", "beta1", "gamma2", "beta2"], (0.25, 3.0)
            ),
            *_data(spread_rows),
            Arg(name="train_flg", to="keyword", fixed=lambda shapes: True),
        ),
        EXTEND_POOL,
        SWITCH_FEATURES,
        reference="multi_layer_net_extend",
        capture=dropout_masks,
        only_with=_BN,
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
            # a 28x28 image meets many pooling windows: weights whose few distinct values tie them are
            # drawn rarely enough that the kink filter would throw most examples away
            *_params(
                [f"{p}{i}" for i in range(1, 9) for p in ("W", "b")], seeded=[f"W{i}" for i in range(1, 7)]
            ),
            *_data(),
        ),
        DEEP_CONV_POOL,
        capture=dropout_masks,
    ),
)
