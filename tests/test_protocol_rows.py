"""The row protocol fits the layers still to come: each shape of layer below is a small plain NumPy class, a
pure-JAX reference and a ``Row``, checked by ``verify`` like every registry row (it must pass), with one
deliberately broken variant the oracle must fail, naming the right check.

(a) an Embedding: integer indices with no gradient, ``backward`` returns None, dW accumulated over repeated
    indices with ``np.add.at``, book 2's ``params``/``grads`` written in place;
(b) an LSTM-like cell with several inputs and outputs: ``forward(x, h_prev, c_prev) -> (h_next, c_next)``,
    ``backward(dh_next, dc_next) -> (dx, dh_prev, dc_prev)``;
(c) hidden state given through ``set_state(h)``, its gradient read from ``.dh``;
(d) constructor arrays that are not differentiated (running statistics), traced as constants by the
    compiled reference;
(e) a tied parameter: one array listed twice in book 2's ``params``, its gradient the sum of both entries;
(f) a network with a ``params`` dict whose ``gradient(x, t)`` returns a dict keyed like ``params``, driven
    by a ``Row`` subclass that calls ``loss`` and ``gradient`` instead of ``forward`` and ``backward``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backprop.verify import (
    Arg,
    Convention,
    Example,
    LayerMismatch,
    LayerReport,
    Row,
    check_example,
    reference_inputs,
    reference_vjp,
    verify,
)

Array = np.ndarray[Any, Any]
Shapes = dict[str, tuple[int, ...]]
EXAMPLES = 30
FIRST: dict[str, Any] = {"max_failures": 1, "scope": False}  # the first failure is what these tests judge


def _sigmoid(z: Array) -> Array:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _sides(low: int = 1, high: int = 3) -> st.SearchStrategy[int]:
    return st.integers(low, high)


# ==== (a) Embedding ======================================================================================


class Embedding:
    """Book 2's Embedding: forward picks rows of W; backward scatters dout back into them and returns None."""

    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx: Array | None = None

    def forward(self, idx: Array) -> Array:
        (W,) = self.params
        self.idx = idx
        return W[idx]

    def backward(self, dout: Array) -> None:
        (dW,) = self.grads
        dW[...] = 0
        np.add.at(dW, self.idx, dout)  # a repeated index receives the sum of its rows of dout
        return None


class EmbeddingOverwrites(Embedding):
    """``dW[idx] = dout``: the book's own first try, wrong when an index repeats (the last row wins)."""

    def backward(self, dout: Array) -> None:
        (dW,) = self.grads
        dW[...] = 0
        dW[self.idx] = dout
        return None


def embedding(W: jax.Array, idx: jax.Array) -> jax.Array:
    return W[idx]


@st.composite
def embedding_shapes(draw: st.DrawFn, without: frozenset[Any]) -> Shapes:
    """A small vocabulary, so that indices repeat often; idx of shape (N,) or (N, T)."""
    v, d = draw(_sides(1, 4)), draw(_sides())
    idx = (draw(_sides(1, 4)),) + ((draw(_sides()),) if draw(st.booleans()) else ())
    return {"W": (v, d), "idx": idx, "out": (*idx, d)}


def indices(shapes: Mapping[str, tuple[int, ...]], dtype: np.dtype[Any], without: frozenset[Any]) -> Any:
    return hnp.arrays(np.int64, shapes["idx"], elements=st.integers(0, shapes["W"][0] - 1))


EMBEDDING = Row(
    name="embedding",
    layer=Embedding,
    reference=embedding,
    signature="Embedding(W[V,D]).forward(idx[N(,T)] ints) -> W[idx]   (backward -> None; grads[0] = dW)",
    args=(
        Arg(name="W", to="init", grad="dW", domain=(-10.0, 10.0)),
        Arg(name="idx", values=indices, batch=True),
    ),
    shapes=embedding_shapes,
)


# ==== (b) an LSTM-like cell: three inputs, two outputs ================================================


