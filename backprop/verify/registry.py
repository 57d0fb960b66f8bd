"""The registry: one row per layer, pairing the manual class with its JAX reference.

A row says how the class is built and called (which arguments go to the constructor, which to
``forward``, which are differentiated and where their gradients are read back), how its inputs are drawn
(a shape strategy plus a value domain per argument), and its dtype-keyed tolerances. The property tests,
the CLI report and the benchmark all iterate over ``ROWS``; adding a layer means adding one row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import backprop
import reference
from backprop.verify.tolerances import TOLERANCES, Tolerance

Shapes = Mapping[str, tuple[int, ...]]
Kind = Literal["param", "input", "const", "init", "call"]
ValuesFn = Callable[[Shapes, np.dtype[Any]], st.SearchStrategy[Any]]


def float_elements(low: float, high: float, dtype: np.dtype[Any]) -> st.SearchStrategy[float]:
    """Finite floats in [low, high] representable in ``dtype``.

    Subnormals are left out: XLA flushes them to zero on CPU, which would move relu's kink to |x| < 2.2e-308.
    """
    widths: dict[int, Literal[16, 32, 64]] = {2: 16, 4: 32, 8: 64}
    return st.floats(low, high, width=widths[dtype.itemsize], allow_subnormal=False)


def cotangent_arrays(
    shape: tuple[int, ...], dtype: np.dtype[Any], low: float, high: float, *, scalar: bool = False
) -> st.SearchStrategy[Any]:
    """Random incoming gradients in [low, high], never all ones (that would hide an ignored dout);
    ``scalar`` draws a plain float, the dout of a loss."""
    elements = float_elements(low, high, dtype)
    if scalar:
        return elements.filter(lambda g: g != 1.0)
    return hnp.arrays(dtype, shape, elements=elements).filter(lambda g: g.size == 0 or not np.all(g == 1))


@dataclass(frozen=True, kw_only=True)
class Arg:
    """One argument of the layer.

    kind:
      ``param``  constructor array, differentiated; its gradient is the attribute ``grad`` (``dW``).
      ``input``  forward positional array, differentiated; ``backward`` returns its gradient (``dx``).
      ``const``  forward positional array, not differentiated (labels ``t``, a dropout mask).
      ``init``   constructor value, not differentiated (stride, pad).
      ``call``   forward keyword value, not differentiated (``train_flg``).
    """

    name: str
    kind: Kind
    grad: str = ""
    domain: tuple[float, float] | None = None
    values: ValuesFn | None = None
    kinks: tuple[float, ...] = ()
    """Values of this argument where the layer is not differentiable (relu: 0); the row's
    ``conventions`` say which one-sided derivative counts there."""

    def __post_init__(self) -> None:
        if self.kind in ("param", "input") and not self.grad:
            raise ValueError(f"Arg {self.name!r}: a differentiated argument needs grad=, e.g. 'dx'")
        if (self.domain is None) == (self.values is None):
            raise ValueError(f"Arg {self.name!r}: give exactly one of domain= or values=")

    @property
    def differentiable(self) -> bool:
        return self.kind in ("param", "input")

    def strategy(self, shapes: Shapes, dtype: np.dtype[Any]) -> st.SearchStrategy[Any]:
        if self.values is not None:
            return self.values(shapes, dtype)
        if self.domain is None:
            raise ValueError(f"Arg {self.name!r} has neither domain= nor values=")
        low, high = self.domain
        return hnp.arrays(dtype, shapes[self.name], elements=float_elements(low, high, dtype))


@dataclass(frozen=True, kw_only=True, eq=False)  # compared and hashed by identity: a row is one layer
class Row:
    """One layer: the manual class, its reference, how to build and call it, its inputs and tolerances."""

    name: str
    layer: type
    reference: Callable[..., Any]
    signature: str
    args: tuple[Arg, ...]
    shapes: st.SearchStrategy[dict[str, tuple[int, ...]]]
    outputs: tuple[str, ...] = ("out",)
    loss: bool = False
    cotangent_domain: tuple[float, float] = (-10.0, 10.0)
    tolerances: Mapping[str, Tolerance] = field(default_factory=lambda: TOLERANCES)
    conventions: tuple[str, ...] = ()
    condition: Callable[[dict[str, Any]], dict[str, float]] | None = None
    """Factors, by output or argument name, by which rounding grows beyond the summed terms' magnitude:
    log-sum-exp of logits x loses eps * max|x| to cancellation, however it is written."""
    capture: Callable[[Any], dict[str, Any]] | None = None
    """Hidden state read from the layer after ``forward`` and passed to the reference (a dropout mask)."""

    def of_kind(self, *kinds: Kind) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.kind in kinds)

    @property
    def differentiable(self) -> tuple[Arg, ...]:
        return self.of_kind("param", "input")

    def tolerance(self, dtype: np.dtype[Any] | str) -> Tolerance:
        key = np.dtype(dtype).name
        if key not in self.tolerances:
            raise ValueError(f"{self.name}: no tolerance for dtype {key}; known: {sorted(self.tolerances)}")
        return self.tolerances[key]


# ---- shape strategies -------------------------------------------------------------------------------

_side = st.integers(1, 4)


@st.composite
def _stretched_pair(draw: st.DrawFn) -> dict[str, tuple[int, ...]]:
    """Operands that broadcasting must stretch: leading axes dropped, or size-1 axes against sides >= 2."""
    out = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))

    def operand() -> tuple[int, ...]:
        kept = out[draw(st.integers(0, len(out))) :]
        return tuple(1 if draw(st.booleans()) else n for n in kept)

    x, y = operand(), operand()
    return {"x": x, "y": y, "out": np.broadcast_shapes(x, y)}


def _broadcast_pair() -> st.SearchStrategy[dict[str, tuple[int, ...]]]:
    # Half the draws stretch an operand on purpose: generic broadcastable pairs rarely do, and an
    # unreduced gradient only shows when one is stretched.
    generic = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4).map(
        lambda s: {"x": s.input_shapes[0], "y": s.input_shapes[1], "out": s.result_shape}
    )
    return st.one_of(generic, _stretched_pair())


def _elementwise() -> st.SearchStrategy[dict[str, tuple[int, ...]]]:
    return hnp.array_shapes(min_dims=0, max_dims=3, max_side=4).map(lambda s: {"x": s, "out": s})


@st.composite
def _affine_shapes(draw: st.DrawFn) -> dict[str, tuple[int, ...]]:
    n, m = draw(_side), draw(_side)
    trailing = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    d = int(np.prod(trailing))
    return {"x": (n, *trailing), "W": (d, m), "b": (m,), "out": (n, m)}


@st.composite
def _softmax_loss_shapes(draw: st.DrawFn) -> dict[str, tuple[int, ...]]:
    n, c = draw(_side), draw(st.integers(2, 5))
    one_hot = draw(st.booleans())
    return {"x": (n, c), "t": (n, c) if one_hot else (n,), "loss": ()}


def _labels(shapes: Shapes, dtype: np.dtype[Any]) -> st.SearchStrategy[Any]:
    """Integer labels in [0, C), or the same labels one-hot encoded in the run's dtype."""
    n, c = shapes["x"]
    labels = hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1))
    if shapes["t"] == (n,):
        return labels
    return labels.map(lambda t: np.eye(c, dtype=dtype)[t])


