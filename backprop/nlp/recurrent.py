"""Recurrent layers of "Deep Learning from Scratch 2" (chapters 5 and 6, and the book's GRU and
bidirectional LSTM): one time step (``RNN``, ``LSTM``, ``GRU``) and whole sequences (``TimeRNN``,
``TimeLSTM``, ``TimeGRU``, ``TimeBiLSTM``), in book 2's convention.

Parameters sit in ``self.params`` = [Wx, Wh, b] and their gradients in ``self.grads``, written in place.
The gates are slices of one matrix, in the book's order: LSTM columns [f | g | i | o], GRU columns
[z | r | h] (update gate, reset gate, candidate state), each H wide.

A time layer runs one step layer per time step and sums the step gradients over time (truncated BPTT: the
gradient stops at the first step of the call, and the gradient of the state the call started from is left
in ``self.dh``). With ``stateful=True`` each ``forward`` starts from the state the previous one ended
with (or the one given by ``set_state``); otherwise it starts from zeros.

Every output and gradient keeps the dtype of the input it belongs to (float32 in, float32 out).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from backprop._errors import like, not_ready
from backprop.functions import sigmoid
from backprop.nlp.base_model import Layer

__all__ = ["GRU", "LSTM", "RNN", "TimeBiLSTM", "TimeGRU", "TimeLSTM", "TimeRNN"]

Array = NDArray[Any]


def _check_params(layer: str, Wx: Array, Wh: Array, b: Array, gates: int) -> tuple[int, int]:
    """(D, H) of Wx (D, gates*H), Wh (H, gates*H) and b (gates*H,); a ValueError naming the shapes."""
    Wx, Wh, b = np.asarray(Wx), np.asarray(Wh), np.asarray(b)
    wide = "H" if gates == 1 else f"{gates}H"
    if Wh.ndim != 2 or Wh.shape[1] != gates * Wh.shape[0]:
        raise ValueError(f"{layer}.__init__: Wh must have shape (H, {wide}), got {Wh.shape}")
    H = Wh.shape[0]
    if Wx.ndim != 2 or Wx.shape[1] != gates * H or b.shape != (gates * H,):
        raise ValueError(
            f"{layer}.__init__: Wx must have shape (D, {wide}) and b ({wide},) with H = {H} from Wh "
            f"{Wh.shape}, got Wx {Wx.shape} and b {b.shape}"
        )
    return Wx.shape[0], H


def _check_step(layer: str, D: int, H: int, x: Array, **states: Array) -> None:
    """x (N, D) and every state (N, H); a ValueError naming the shapes."""
    if x.ndim != 2 or x.shape[1] != D:
        raise ValueError(f"{layer}.forward: x must have shape (N, {D}), got {x.shape}")
    for name, state in states.items():
        if state.shape != (x.shape[0], H):
            raise ValueError(
                f"{layer}.forward: {name} must have shape (N, H) = {(x.shape[0], H)} for x of shape "
                f"{x.shape}, got {state.shape}"
            )


def _check_dout(layer: str, name: str, dout: Array, shape: tuple[int, ...]) -> None:
    if dout.shape != shape:
        raise ValueError(
            f"{layer}.backward: {name} of shape {dout.shape} does not match the output's {shape}"
        )


def _float(value: Any) -> Array:
    array: Array = np.asarray(value)
    return array


# ==== one time step =====================================================================================


class RNN(Layer):
    """One step of the simple RNN: h_next = tanh(h_prev Wh + x Wx + b).

    backward: dt = dh_next (1 - h_next^2); dWx = x^T dt, dWh = h_prev^T dt, db = sum_n dt,
    dx = dt Wx^T, dh_prev = dt Wh^T.
    """

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        self.D, self.H = _check_params("RNN", Wx, Wh, b, 1)
        super().__init__(Wx, Wh, b)
        self.cache: tuple[Array, Array, Array] | None = None

    def forward(self, x: Array, h_prev: Array) -> Array:
        Wx, Wh, b = self.params
        x, h_prev = _float(x), _float(h_prev)
        _check_step("RNN", self.D, self.H, x, h_prev=h_prev)
        t = np.dot(h_prev, Wh) + np.dot(x, Wx) + b
        h_next: Array = np.tanh(t).astype(x.dtype, copy=False)
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        if self.cache is None:
            raise not_ready("RNN")
        Wx, Wh, _ = self.params
        x, h_prev, h_next = self.cache
        dh_next = _float(dh_next)
        _check_dout("RNN", "dh_next", dh_next, h_next.shape)
        dt = dh_next * (1 - h_next**2)
        self.grads[0][...] = np.dot(x.T, dt)
        self.grads[1][...] = np.dot(h_prev.T, dt)
        self.grads[2][...] = np.sum(dt, axis=0)
        return like(np.dot(dt, Wx.T), x), like(np.dot(dt, Wh.T), h_prev)


class LSTM(Layer):
    """One LSTM step. A = x Wx + h_prev Wh + b is sliced into the gates [f | g | i | o] (the book's order):
    f, i, o = sigmoid(...), g = tanh(...); c_next = f c_prev + g i, h_next = o tanh(c_next).

    backward: ds = dc_next + dh_next o (1 - tanh(c_next)^2); dc_prev = ds f; the gates' pre-activation
    gradients [df | dg | di | do] are stacked in the same order into dA, then dWx = x^T dA,
    dWh = h_prev^T dA, db = sum_n dA, dx = dA Wx^T, dh_prev = dA Wh^T.
    """

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        self.D, self.H = _check_params("LSTM", Wx, Wh, b, 4)
        super().__init__(Wx, Wh, b)
        self.cache: tuple[Array, ...] | None = None

    def forward(self, x: Array, h_prev: Array, c_prev: Array) -> tuple[Array, Array]:
        Wx, Wh, b = self.params
        x, h_prev, c_prev = _float(x), _float(h_prev), _float(c_prev)
        _check_step("LSTM", self.D, self.H, x, h_prev=h_prev, c_prev=c_prev)
        H = self.H
        A = np.dot(x, Wx) + np.dot(h_prev, Wh) + b
        f = sigmoid(A[:, :H])
        g = np.tanh(A[:, H : 2 * H])
        i = sigmoid(A[:, 2 * H : 3 * H])
        o = sigmoid(A[:, 3 * H :])
        c_next = (f * c_prev + g * i).astype(c_prev.dtype, copy=False)
        h_next = (o * np.tanh(c_next)).astype(x.dtype, copy=False)
        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next

    def backward(self, dh_next: Array, dc_next: Array) -> tuple[Array, Array, Array]:
        if self.cache is None:
            raise not_ready("LSTM")
        Wx, Wh, _ = self.params
        x, h_prev, c_prev, i, f, g, o, c_next = self.cache
        dh_next, dc_next = _float(dh_next), _float(dc_next)
        _check_dout("LSTM", "dh_next", dh_next, c_next.shape)
        _check_dout("LSTM", "dc_next", dc_next, c_next.shape)
        tanh_c = np.tanh(c_next)
        ds = dc_next + (dh_next * o) * (1 - tanh_c**2)
        dc_prev = like(ds * f, c_prev)
        df = ds * c_prev * f * (1 - f)
        dg = ds * i * (1 - g**2)
        di = ds * g * i * (1 - i)
        do = dh_next * tanh_c * o * (1 - o)
        dA = np.hstack((df, dg, di, do))  # the forward pass's slice order
        self.grads[0][...] = np.dot(x.T, dA)
        self.grads[1][...] = np.dot(h_prev.T, dA)
        self.grads[2][...] = dA.sum(axis=0)
        return like(np.dot(dA, Wx.T), x), like(np.dot(dA, Wh.T), h_prev), dc_prev


class GRU(Layer):
    """One GRU step, the book's GRU with a bias b = [bz | br | bh] (the book's has none; pass zeros for
    it). Wx, Wh and b are sliced into [z | r | h] (update gate, reset gate, candidate):

        z = sigmoid(x Wxz + h_prev Whz + bz),  r = sigmoid(x Wxr + h_prev Whr + br)
        h_hat = tanh(x Wxh + (r h_prev) Whh + bh),  h_next = (1 - z) h_prev + z h_hat

    backward: as the book's, with db the batch sums of the three pre-activation gradients.
    """

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        self.D, self.H = _check_params("GRU", Wx, Wh, b, 3)
        super().__init__(Wx, Wh, b)
        self.cache: tuple[Array, ...] | None = None

    def forward(self, x: Array, h_prev: Array) -> Array:
        Wx, Wh, b = self.params
        x, h_prev = _float(x), _float(h_prev)
        _check_step("GRU", self.D, self.H, x, h_prev=h_prev)
        H = self.H
        z = sigmoid(np.dot(x, Wx[:, :H]) + np.dot(h_prev, Wh[:, :H]) + b[:H])
        r = sigmoid(np.dot(x, Wx[:, H : 2 * H]) + np.dot(h_prev, Wh[:, H : 2 * H]) + b[H : 2 * H])
        h_hat = np.tanh(np.dot(x, Wx[:, 2 * H :]) + np.dot(r * h_prev, Wh[:, 2 * H :]) + b[2 * H :])
        h_next: Array = ((1 - z) * h_prev + z * h_hat).astype(x.dtype, copy=False)
        self.cache = (x, h_prev, z, r, h_hat)
        return h_next

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        if self.cache is None:
            raise not_ready("GRU")
        Wx, Wh, _ = self.params
        x, h_prev, z, r, h_hat = self.cache
        dh_next = _float(dh_next)
        _check_dout("GRU", "dh_next", dh_next, h_prev.shape)
        H = self.H
        Wxz, Wxr, Wxh = Wx[:, :H], Wx[:, H : 2 * H], Wx[:, 2 * H :]
        Whz, Whr, Whh = Wh[:, :H], Wh[:, H : 2 * H], Wh[:, 2 * H :]
        dh_prev = dh_next * (1 - z)
        # the candidate: h_hat = tanh(x Wxh + (r h_prev) Whh + bh)
        dth = dh_next * z * (1 - h_hat**2)
        dhr = np.dot(dth, Whh.T)
        dh_prev = dh_prev + r * dhr
        # the update gate: h_next = h_prev + z (h_hat - h_prev)
        dtz = dh_next * (h_hat - h_prev) * z * (1 - z)
        # the reset gate scales h_prev inside the candidate
        dtr = dhr * h_prev * r * (1 - r)
        dh_prev = dh_prev + np.dot(dtz, Whz.T) + np.dot(dtr, Whr.T)
        dx = np.dot(dtz, Wxz.T) + np.dot(dtr, Wxr.T) + np.dot(dth, Wxh.T)
        self.grads[0][...] = np.hstack((np.dot(x.T, dtz), np.dot(x.T, dtr), np.dot(x.T, dth)))
        self.grads[1][...] = np.hstack(
            (np.dot(h_prev.T, dtz), np.dot(h_prev.T, dtr), np.dot((r * h_prev).T, dth))
        )
        self.grads[2][...] = np.hstack((dtz.sum(axis=0), dtr.sum(axis=0), dth.sum(axis=0)))
        return like(dx, x), like(dh_prev, h_prev)


# ==== whole sequences ===================================================================================


class _Time(Layer):
    """The loop shared by TimeRNN, TimeLSTM and TimeGRU: one step layer per time step, the hidden state
    carried forward (and across calls when stateful), the gradients summed over time on the way back."""

    step: Any  # the step layer's class
    gates = 1
    cell = False  # an LSTM also carries its cell state c

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        self.D, self.H = _check_params(type(self).__name__, Wx, Wh, b, self.gates)
        super().__init__(Wx, Wh, b)
        self.layers: list[Any] | None = None
        self.h: Array | None = None
        self.c: Array | None = None
        self.dh: Array | None = None
        self.dc: Array | None = None
        self.stateful = stateful
        self._dtype: np.dtype[Any] | None = None
        self._nt = (0, 0)

    def _start(self, xs: Array, N: int) -> None:
        """The state this call starts from: the carried one when stateful, zeros otherwise."""
        zeros = np.zeros((N, self.H), dtype=xs.dtype)
        if not self.stateful or self.h is None:
            self.h = zeros
        if self.cell and (not self.stateful or self.c is None):
            self.c = zeros.copy()
        for name in ("h", "c") if self.cell else ("h",):
            state = np.shape(getattr(self, name))
            if state != (N, self.H):
                raise ValueError(
                    f"{type(self).__name__}.forward: the state {name} has shape {state}, but xs of shape "
                    f"{xs.shape} needs (N, H) = {(N, self.H)}"
                )

    def forward(self, xs: Array) -> Array:
        """hs[:, t] = h_t, the hidden state after step t, for xs (N, T, D); hs (N, T, H)."""
        xs = _float(xs)
        if xs.ndim != 3 or xs.shape[2] != self.D:
            raise ValueError(
                f"{type(self).__name__}.forward: xs must have shape (N, T, {self.D}), got {xs.shape}"
            )
        N, T, _ = xs.shape
        self._start(xs, N)
        self._dtype, self._nt = xs.dtype, (N, T)
        hs = np.empty((N, T, self.H), dtype=xs.dtype)
        self.layers = []
        for t in range(T):
            layer: Any = self.step(*self.params)
            if self.cell:
                self.h, self.c = layer.forward(xs[:, t, :], self.h, self.c)
            else:
                self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs: Array) -> Array:
        """dxs (N, T, D); the step gradients summed over time into ``grads``, and the gradient of the
        state the call started from in ``dh`` (``dc`` for an LSTM's cell state)."""
        if self.layers is None or self._dtype is None:
            raise not_ready(type(self).__name__)
        dhs = _float(dhs)
        N, T = self._nt
        _check_dout(type(self).__name__, "dhs", dhs, (N, T, self.H))
        dxs = np.empty((N, T, self.D), dtype=self._dtype)
        dh = np.zeros((N, self.H), dtype=dhs.dtype)
        dc = np.zeros((N, self.H), dtype=dhs.dtype)
        grads = [np.zeros_like(g) for g in self.grads]
        for t in reversed(range(T)):
            layer = self.layers[t]
            # the step's output feeds both the caller (dhs) and the next step (dh)
            if self.cell:
                dx, dh, dc = layer.backward(dhs[:, t, :] + dh, dc)
            else:
                dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx
            for total, grad in zip(grads, layer.grads, strict=True):
                total += grad
        for own, total in zip(self.grads, grads, strict=True):
            own[...] = total
        self.dh = dh
        self.dc = dc if self.cell else None
        return dxs

    def set_state(self, h: Array) -> None:
        """The state the next forward starts from, when stateful."""
        self.h = h

    def reset_state(self) -> None:
        self.h, self.c = None, None


class TimeRNN(_Time):
    """T steps of ``RNN`` sharing Wx, Wh, b: forward(xs (N, T, D)) -> hs (N, T, H), backward(dhs) -> dxs;
    ``dh`` is the gradient of the state the call started from."""

    step = RNN


class TimeGRU(_Time):
    """T steps of ``GRU`` sharing Wx, Wh, b (columns [z | r | h]); like ``TimeRNN``."""

    step = GRU
    gates = 3


class TimeLSTM(_Time):
    """T steps of ``LSTM`` sharing Wx, Wh, b (columns [f | g | i | o]); like ``TimeRNN``, with the cell
    state c carried beside h (``set_state(h, c=None)``; ``dc`` beside ``dh``)."""

    step = LSTM
    gates = 4
    cell = True

    def set_state(self, h: Array, c: Array | None = None) -> None:
        """The states the next forward starts from, when stateful (c None: zeros)."""
        self.h, self.c = h, c


class TimeBiLSTM(Layer):
    """Two TimeLSTMs over xs, one forwards (Wx1, Wh1, b1) and one over the reversed sequence (Wx2, Wh2,
    b2): forward(xs) -> [hs_forward | hs_backward re-reversed] (N, T, 2H); backward(dhs) -> dxs, the sum of
    both directions'. ``params`` and ``grads`` are the forward LSTM's followed by the backward one's."""

    def __init__(
        self, Wx1: Array, Wh1: Array, b1: Array, Wx2: Array, Wh2: Array, b2: Array, stateful: bool = False
    ) -> None:
        self.forward_lstm = TimeLSTM(Wx1, Wh1, b1, stateful)
        self.backward_lstm = TimeLSTM(Wx2, Wh2, b2, stateful)
        if self.forward_lstm.D != self.backward_lstm.D:
            raise ValueError(
                f"TimeBiLSTM.__init__: Wx1 {np.shape(Wx1)} and Wx2 {np.shape(Wx2)} take inputs of different sizes"
            )
        self._collect(self.forward_lstm, self.backward_lstm)

    def forward(self, xs: Array) -> Array:
        o1 = self.forward_lstm.forward(xs)
        o2 = self.backward_lstm.forward(_float(xs)[:, ::-1])[:, ::-1]
        return np.concatenate((o1, o2), axis=2)

    def backward(self, dhs: Array) -> Array:
        if self.forward_lstm.layers is None:
            raise not_ready("TimeBiLSTM")
        dhs = _float(dhs)
        H = self.forward_lstm.H
        if dhs.ndim != 3 or dhs.shape[2] != 2 * H:
            raise ValueError(f"TimeBiLSTM.backward: dhs must have shape (N, T, {2 * H}), got {dhs.shape}")
        dxs1 = self.forward_lstm.backward(dhs[:, :, :H])
        dxs2 = self.backward_lstm.backward(dhs[:, ::-1, H:])
        return dxs1 + dxs2[:, ::-1]