class TwoStateCell:
    """h_next = tanh(x Wx + h_prev Wh), c_next = c_prev * sigmoid(x Wf), written as book 2's cells are."""

    def __init__(self, Wx: Array, Wh: Array, Wf: Array) -> None:
        self.Wx, self.Wh, self.Wf = Wx, Wh, Wf
        self.dWx: Array | None = None
        self.dWh: Array | None = None
        self.dWf: Array | None = None
        self.cache: tuple[Array, ...] = ()

    def forward(self, x: Array, h_prev: Array, c_prev: Array) -> tuple[Array, Array]:
        h_next = np.tanh(x @ self.Wx + h_prev @ self.Wh)
        f = _sigmoid(x @ self.Wf)
        self.cache = (x, h_prev, c_prev, h_next, f)
        return h_next, c_prev * f

    def backward(self, dh_next: Array, dc_next: Array) -> tuple[Array, Array, Array]:
        x, h_prev, c_prev, h_next, f = self.cache
        dt = dh_next * (1 - h_next**2)
        df = dc_next * c_prev * f * (1 - f)
        self.dWx, self.dWh, self.dWf = x.T @ dt, h_prev.T @ dt, x.T @ df
        return dt @ self.Wx.T + df @ self.Wf.T, dt @ self.Wh.T, dc_next * f


class TwoStateCellSkipsTheGate(TwoStateCell):
    """dc_prev = dc_next: the forget gate left out on the way back to the previous cell state."""

    def backward(self, dh_next: Array, dc_next: Array) -> tuple[Array, Array, Array]:
        dx, dh_prev, _ = super().backward(dh_next, dc_next)
        return dx, dh_prev, dc_next.copy()


def two_state_cell(
    Wx: jax.Array, Wh: jax.Array, Wf: jax.Array, x: jax.Array, h_prev: jax.Array, c_prev: jax.Array
) -> tuple[jax.Array, jax.Array]:
    return jnp.tanh(x @ Wx + h_prev @ Wh), c_prev * jax.nn.sigmoid(x @ Wf)


@st.composite
def cell_shapes(draw: st.DrawFn, without: frozenset[Any]) -> Shapes:
    n, d, h = draw(_sides()), draw(_sides(1, 2)), draw(_sides(1, 2))  # few shapes: each is a compilation
    return {
        "Wx": (d, h),
        "Wh": (h, h),
        "Wf": (d, h),
        "x": (n, d),
        "h_prev": (n, h),
        "c_prev": (n, h),
        "h_next": (n, h),
        "c_next": (n, h),
    }


_MODERATE = (-3.0, 3.0)

TWO_STATE_CELL = Row(
    name="two_state_cell",
    layer=TwoStateCell,
    reference=two_state_cell,
    signature="Cell(Wx, Wh, Wf).forward(x, h_prev, c_prev) -> (h_next, c_next)   (backward -> dx, dh_prev, dc_prev)",
    args=(
        Arg(name="Wx", to="init", grad="dWx", domain=_MODERATE),
        Arg(name="Wh", to="init", grad="dWh", domain=_MODERATE),
        Arg(name="Wf", to="init", grad="dWf", domain=_MODERATE),
        Arg(name="x", grad="dx", domain=_MODERATE, batch=True),
        Arg(name="h_prev", grad="dh_prev", domain=(-1.0, 1.0), batch=True),
        Arg(name="c_prev", grad="dc_prev", domain=_MODERATE, batch=True),
    ),
    shapes=cell_shapes,
    outputs=("h_next", "c_next"),
)


# ==== (c) hidden state through set_state =================================================================


