"""Rows for ``backprop.nlp.recurrent`` (RNN, LSTM, GRU and their time layers) against
``reference.nlp.recurrent``.

A time row checks two consecutive ``forward`` calls on one instance: ``set_state(h0)``, ``forward(xs_prev)``
(the previous chunk), then the checked ``forward(xs)`` and ``backward(dhs)``. A stateful layer starts the
checked call from the state the previous one ended with; a layer that is not stateful starts from zeros
whatever it was given. That starting state ``h`` is computed by the row (``carry``) and given to the
reference as an input of its own, so that the gradients are those of truncated BPTT: summed over the
checked call's steps only, with ``dh`` the gradient of its starting state.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from backprop.nlp import recurrent
from backprop.verify.draw import Without
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row, ShapeDict, Shapes
from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st

SECTION = (2, 5, 3)  # 5.3 the RNN, 6.3 the LSTM, then the GRU and the bidirectional LSTM of the book's code

_MODULE = "reference.nlp.recurrent"
_WEIGHTS = (-4.0, 4.0)
"""Weights, biases and inputs: pre-activations reach |x Wx + h Wh + b| of 24 for D = H = 1 and more for
wider layers, saturating tanh and sigmoid; shrinking draws moderate values near 0."""
_STATE = (-1.0, 1.0)
"""A hidden state h, as tanh leaves it."""
_CELL = (-4.0, 4.0)
"""An LSTM's cell state c, which grows by at most 1 in magnitude per step."""
STATEFUL = "stateful"
"""The pool's key for the time layer's ``stateful`` flag, (1,) or (0,): each entry is one compilation."""

FEATURES = (Feature.BATCH, Feature.LARGE, Feature.NEGATIVE_ZERO)