def _log_sum_exp_condition(values: dict[str, Any]) -> dict[str, float]:
    kappa = max(1.0, float(np.max(np.abs(values["x"]), initial=0.0)))
    return {"loss": kappa, "x": kappa}


# ---- the rows -----------------------------------------------------------------------------------------

ROWS: tuple[Row, ...] = (
    Row(
        name="mul",
        layer=backprop.MulLayer,
        reference=reference.mul,
        signature="forward(x, y) -> x * y   (broadcasting; backward -> dx, dy)",
        args=(
            Arg(name="x", kind="input", grad="dx", domain=(-1e4, 1e4)),
            Arg(name="y", kind="input", grad="dy", domain=(-1e4, 1e4)),
        ),
        shapes=_broadcast_pair(),
    ),
    Row(
        name="add",
        layer=backprop.AddLayer,
        reference=reference.add,
        signature="forward(x, y) -> x + y   (broadcasting; backward -> dx, dy)",
        args=(
            Arg(name="x", kind="input", grad="dx", domain=(-1e4, 1e4)),
            Arg(name="y", kind="input", grad="dy", domain=(-1e4, 1e4)),
        ),
        shapes=_broadcast_pair(),
    ),
    Row(
        name="relu",
        layer=backprop.Relu,
        reference=reference.relu,
        signature="forward(x) -> max(x, 0)   (backward -> dx)",
        args=(Arg(name="x", kind="input", grad="dx", domain=(-1e4, 1e4), kinks=(0.0,)),),
        shapes=_elementwise(),
        conventions=("relu'(0) = 0, as jax.nn.relu differentiates",),
    ),
    Row(
        name="sigmoid",
        layer=backprop.Sigmoid,
        reference=reference.sigmoid,
        signature="forward(x) -> 1 / (1 + exp(-x))   (backward -> dx)",
        args=(Arg(name="x", kind="input", grad="dx", domain=(-1e4, 1e4)),),
        shapes=_elementwise(),
    ),
    Row(
        name="affine",
        layer=backprop.Affine,
        reference=reference.affine,
        signature="Affine(W[D,M], b[M]).forward(x[N,*d], prod(d)=D) -> [N,M]   (backward -> dx; .dW, .db)",
        args=(
            Arg(name="W", kind="param", grad="dW", domain=(-1e3, 1e3)),
            Arg(name="b", kind="param", grad="db", domain=(-1e3, 1e3)),
            Arg(name="x", kind="input", grad="dx", domain=(-1e3, 1e3)),
        ),
        shapes=_affine_shapes(),
    ),
    Row(
        name="softmax_with_loss",
        layer=backprop.SoftmaxWithLoss,
        reference=reference.softmax_with_loss,
        signature="forward(x[N,C], t[N] labels | t[N,C] one-hot) -> mean cross entropy"
        "   (backward(dout) -> dx)",
        args=(
            Arg(name="x", kind="input", grad="dx", domain=(-1e4, 1e4)),
            Arg(name="t", kind="const", values=_labels),
        ),
        shapes=_softmax_loss_shapes(),
        outputs=("loss",),
        loss=True,
        condition=_log_sum_exp_condition,
    ),
)

_BY_NAME = {row.name: row for row in ROWS}


def get_row(name: str) -> Row:
    """The row registered under ``name``; ValueError listing the known names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown layer {name!r}; known: {', '.join(_BY_NAME)}") from None


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)