class StatefulRNN:
    """Book 2's stateful RNN, one step: ``set_state(h)`` gives the hidden state, forward moves it on, and
    backward leaves the gradient of the state given in ``self.dh``."""

    def __init__(self, Wx: Array, Wh: Array) -> None:
        self.Wx, self.Wh = Wx, Wh
        self.h: Array | None = None
        self.dh: Array | None = None
        self.dWx: Array | None = None
        self.dWh: Array | None = None
        self.cache: tuple[Array, ...] = ()

    def set_state(self, h: Array) -> None:
        self.h = h

    def forward(self, x: Array) -> Array:
        assert self.h is not None, "set_state(h) first"
        h_next = np.tanh(x @ self.Wx + self.h @ self.Wh)
        self.cache = (x, self.h, h_next)
        self.h = h_next
        return h_next

    def backward(self, dh_next: Array) -> Array:
        x, h_prev, h_next = self.cache
        dt = dh_next * (1 - h_next**2)
        self.dWx, self.dWh = x.T @ dt, h_prev.T @ dt
        self.dh = self._dh(dt)
        return dt @ self.Wx.T

    def _dh(self, dt: Array) -> Array:
        return dt @ self.Wh.T


class StatefulRNNUntransposed(StatefulRNN):
    """dh = dt Wh instead of dt Wh^T: a square Wh hides the missing transpose from the shapes."""

    def _dh(self, dt: Array) -> Array:
        return dt @ self.Wh


