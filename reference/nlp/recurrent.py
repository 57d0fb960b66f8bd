"""References for book 2's recurrent layers: one step of RNN, LSTM and GRU, and their time loops.

Written from ``jnp.tanh``, ``jax.nn.sigmoid``, ``jnp.split`` for the gates and ``jax.lax.scan`` over the
time axis; ``jax.vjp`` derives every gradient, backpropagation through time included. The gate order is
the book's: LSTM columns [f | g | i | o], GRU columns [z | r | h].

A time function starts from the state it is given (``h``, and ``c`` for an LSTM) and is differentiated
with respect to it: that gradient is the layer's ``dh``. The state a stateful layer carries from its
previous call is such an input too, computed by ``*_final`` from that call's inputs and given as a value:
no gradient flows into the previous call, which is the truncation of truncated BPTT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from reference._graph import Tap
from reference.nlp._nodes import scoped

Step = Callable[[Any, jax.Array], tuple[Any, jax.Array]]


@jax.custom_jvp
def tanh(x: jax.Array) -> jax.Array:
    """``jnp.tanh``, differentiated as 1 - tanh(x)^2, the book's formula.

    JAX's own derivative, (1 - y)(1 + y), is the same number in exact arithmetic and more accurate near
    saturation in float32, where 1 - y^2 loses the rounding of y^2 (a relative error of eps / (1 - y^2)).
    The float32 tolerance is set by this reference run natively in float32; with JAX's formula the book's
    own layers would be flagged for that rounding. In float64 the two differ far below the tolerance.
    """
    return jnp.tanh(x)


@tanh.defjvp
def _tanh_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]) -> tuple[jax.Array, jax.Array]:
    (x,), (dx,) = primals, tangents
    y = jnp.tanh(x)
    return y, dx * (1 - y**2)


@jax.custom_jvp
def _tanh_slack(x: jax.Array, slack: jax.Array) -> jax.Array:
    return jnp.tanh(x)


@_tanh_slack.defjvp
def _tanh_slack_jvp(primals: tuple[jax.Array, jax.Array], tangents: tuple[jax.Array, jax.Array]) -> Any:
    x, slack = primals
    y = jnp.tanh(x)
    return y, tangents[0] * (1 - y**2 + slack)


@jax.custom_jvp
def _sigmoid_slack(x: jax.Array, slack: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(x)


@_sigmoid_slack.defjvp
def _sigmoid_slack_jvp(primals: tuple[jax.Array, jax.Array], tangents: tuple[jax.Array, jax.Array]) -> Any:
    x, slack = primals
    y = jax.nn.sigmoid(x)
    return y, tangents[0] * (y * (1 - y) + slack)


class Activations(NamedTuple):
    tanh: Callable[[jax.Array], jax.Array]
    sigmoid: Callable[[jax.Array], jax.Array]


EXACT = Activations(tanh, jax.nn.sigmoid)


def _with_slack(slack: jax.Array) -> Activations:
    """The activations with ``slack`` added to their derivatives: an error in every derivative factor."""
    return Activations(lambda x: _tanh_slack(x, slack), lambda x: _sigmoid_slack(x, slack))


def rounding_terms(
    function: Callable[..., Any], diff: dict[str, Any], consts: dict[str, Any], cotangent: Any
) -> dict[str, Any]:
    """The magnitude of the rounding of each gradient of ``function`` in a narrow dtype from its activations'
    derivatives: a layer computing 1 - y^2 and y (1 - y) from a rounded y errs in each by a few eps
    absolutely, however saturated y is (all of the factor's relative digits). To first order each such
    error reaches a gradient through every later factor as it is: the sum, over every derivative factor,
    of the VJP with that one factor replaced by 1, which is the derivative of the VJP with respect to a
    slack added to every factor, at slack 0. Evaluated, as the oracle's terms are, on the absolute values
    of every input and of the cotangent."""
    names = list(diff)
    fixed = {k: jnp.abs(v) for k, v in consts.items()}
    cots = tuple(jnp.abs(c) for c in cotangent) if isinstance(cotangent, tuple) else jnp.abs(cotangent)

    def vjp(slack: jax.Array) -> tuple[Any, ...]:
        def f(*primals: jax.Array) -> Any:
            return function(**dict(zip(names, primals, strict=True)), **fixed, acts=_with_slack(slack))

        _, pullback = jax.vjp(f, *(jnp.abs(v) for v in diff.values()))
        return tuple(pullback(cots))

    zero = jnp.zeros((), dtype=jnp.result_type(*diff.values()))
    _, terms = jax.jvp(vjp, (zero,), (jnp.ones_like(zero),))
    return dict(zip(names, terms, strict=True))


def rnn(
    Wx: jax.Array, Wh: jax.Array, b: jax.Array, x: jax.Array, h_prev: jax.Array, acts: Activations = EXACT
) -> jax.Array:
    """h_next = tanh(x Wx + h_prev Wh + b)."""
    return acts.tanh(x @ Wx + h_prev @ Wh + b)


def lstm(
    Wx: jax.Array,
    Wh: jax.Array,
    b: jax.Array,
    x: jax.Array,
    h_prev: jax.Array,
    c_prev: jax.Array,
    acts: Activations = EXACT,
) -> tuple[jax.Array, jax.Array]:
    """(h_next, c_next): the gates [f | g | i | o] of x Wx + h_prev Wh + b; c_next = f c_prev + i g and
    h_next = o tanh(c_next)."""
    f, g, i, o = jnp.split(x @ Wx + h_prev @ Wh + b, 4, axis=-1)
    c_next = acts.sigmoid(f) * c_prev + acts.sigmoid(i) * acts.tanh(g)
    return acts.sigmoid(o) * acts.tanh(c_next), c_next


def gru(
    Wx: jax.Array, Wh: jax.Array, b: jax.Array, x: jax.Array, h_prev: jax.Array, acts: Activations = EXACT
) -> jax.Array:
    """The update gate z and the reset gate r from [z | r | h] of x Wx + b and h_prev Wh; the candidate
    tanh(x Wxh + bh + (r h_prev) Whh); h_next interpolates from h_prev to the candidate by z."""
    xz, xr, xh = jnp.split(x @ Wx + b, 3, axis=-1)
    Whz, Whr, Whh = jnp.split(Wh, 3, axis=-1)
    z = acts.sigmoid(xz + h_prev @ Whz)
    r = acts.sigmoid(xr + h_prev @ Whr)
    candidate = acts.tanh(xh + (r * h_prev) @ Whh)
    return h_prev + z * (candidate - h_prev)


def _scan(step: Step, state: Any, xs: jax.Array) -> tuple[Any, jax.Array]:
    """(final state, hs (N, T, H)) of ``step`` scanned over the time axis 1 of xs (N, T, D)."""
    final, hs = jax.lax.scan(step, state, jnp.swapaxes(xs, 0, 1))
    return final, jnp.swapaxes(hs, 0, 1)


def _rnn_run(
    Wx: jax.Array, Wh: jax.Array, b: jax.Array, xs: jax.Array, h: jax.Array, acts: Activations
) -> tuple[Any, jax.Array]:
    def step(h_prev: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h_next = rnn(Wx, Wh, b, x, h_prev, acts)
        return h_next, h_next

    return _scan(step, h, xs)


def _gru_run(
    Wx: jax.Array, Wh: jax.Array, b: jax.Array, xs: jax.Array, h: jax.Array, acts: Activations
) -> tuple[Any, jax.Array]:
    def step(h_prev: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h_next = gru(Wx, Wh, b, x, h_prev, acts)
        return h_next, h_next

    return _scan(step, h, xs)


def _lstm_run(
    Wx: jax.Array, Wh: jax.Array, b: jax.Array, xs: jax.Array, h: jax.Array, c: jax.Array, acts: Activations
) -> tuple[Any, jax.Array]:
    def step(state: tuple[jax.Array, jax.Array], x: jax.Array) -> tuple[Any, jax.Array]:
        h_next, c_next = lstm(Wx, Wh, b, x, *state, acts)
        return (h_next, c_next), h_next

    return _scan(step, (h, c), xs)


def time_rnn(
    Wx: jax.Array, Wh: jax.Array, b: jax.Array, xs: jax.Array, h: jax.Array, acts: Activations = EXACT
) -> jax.Array:
    """hs (N, T, H): the RNN scanned over xs (N, T, D) from the state h (N, H)."""
    return _rnn_run(Wx, Wh, b, xs, h, acts)[1]


def time_gru(
    Wx: jax.Array, Wh: jax.Array, b: jax.Array, xs: jax.Array, h: jax.Array, acts: Activations = EXACT
) -> jax.Array:
    """hs (N, T, H): the GRU scanned over xs (N, T, D) from the state h (N, H)."""
    return _gru_run(Wx, Wh, b, xs, h, acts)[1]


def time_lstm(
    Wx: jax.Array,
    Wh: jax.Array,
    b: jax.Array,
    xs: jax.Array,
    h: jax.Array,
    c: jax.Array,
    acts: Activations = EXACT,
) -> jax.Array:
    """hs (N, T, H): the LSTM scanned over xs (N, T, D) from the states h and c (N, H)."""
    return _lstm_run(Wx, Wh, b, xs, h, c, acts)[1]


def time_rnn_final(Wx: jax.Array, Wh: jax.Array, b: jax.Array, xs: jax.Array, h: jax.Array) -> jax.Array:
    """The state after the last step of ``time_rnn``: what a stateful layer carries into its next call."""
    final: jax.Array = _rnn_run(Wx, Wh, b, xs, h, EXACT)[0]
    return final


def time_gru_final(Wx: jax.Array, Wh: jax.Array, b: jax.Array, xs: jax.Array, h: jax.Array) -> jax.Array:
    """The state after the last step of ``time_gru``."""
    final: jax.Array = _gru_run(Wx, Wh, b, xs, h, EXACT)[0]
    return final


def time_lstm_final(
    Wx: jax.Array, Wh: jax.Array, b: jax.Array, xs: jax.Array, h: jax.Array, c: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The states (h, c) after the last step of ``time_lstm``."""
    final: tuple[jax.Array, jax.Array] = _lstm_run(Wx, Wh, b, xs, h, c, EXACT)[0]
    return final


def time_bilstm(
    Wx1: jax.Array,
    Wh1: jax.Array,
    b1: jax.Array,
    Wx2: jax.Array,
    Wh2: jax.Array,
    b2: jax.Array,
    xs: jax.Array,
    acts: Activations = EXACT,
) -> jax.Array:
    """(N, T, 2H): an LSTM over xs and another over xs reversed in time (its outputs put back in the
    original order), both from zero states, side by side on the last axis."""
    n, h = xs.shape[0], Wh1.shape[0]
    zeros = jnp.zeros((n, h), dtype=xs.dtype)
    ahead = time_lstm(Wx1, Wh1, b1, xs, zeros, zeros, acts)
    behind = jnp.flip(time_lstm(Wx2, Wh2, b2, jnp.flip(xs, axis=1), zeros, zeros, acts), axis=1)
    return jnp.concatenate([ahead, behind], axis=-1)


# ---- the checked call of a stateful time layer -------------------------------------------------------------
# The rows check a time layer over two calls, set_state(h0), forward(xs_prev), forward(xs): the first call's
# inputs and the ``stateful`` flag only decide the state the second starts from, which the row computes with
# ``*_final`` and gives as ``h`` (and ``c``). These take them, as the row passes every value, and use none.


def time_rnn_second_call(
    Wx: jax.Array,
    Wh: jax.Array,
    b: jax.Array,
    xs: jax.Array,
    h: jax.Array,
    h0: Any,
    xs_prev: Any,
    stateful: bool,
) -> jax.Array:
    """``time_rnn`` from the carried state h."""
    return time_rnn(Wx, Wh, b, xs, h)


def time_gru_second_call(
    Wx: jax.Array,
    Wh: jax.Array,
    b: jax.Array,
    xs: jax.Array,
    h: jax.Array,
    h0: Any,
    xs_prev: Any,
    stateful: bool,
) -> jax.Array:
    """``time_gru`` from the carried state h."""
    return time_gru(Wx, Wh, b, xs, h)


def time_lstm_second_call(
    Wx: jax.Array,
    Wh: jax.Array,
    b: jax.Array,
    xs: jax.Array,
    h: jax.Array,
    c: jax.Array,
    h0: Any,
    c0: Any,
    xs_prev: Any,
    stateful: bool,
) -> jax.Array:
    """``time_lstm`` from the carried states h and c."""
    return time_lstm(Wx, Wh, b, xs, h, c)


# ---- the book's computational graphs (issue 20) ------------------------------------------------------------
# Each ``*_graph`` is its reference again, written as the book's forward pass, with every node the book
# names tapped (``reference._graph``): the culprit search matches a failing layer's own arrays to them. A
# graph takes its reference's arguments after ``tap``; the time graphs take the first call's (h0, xs_prev,
# stateful), which only decide the carried state h (c), and use none of them.


def rnn_graph(
    tap: Tap, Wx: jax.Array, Wh: jax.Array, b: jax.Array, x: jax.Array, h_prev: jax.Array
) -> jax.Array:
    """The book's RNN.forward: ``t = h_prev Wh + x Wx + b``, ``h_next = tanh(t)``."""
    Wx, Wh, b = tap("Wx", Wx), tap("Wh", Wh), tap("b", b)
    x, h_prev = tap("x", x), tap("h_prev", h_prev)
    t = tap("t", jnp.dot(h_prev, Wh) + jnp.dot(x, Wx) + b)
    return tap("h_next", tanh(t))


def lstm_graph(
    tap: Tap, Wx: jax.Array, Wh: jax.Array, b: jax.Array, x: jax.Array, h_prev: jax.Array, c_prev: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The book's LSTM.forward: ``A`` sliced into the pre-activations ``A[:, :H]``, ``A[:, H:2*H]``,
    ``A[:, 2*H:3*H]``, ``A[:, 3*H:]`` (the book names each slice ``f``, ``g``, ``i``, ``o`` before
    activating it in place), the gates ``f``, ``g``, ``i``, ``o``, then ``c_next``, ``tanh_c_next`` (which
    the book's backward computes) and ``h_next``."""
    Wx, Wh, b = tap("Wx", Wx), tap("Wh", Wh), tap("b", b)
    x, h_prev, c_prev = tap("x", x), tap("h_prev", h_prev), tap("c_prev", c_prev)
    H = h_prev.shape[1]
    A = tap("A", jnp.dot(x, Wx) + jnp.dot(h_prev, Wh) + b)
    f = tap("f", jax.nn.sigmoid(tap("A[:, :H]", A[:, :H])))
    g = tap("g", tanh(tap("A[:, H:2*H]", A[:, H : 2 * H])))
    i = tap("i", jax.nn.sigmoid(tap("A[:, 2*H:3*H]", A[:, 2 * H : 3 * H])))
    o = tap("o", jax.nn.sigmoid(tap("A[:, 3*H:]", A[:, 3 * H :])))
    c_next = tap("c_next", f * c_prev + g * i)
    tanh_c_next = tap("tanh_c_next", tanh(c_next))
    return tap("h_next", o * tanh_c_next), c_next


def gru_graph(
    tap: Tap, Wx: jax.Array, Wh: jax.Array, b: jax.Array, x: jax.Array, h_prev: jax.Array
) -> jax.Array:
    """The book's GRU.forward (with the bias b = [bz | br | bh]): the pre-activations ``tz``, ``tr``,
    ``th`` (whose gradients the book's backward calls ``dt`` each in turn, and ``backprop.nlp.GRU`` calls
    ``dtz``, ``dtr``, ``dth``), the gates ``z`` and ``r``, ``r * h_prev`` (the book's ``dhr`` is its
    gradient), ``h_hat`` and ``h_next = (1 - z) h_prev + z h_hat``."""
    Wx, Wh, b = tap("Wx", Wx), tap("Wh", Wh), tap("b", b)
    x, h_prev = tap("x", x), tap("h_prev", h_prev)
    H = Wh.shape[0]
    Wxz, Wxr, Wxh = Wx[:, :H], Wx[:, H : 2 * H], Wx[:, 2 * H :]
    Whz, Whr, Whh = Wh[:, :H], Wh[:, H : 2 * H], Wh[:, 2 * H :]
    bz, br, bh = b[:H], b[H : 2 * H], b[2 * H :]
    z = tap("z", jax.nn.sigmoid(tap("tz", jnp.dot(x, Wxz) + jnp.dot(h_prev, Whz) + bz)))
    r = tap("r", jax.nn.sigmoid(tap("tr", jnp.dot(x, Wxr) + jnp.dot(h_prev, Whr) + br)))
    hr = tap("r * h_prev", r * h_prev)
    h_hat = tap("h_hat", tanh(tap("th", jnp.dot(x, Wxh) + jnp.dot(hr, Whh) + bh)))
    return tap("h_next", (1 - z) * h_prev + z * h_hat)


def _time_graph(
    tap: Tap,
    step: Callable[..., Any],
    params: tuple[jax.Array, jax.Array, jax.Array],
    xs: jax.Array,
    state: tuple[jax.Array, ...],
) -> jax.Array:
    """The book's TimeRNN.forward loop: ``xs`` and the carried state ``h`` (and ``c``), whose gradients are
    the layer's dxs and ``dh``, then step layer ``layers[t]`` from that state, its nodes named
    ``layers[t].<node>`` (t from 0, the book's ``self.layers[t]``), then ``hs``. Each step's ``h_next``
    gets the total gradient (the book's ``dhs[:, t, :] + dh``), each step's ``h_prev`` the gradient that
    step alone sends back (the ``dh`` its backward returns)."""
    xs = tap("xs", xs)
    state = tuple(tap(name, s) for name, s in zip(("h", "c"), state, strict=False))
    hs = []
    for t in range(xs.shape[1]):
        out = step(scoped(tap, f"layers[{t}]"), *params, xs[:, t, :], *state)
        state = out if isinstance(out, tuple) else (out,)
        hs.append(state[0])
    return tap("hs", jnp.stack(hs, axis=1))


def time_rnn_graph(
    tap: Tap, Wx: jax.Array, Wh: jax.Array, b: jax.Array, xs: jax.Array, h: jax.Array, **first_call: Any
) -> jax.Array:
    """``time_rnn_second_call`` as the book's TimeRNN: ``layers[t]`` each an ``rnn_graph``."""
    return _time_graph(tap, rnn_graph, (Wx, Wh, b), xs, (h,))


def time_gru_graph(
    tap: Tap, Wx: jax.Array, Wh: jax.Array, b: jax.Array, xs: jax.Array, h: jax.Array, **first_call: Any
) -> jax.Array:
    """``time_gru_second_call`` as the book's TimeGRU: ``layers[t]`` each a ``gru_graph``."""
    return _time_graph(tap, gru_graph, (Wx, Wh, b), xs, (h,))


def time_lstm_graph(
    tap: Tap,
    Wx: jax.Array,
    Wh: jax.Array,
    b: jax.Array,
    xs: jax.Array,
    h: jax.Array,
    c: jax.Array,
    **first_call: Any,
) -> jax.Array:
    """``time_lstm_second_call`` as the book's TimeLSTM: ``layers[t]`` each an ``lstm_graph``, the cell
    state carried beside h (``layers[t].c_next``, whose gradient is the ``dc`` step t + 1 sends back plus
    its own path through ``h_next``: the book's ``ds``)."""
    return _time_graph(tap, lstm_graph, (Wx, Wh, b), xs, (h, c))


def time_bilstm_graph(
    tap: Tap,
    Wx1: jax.Array,
    Wh1: jax.Array,
    b1: jax.Array,
    Wx2: jax.Array,
    Wh2: jax.Array,
    b2: jax.Array,
    xs: jax.Array,
) -> jax.Array:
    """The book's TimeBiLSTM.forward: ``forward_lstm`` over xs (its hs is ``o1``), ``backward_lstm`` over
    ``xs[:, ::-1]``, its hs reversed back (``o2``), and ``out``, both side by side; their nodes are
    ``forward_lstm.layers[t].<node>`` and ``backward_lstm.layers[t].<node>``, t counting the steps each
    LSTM takes (so the backward LSTM's step t reads xs[:, T - 1 - t])."""
    xs = tap("xs", xs)
    zeros = jnp.zeros((xs.shape[0], Wh1.shape[0]), dtype=xs.dtype)
    o1 = tap("o1", time_lstm_graph(scoped(tap, "forward_lstm"), Wx1, Wh1, b1, xs, zeros, zeros))
    o2 = time_lstm_graph(scoped(tap, "backward_lstm"), Wx2, Wh2, b2, jnp.flip(xs, axis=1), zeros, zeros)
    o2 = tap("o2", jnp.flip(o2, axis=1))
    return tap("out", jnp.concatenate([o1, o2], axis=2))