def _zeros(name: str) -> Callable[[Shapes, np.dtype[Any], Without], st.SearchStrategy[Any]]:
    """A carried state's placeholder: the row's ``carry`` computes its value."""

    def values(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
        from hypothesis import strategies as st

        return st.just(np.zeros(shapes[name], dtype=dtype))

    return values


def _stateful(shapes: Shapes) -> bool:
    return bool(shapes[STATEFUL][0])


@functools.cache
def _jitted(name: str) -> Callable[..., Any]:
    """A function of ``reference.nlp.recurrent``, compiled (once per shape)."""
    import jax

    from backprop.verify import cache

    cache.ensure()
    return jax.jit(getattr(importlib.import_module(_MODULE), name))


@functools.cache
def _rounding_vjp(name: str) -> Callable[..., Any]:
    import jax

    module = importlib.import_module(_MODULE)
    function = getattr(module, name)
    return jax.jit(lambda diff, consts, cots: module.rounding_terms(function, diff, consts, cots))


def _rounding(
    name: str, args: tuple[Arg, ...], consts: tuple[str, ...] = ()
) -> Callable[[Mapping[str, Any], tuple[Any, ...]], dict[str, Any]]:
    """The row's ``magnitude`` in float32: the rounding scale of the book's 1 - y^2 and y (1 - y), which
    lose a few eps absolutely (so all of the value's relative digits) once y saturates; the reference on
    absolute values, with its derivatives as small as saturation makes them, does not bound that. In
    float64 that rounding lies far below the tolerance, and nothing is added."""

    def magnitude(values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> dict[str, Any]:
        if all(np.asarray(c).dtype == np.float64 for c in cotangents):
            return {}
        import reference

        diff = {a.name: np.asarray(values[a.name], dtype=np.float64) for a in args if a.differentiable}
        fixed = {k: np.asarray(values[k], dtype=np.float64) for k in consts}
        cots = tuple(np.asarray(c, dtype=np.float64) for c in cotangents)
        with reference.x64():
            grads = _rounding_vjp(name)(diff, fixed, cots if len(cots) > 1 else cots[0])
        return {k: np.asarray(g) for k, g in grads.items()}

    return magnitude


# ==== one step =============================================================================================


def _step(n: int, d: int, h: int, gates: int) -> ShapeDict:
    return {
        "Wx": (d, gates * h),
        "Wh": (h, gates * h),
        "b": (gates * h,),
        "x": (n, d),
        "h_prev": (n, h),
        "c_prev": (n, h),
        "h_next": (n, h),
        "c_next": (n, h),
    }


_STEP_SIZES = (
    (1, 1, 1),  # the smallest: N = D = H = 1
    (1, 2, 3),  # a batch of one
    (2, 3, 2),  # nothing square
    (3, 2, 4),
    (2, 1, 3),  # D = 1
    (4, 3, 1),  # H = 1
    (3, 3, 3),  # Wx and Wh of the same shape (an RNN's): hides a swap of the two
    (2, 4, 2),
    (12, 6, 8),  # a large batch, wide layers
)
"""(N, D, H) of one step."""


def _step_pool(gates: int) -> tuple[ShapeDict, ...]:
    return tuple(_step(n, d, h, gates) for n, d, h in _STEP_SIZES)


def _params(suffix: str = "") -> tuple[Arg, ...]:
    return (
        Arg(name=f"Wx{suffix}", to="init", grad=f"dWx{suffix}", domain=_WEIGHTS),
        Arg(name=f"Wh{suffix}", to="init", grad=f"dWh{suffix}", domain=_WEIGHTS),
        Arg(name=f"b{suffix}", to="init", grad=f"db{suffix}", domain=_WEIGHTS),
    )


_X = Arg(name="x", grad="dx", domain=_WEIGHTS, batch=True)
_H_PREV = Arg(name="h_prev", grad="dh_prev", domain=_STATE, batch=True)
_RNN_ARGS = (*_params(), _X, _H_PREV)
_LSTM_ARGS = (*_RNN_ARGS, Arg(name="c_prev", grad="dc_prev", domain=_CELL, batch=True))

RNN_ROW = Row(
    name="rnn",
    layer=recurrent.RNN,
    reference=lazy(_MODULE, "rnn"),
    graph=lazy(_MODULE, "rnn_graph"),
    signature="RNN(Wx[D,H], Wh[H,H], b[H]).forward(x[N,D], h_prev[N,H]) -> tanh(h_prev Wh + x Wx + b)   "
    "(backward -> dx, dh_prev; grads [dWx, dWh, db])",
    args=_RNN_ARGS,
    shapes=_step_pool(1),
    magnitude=_rounding("rnn", _RNN_ARGS),
    outputs=("h_next",),
    features=FEATURES,
)

LSTM_ROW = Row(
    name="lstm",
    layer=recurrent.LSTM,
    reference=lazy(_MODULE, "lstm"),
    graph=lazy(_MODULE, "lstm_graph"),
    signature="LSTM(Wx[D,4H], Wh[H,4H], b[4H]).forward(x[N,D], h_prev[N,H], c_prev[N,H]) -> (h_next, c_next), "
    "gates [f|g|i|o]   (backward(dh_next, dc_next) -> dx, dh_prev, dc_prev)",
    args=_LSTM_ARGS,
    shapes=_step_pool(4),
    magnitude=_rounding("lstm", _LSTM_ARGS),
    outputs=("h_next", "c_next"),
    features=FEATURES,
)

GRU_ROW = Row(
    name="gru",
    layer=recurrent.GRU,
    reference=lazy(_MODULE, "gru"),
    graph=lazy(_MODULE, "gru_graph"),
    signature="GRU(Wx[D,3H], Wh[H,3H], b[3H]).forward(x[N,D], h_prev[N,H]) -> h_next, slices [z|r|h]   "
    "(backward -> dx, dh_prev)",
    args=_RNN_ARGS,
    shapes=_step_pool(3),
    magnitude=_rounding("gru", _RNN_ARGS),
    outputs=("h_next",),
    features=FEATURES,
)

# ==== time layers ==========================================================================================


def _time(n: int, t: int, previous: int, d: int, h: int, stateful: bool, gates: int) -> ShapeDict:
    state = (n, h)
    return {
        "Wx": (d, gates * h),
        "Wh": (h, gates * h),
        "b": (gates * h,),
        "xs_prev": (n, previous, d),
        "xs": (n, t, d),
        "h0": state,
        "c0": state,
        "h": state,
        "c": state,
        "hs": (n, t, h),
        STATEFUL: (int(stateful),),
    }


_TIME_SIZES = (
    (1, 1, 1, 1, 1, True),  # the smallest: N = T = D = H = 1, one step in each call
    (1, 3, 2, 2, 2, True),  # a batch of one over three steps
    (2, 1, 3, 3, 2, True),  # T = 1: a single step, after a longer previous call
    (2, 3, 3, 2, 3, True),
    (3, 2, 1, 1, 2, False),  # not stateful: the checked call starts from zeros
    (2, 4, 2, 3, 1, True),  # H = 1
    (3, 3, 3, 3, 3, True),  # all square
    (2, 2, 2, 2, 4, False),
    (4, 4, 4, 2, 3, True),
    (10, 3, 2, 4, 4, True),  # a large batch (see below)
)
"""(N, T, T of the previous call, D, H, stateful). Narrow and short: in float32 a recurrence with H = 8 and
|Wh| up to 4 amplifies its forward rounding from step to step beyond what the tolerance (the native
reference's own distance, times 4) allows for a right layer, whose rounding differs from the native run's.
"""


def _time_pool(gates: int) -> tuple[ShapeDict, ...]:
    return tuple(_time(*sizes, gates=gates) for sizes in _TIME_SIZES)


def _carry(final: str, states: tuple[str, ...]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """The state the checked call starts from, by name (``h``, and ``c`` for an LSTM): the reference's
    final state of the previous call from ``h0`` (``c0``) through ``xs_prev`` when the layer is stateful,
    zeros otherwise; in the dtype of the drawn states."""

    def carry(values: Mapping[str, Any], native: np.dtype[Any] | None = None) -> dict[str, Any]:
        start = [np.asarray(values[f"{s}0"]) for s in states]
        if not values[STATEFUL]:
            return {s: np.zeros_like(v) for s, v in zip(states, start, strict=True)}
        import reference

        dtype = native or np.dtype(np.float64)  # native: the rounding of a right layer in that dtype
        inputs = [np.asarray(values[k], dtype=dtype) for k in ("Wx", "Wh", "b", "xs_prev")]
        with reference.x64():
            out = _jitted(final)(*inputs, *(v.astype(dtype) for v in start))
        out = out if isinstance(out, tuple) else (out,)
        return {s: np.asarray(o, dtype=v.dtype) for s, o, v in zip(states, out, start, strict=True)}

    return carry


def _time_args(cell: bool) -> tuple[Arg, ...]:
    """The parameters, the flag, the first call's state (given to set_state) and input, the checked call's
    input, and the state the checked call starts from (carried; its gradient read from ``.dh``)."""
    first = [Arg(name="h0", to="state", domain=_STATE, batch=True)]
    carried = [
        Arg(name="h", to="carried", grad="dh", read="attr", domain=_STATE, values=_zeros("h"), batch=True)
    ]
    if cell:  # the book's TimeLSTM keeps no dc: the cell state is carried, its gradient not checked
        first.append(Arg(name="c0", to="state", domain=_CELL, batch=True))
        carried.append(Arg(name="c", to="carried", domain=_CELL, values=_zeros("c"), batch=True))
    return (
        *_params(),
        Arg(name="stateful", to="init_kw", fixed=_stateful),
        *first,
        Arg(name="xs_prev", to="previous", domain=_WEIGHTS, batch=True),
        Arg(name="xs", grad="dxs", domain=_WEIGHTS, batch=True),
        *carried,
    )


_TIME_CONVENTIONS = (
    "checked over two consecutive forward calls: set_state(h0), forward(xs_prev), then forward(xs) and "
    "backward(dhs); stateful=True carries the first call's final state into the second, stateful=False "
    "starts each call from zeros",
    "truncated BPTT: the gradients are summed over the second call's steps only, and dh is the gradient of "
    "the state that call started from",
)


def _time_row(name: str, layer: type, gates: int, cell: bool = False) -> Row:
    state = "h0, c0" if cell else "h0"
    wide = "H" if gates == 1 else f"{gates}H"
    args = _time_args(cell)
    return Row(
        name=name,
        layer=layer,
        reference=lazy(_MODULE, f"{name}_second_call"),
        graph=lazy(_MODULE, f"{name}_graph"),
        signature=f"{layer.__name__}(Wx[D,{wide}], Wh[H,{wide}], b[{wide}], stateful); set_state({state}); "
        "forward(xs_prev[N,T',D]); forward(xs[N,T,D]) -> hs[N,T,H]   (backward(dhs) -> dxs; .dh)",
        args=args,
        shapes=_time_pool(gates),
        magnitude=_rounding(name, args, ("c",) if cell else ()),
        outputs=("hs",),
        features=FEATURES,
        conventions=_TIME_CONVENTIONS,
        carry=_carry(f"{name}_final", ("h", "c") if cell else ("h",)),
        reset=_from_zeros,
    )


def _from_zeros(values: Mapping[str, Any]) -> dict[str, Any]:
    """After ``reset_state()`` a forward starts from zeros, as a layer that is not stateful does."""
    return {**values, STATEFUL: False}


TIME_RNN = _time_row("time_rnn", recurrent.TimeRNN, 1)
TIME_LSTM = _time_row("time_lstm", recurrent.TimeLSTM, 4, cell=True)
TIME_GRU = _time_row("time_gru", recurrent.TimeGRU, 3)


def _bilstm(n: int, t: int, d: int, h: int) -> ShapeDict:
    params: ShapeDict = {}
    for k in ("1", "2"):
        params.update({f"Wx{k}": (d, 4 * h), f"Wh{k}": (h, 4 * h), f"b{k}": (4 * h,)})
    return {**params, "xs": (n, t, d), "hs": (n, t, 2 * h)}


_BILSTM_ARGS = (*_params("1"), *_params("2"), Arg(name="xs", grad="dxs", domain=_WEIGHTS, batch=True))

TIME_BILSTM = Row(
    name="time_bilstm",
    layer=recurrent.TimeBiLSTM,
    reference=lazy(_MODULE, "time_bilstm"),
    graph=lazy(_MODULE, "time_bilstm_graph"),
    signature="TimeBiLSTM(Wx1, Wh1, b1, Wx2, Wh2, b2).forward(xs[N,T,D]) -> [hs_forward | hs_backward] "
    "[N,T,2H]   (backward(dhs) -> dxs; grads of both LSTMs, forward first)",
    args=_BILSTM_ARGS,
    shapes=tuple(
        _bilstm(*s)
        for s in (
            (1, 1, 1, 1),
            (1, 3, 2, 2),
            (2, 1, 3, 2),
            (2, 3, 2, 3),
            (3, 2, 1, 1),
            (2, 4, 3, 2),
            (6, 8, 4, 5),
        )
    ),
    outputs=("hs",),
    features=FEATURES,
    magnitude=_rounding("time_bilstm", _BILSTM_ARGS),
)

ROWS = (RNN_ROW, LSTM_ROW, GRU_ROW, TIME_RNN, TIME_LSTM, TIME_GRU, TIME_BILSTM)