def rnn_step(Wx: jax.Array, Wh: jax.Array, h: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.tanh(x @ Wx + h @ Wh)


@st.composite
def rnn_shapes(draw: st.DrawFn, without: frozenset[Any]) -> Shapes:
    n, d, h = draw(_sides()), draw(_sides()), draw(_sides(2, 3))  # a side of 2+ so that Wh^T != Wh
    return {"Wx": (d, h), "Wh": (h, h), "h": (n, h), "x": (n, d), "out": (n, h)}


STATEFUL_RNN = Row(
    name="stateful_rnn",
    layer=StatefulRNN,
    reference=rnn_step,
    signature="RNN(Wx, Wh); set_state(h); forward(x) -> tanh(x Wx + h Wh)   (backward -> dx; .dWx, .dWh, .dh)",
    args=(
        Arg(name="Wx", to="init", grad="dWx", domain=_MODERATE),
        Arg(name="Wh", to="init", grad="dWh", domain=_MODERATE),
        Arg(name="h", to="state", grad="dh", read="attr", domain=(-1.0, 1.0), batch=True),
        Arg(name="x", grad="dx", domain=_MODERATE, batch=True),
    ),
    shapes=rnn_shapes,
)


# ==== (d) constructor arrays that are not differentiated ==================================================


class Scale:
    """out = (x - running_mean) * gamma, as batch normalization runs at test time: running_mean is state,
    not a parameter; only gamma (and x) get gradients."""

    def __init__(self, gamma: Array, running_mean: Array) -> None:
        self.gamma = gamma
        self.running_mean = running_mean
        self.dgamma: Array | None = None
        self.xc: Array | None = None

    def forward(self, x: Array) -> Array:
        self.xc = x - self.running_mean
        return self.xc * self.gamma

    def backward(self, dout: Array) -> Array:
        assert self.xc is not None
        self.dgamma = self._dgamma(dout)
        return dout * self.gamma

    def _dgamma(self, dout: Array) -> Array:
        assert self.xc is not None
        return np.sum(self.xc * dout, axis=0)


class ScaleForgetsTheMean(Scale):
    """dgamma = sum(x * dout): the running mean left out of the parameter's gradient."""

    def _dgamma(self, dout: Array) -> Array:
        assert self.xc is not None
        return np.sum((self.xc + self.running_mean) * dout, axis=0)


def scale(gamma: jax.Array, running_mean: jax.Array, x: jax.Array) -> jax.Array:
    return (x - running_mean) * gamma


@st.composite
def scale_shapes(draw: st.DrawFn, without: frozenset[Any]) -> Shapes:
    n, d = draw(_sides(1, 4)), draw(_sides())
    return {"gamma": (d,), "running_mean": (d,), "x": (n, d), "out": (n, d)}


SCALE = Row(
    name="scale",
    layer=Scale,
    reference=scale,
    signature="Scale(gamma[D], running_mean=[D]).forward(x[N,D]) -> (x - running_mean) * gamma   (.dgamma)",
    args=(
        Arg(name="gamma", to="init", grad="dgamma", domain=(-10.0, 10.0)),
        Arg(name="running_mean", to="init_kw", domain=(-10.0, 10.0)),
        Arg(name="x", grad="dx", domain=(-10.0, 10.0), batch=True),
    ),
    shapes=scale_shapes,
)


# ==== (e) a tied parameter ================================================================================


class TiedAutoencoder:
    """y = (x W) W^T with one W: book 2 lists it once per use in ``params``, each use with its own
    ``grads`` entry; the optimizer's gradient for W is their sum."""

    def __init__(self, W: Array) -> None:
        self.params = [W, W]
        self.grads = [np.zeros_like(W), np.zeros_like(W)]
        self.x: Array | None = None
        self.h: Array | None = None

    def forward(self, x: Array) -> Array:
        encoder, decoder = self.params
        self.x, self.h = x, x @ encoder
        return self.h @ decoder.T

    def backward(self, dout: Array) -> Array:
        assert self.x is not None and self.h is not None
        encoder, decoder = self.params
        dh = dout @ decoder
        self.grads[0][...] = self.x.T @ dh
        self._decoder_grad(dout)
        return dh @ encoder.T

    def _decoder_grad(self, dout: Array) -> None:
        assert self.h is not None
        self.grads[1][...] = dout.T @ self.h


class TiedAutoencoderEncoderOnly(TiedAutoencoder):
    """The decoder's use of W is forgotten: grads[1] stays zero, so W gets only the encoder's gradient."""

    def _decoder_grad(self, dout: Array) -> None:
        pass


def tied_autoencoder(W: jax.Array, x: jax.Array) -> jax.Array:
    return (x @ W) @ W.T


@st.composite
def tied_shapes(draw: st.DrawFn, without: frozenset[Any]) -> Shapes:
    n, d, h = draw(_sides()), draw(_sides()), draw(_sides())
    return {"W": (d, h), "x": (n, d), "out": (n, d)}


TIED = Row(
    name="tied_autoencoder",
    layer=TiedAutoencoder,
    reference=tied_autoencoder,
    signature="Tied(W[D,H]).forward(x[N,D]) -> x W W^T   (params = [W, W]; dW = grads[0] + grads[1])",
    args=(
        Arg(name="W", to="init", grad="dW", domain=_MODERATE),
        Arg(name="x", grad="dx", domain=_MODERATE, batch=True),
    ),
    shapes=tied_shapes,
)


# ==== (f) a network: params dict, gradient(x, t) -> dict ==================================================


class TinyNet:
    """The book's two-layer net, reduced: sigmoid hidden layer, softmax cross-entropy loss (mean over the
    batch); ``gradient(x, t)`` backpropagates through both layers and returns a dict keyed like params."""

    def __init__(self, W1: Array, b1: Array, W2: Array, b2: Array) -> None:
        self.params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}

    def _forward(self, x: Array) -> tuple[Array, Array]:
        p = self.params
        z1 = _sigmoid(x @ p["W1"] + p["b1"])
        return z1, z1 @ p["W2"] + p["b2"]

    def loss(self, x: Array, t: Array) -> float:
        _, a2 = self._forward(x)
        shifted = a2 - a2.max(axis=1, keepdims=True)
        log_y = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-np.mean(log_y[np.arange(len(t)), t]))

    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        z1, a2 = self._forward(x)
        y = np.exp(a2 - a2.max(axis=1, keepdims=True))
        y /= y.sum(axis=1, keepdims=True)
        dy = y - np.eye(a2.shape[1], dtype=a2.dtype)[t]
        dz1 = dy @ self.params["W2"].T / len(t)
        da1 = dz1 * z1 * (1 - z1)
        grads = {"W1": x.T @ da1, "b1": da1.sum(axis=0), "W2": z1.T @ dy / len(t)}
        grads["b2"] = self._b2(dy, len(t))
        return grads

    def _b2(self, dy: Array, n: int) -> Array:
        return np.asarray(dy.sum(axis=0) / n)


class TinyNetUnaveragedBias(TinyNet):
    """grads["b2"] forgets the 1/N of the mean loss (the other gradients keep it)."""

    def _b2(self, dy: Array, n: int) -> Array:
        return np.asarray(dy.sum(axis=0))


def tiny_net(
    W1: jax.Array, b1: jax.Array, W2: jax.Array, b2: jax.Array, x: jax.Array, t: jax.Array
) -> jax.Array:
    a2 = jax.nn.sigmoid(x @ W1 + b1) @ W2 + b2
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(a2), t[:, None], axis=1))


@dataclass(frozen=True, kw_only=True, eq=False)
class NetworkRow(Row):
    """A network as a row: ``loss(*inputs)`` is its forward and ``gradient(*inputs)`` its backward (the
    gradient of the loss, for dout = 1, so the row scales it by the drawn dout: the chain rule a caller
    would apply). The inputs of the last ``loss`` call are kept per instance for its ``gradient``."""

    methods: tuple[str, ...] = ("loss", "gradient")
    _inputs: weakref.WeakKeyDictionary[Any, tuple[Any, ...]] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )

    def call(self, instance: Any, values: Mapping[str, Any]) -> Any:
        inputs = tuple(values[a.name] for a in self.placed("forward"))
        self._inputs[instance] = inputs
        return instance.loss(*inputs)

    def backward(self, instance: Any, cotangents: tuple[Any, ...] | None) -> Any:
        grads = instance.gradient(*self._inputs[instance])
        if cotangents is None or not isinstance(grads, Mapping):
            return grads
        (dout,) = cotangents
        return {k: g * dout if isinstance(g, np.ndarray) else g for k, g in grads.items()}


def labels(shapes: Mapping[str, tuple[int, ...]], dtype: np.dtype[Any], without: frozenset[Any]) -> Any:
    n, c = shapes["x"][0], shapes["W2"][1]
    return hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1))


@st.composite
def net_shapes(draw: st.DrawFn, without: frozenset[Any]) -> Shapes:
    # few shapes: each costs a compilation of the whole network's gradient
    n, d, h, c = draw(_sides()), 2, 2, draw(_sides(2, 3))
    return {"W1": (d, h), "b1": (h,), "W2": (h, c), "b2": (c,), "x": (n, d), "t": (n,), "loss": ()}


TINY_NET = NetworkRow(
    name="tiny_net",
    layer=TinyNet,
    reference=tiny_net,
    signature="TinyNet(W1, b1, W2, b2).loss(x, t) -> mean cross entropy   (gradient(x, t) -> dict like params)",
    args=(
        *(
            Arg(name=name, to="init", grad=f"d{name}", read="key", domain=_MODERATE)
            for name in ("W1", "b1", "W2", "b2")
        ),
        Arg(name="x", domain=_MODERATE, batch=True),
        Arg(name="t", values=labels, batch=True),
    ),
    shapes=net_shapes,
    outputs=("loss",),
    loss=True,
)


# ==== every protocol row: the right layer passes, the broken one fails naming its check ===================


@dataclass(frozen=True)
class Protocol:
    row: Row
    right: type
    broken: type
    check: str
    """The check the broken variant must fail, as the report names it."""
    convention: Convention


PROTOCOLS = [
    Protocol(EMBEDDING, Embedding, EmbeddingOverwrites, "grads[0]", Convention.BOOK2),
    Protocol(TWO_STATE_CELL, TwoStateCell, TwoStateCellSkipsTheGate, "dc_prev", Convention.BOOK1),
    Protocol(STATEFUL_RNN, StatefulRNN, StatefulRNNUntransposed, "dh", Convention.BOOK1),
    Protocol(SCALE, Scale, ScaleForgetsTheMean, "dgamma", Convention.BOOK1),
    Protocol(TIED, TiedAutoencoder, TiedAutoencoderEncoderOnly, "grads[0]+grads[1]", Convention.BOOK2),
    Protocol(TINY_NET, TinyNet, TinyNetUnaveragedBias, "grads['b2']", Convention.NETWORK),
]


def _rendered(report: LayerReport) -> str:
    return report.failure.render() if report.failure is not None else str(report.error)


@pytest.mark.oracle
@pytest.mark.parametrize("case", PROTOCOLS, ids=lambda c: c.row.name)
def test_the_right_layer_passes(case: Protocol) -> None:
    report = verify(case.right, case.row, max_examples=EXAMPLES, seed=0)
    assert report.passed, _rendered(report)
    assert report.examples >= EXAMPLES and report.distinct_shapes >= 2
    assert report.convention == case.convention.value
    assert report.notes == []


@pytest.mark.oracle
@pytest.mark.parametrize("case", PROTOCOLS, ids=lambda c: c.row.name)
def test_the_broken_layer_fails_naming_the_check(case: Protocol) -> None:
    report = verify(case.broken, case.row, max_examples=EXAMPLES, seed=0, **FIRST)
    assert report.error is None, report.error
    assert report.failure is not None, f"{case.broken.__name__} passed {report.examples} examples"
    found = [(m.check, m.kind) for m in report.failure.mismatches]
    assert found == [(case.check, "value")], _rendered(report)
    assert case.broken.__name__ in report.failure.render()


# ==== what each protocol row shows on one example ==========================================================


def _drive(row: Row, layer: type, values: dict[str, Any], cots: tuple[Any, ...]) -> tuple[Any, ...]:
    """Build, forward and backward through the row: (instance, outputs, backward's result, gradients read)."""
    instance = row.build(layer, values)
    outs = row.outputs_of(row.call(instance, values))
    result = row.backward(instance, cots)
    return instance, outs, result, row.gradients(instance, result, values)


@pytest.mark.oracle
def test_embedding_accumulates_repeated_indices_and_returns_none() -> None:
    W = np.arange(6.0).reshape(3, 2)
    idx = np.array([2, 0, 2])
    dout = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    instance = EMBEDDING.build(Embedding, {"W": W, "idx": idx})
    (dW,) = instance.grads
    np.testing.assert_array_equal(EMBEDDING.call(instance, {"W": W, "idx": idx}), W[idx])
    result = EMBEDDING.backward(instance, (dout,))
    reads = EMBEDDING.gradients(instance, result, {"W": W, "idx": idx})
    assert result is None and [(r.where, r.problem) for r in reads] == [("grads[0]", None)]
    assert instance.params[0] is W and instance.grads[0] is dW  # book 2: written in place
    np.testing.assert_array_equal(dW, [[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]])
    assert reads[0].value is dW
    example = Example(row="embedding", dtype="float64", values={"W": W, "idx": idx}, cotangents=(dout,))
    check_example(EMBEDDING, Embedding, example)
    with pytest.raises(LayerMismatch) as caught:
        check_example(EMBEDDING, EmbeddingOverwrites, example)
    (mismatch,) = caught.value.failure.mismatches
    # the worst element: row 2 of dW gets both of its rows of dout, [1, 2] + [5, 6], not only the last
    assert (mismatch.check, mismatch.index) == ("grads[0]", (2, 1))
    assert (mismatch.worst_expected, mismatch.worst_actual) == (8.0, 6.0)


@pytest.mark.oracle
def test_two_outputs_take_two_cotangents_and_return_three_gradients() -> None:
    rng = np.random.default_rng(0)
    shapes = {"Wx": (2, 3), "Wh": (3, 3), "Wf": (2, 3), "x": (4, 2), "h_prev": (4, 3), "c_prev": (4, 3)}
    values = {k: rng.uniform(-1, 1, s) for k, s in shapes.items()}
    cots = (rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (4, 3)))
    _, outs, result, reads = _drive(TWO_STATE_CELL, TwoStateCell, values, cots)
    assert len(outs) == 2 and len(result) == 3
    assert [r.where for r in reads] == ["dx", "dh_prev", "dc_prev", "dWx", "dWh", "dWf"]
    ref = reference_vjp(TWO_STATE_CELL, values, cots)
    for out, expected in zip(outs, ref.outputs, strict=True):
        np.testing.assert_allclose(out, expected.value, rtol=1e-12)
    for read in reads:
        np.testing.assert_allclose(read.value, ref.grads[read.arg.name].value, rtol=1e-12, atol=1e-15)


def test_the_state_is_given_through_set_state_and_its_gradient_read_from_dh() -> None:
    given: list[Array] = []

    class Recording(StatefulRNN):
        def set_state(self, h: Array) -> None:
            given.append(h)
            super().set_state(h)

    rng = np.random.default_rng(1)
    shapes = {"Wx": (2, 3), "Wh": (3, 3), "h": (2, 3), "x": (2, 2)}
    values = {k: rng.uniform(-1, 1, s) for k, s in shapes.items()}
    instance, _, _, reads = _drive(STATEFUL_RNN, Recording, values, (np.ones((2, 3)),))
    assert len(given) == 1 and given[0] is values["h"]
    assert {r.arg.name: r.where for r in reads} == {"x": "dx", "Wx": "dWx", "Wh": "dWh", "h": "dh"}
    assert next(r.value for r in reads if r.arg.name == "h") is instance.dh


@pytest.mark.oracle
def test_running_statistics_are_traced_constants_of_one_compiled_reference() -> None:
    """A non-differentiated constructor array reaches the reference as a traced constant: a new running
    mean of the same shape reuses the compiled function, and is not baked into it."""
    gamma, x, dout = np.array([2.0, -1.0]), np.array([[1.0, 2.0], [3.0, 5.0]]), np.ones((2, 2))
    before = {"gamma": gamma, "running_mean": np.zeros(2), "x": x}
    after = {**before, "running_mean": np.array([1.0, 2.0])}
    compiled, _, consts, _ = reference_inputs(SCALE, before, (dout,))
    assert set(consts) == {"running_mean"}
    assert reference_inputs(SCALE, after, (dout,))[0] is compiled
    first, second = reference_vjp(SCALE, before, (dout,)), reference_vjp(SCALE, after, (dout,))
    np.testing.assert_array_equal(first.outputs[0].value, [[2.0, -2.0], [6.0, -5.0]])
    np.testing.assert_array_equal(second.outputs[0].value, [[0.0, 0.0], [4.0, -3.0]])
    np.testing.assert_array_equal(second.grads["gamma"].value, [2.0, 3.0])
    assert set(second.grads) == {"gamma", "x"}


def test_a_tied_weight_gets_the_sum_of_its_grads_entries() -> None:
    W, x, dout = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, -1.0]]), np.array([[1.0, 0.5]])
    _, _, _, reads = _drive(TIED, TiedAutoencoder, {"W": W, "x": x}, (dout,))
    dW = next(r for r in reads if r.arg.name == "W")
    assert dW.where == "grads[0]+grads[1]"
    h = x @ W
    np.testing.assert_allclose(dW.value, x.T @ (dout @ W) + dout.T @ h, rtol=1e-15)


@pytest.mark.oracle
def test_a_network_row_names_the_methods_it_drives() -> None:
    class NoGradient:
        def __init__(self, *params: Array) -> None:
            self.params = params

        def loss(self, x: Array, t: Array) -> float:
            return 0.0

    with pytest.raises(TypeError) as caught:
        verify(NoGradient, TINY_NET, max_examples=1)
    assert str(caught.value) == "NoGradient has no gradient method; the row 'tiny_net' drives loss, gradient"
