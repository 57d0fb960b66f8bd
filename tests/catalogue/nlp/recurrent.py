"""The recurrent layers' catalogue: broken RNN, LSTM, GRU and time layers, each with one mistake, and right
ones written in other ways (einsum, per-sample loops, the input projection of every step at once, and the
book's own float32 style).

Each broken class is a right book-style layer (``_Rnn``, ``_Lstm``, ``_Gru``, ``_TimeRnn``...) with one
method overridden.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.catalogue import Array, caught, passes, stable_sigmoid

# ==== right book-style steps (the bases) ================================================================


class _Rnn:
    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache: Any = None

    def forward(self, x: Array, h_prev: Array) -> Array:
        Wx, Wh, b = self.params
        h_next = np.tanh(np.dot(h_prev, Wh) + np.dot(x, Wx) + b)
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        Wx = self.params[0]
        x, h_prev, h_next = self.cache
        dt = dh_next * (1 - h_next**2)
        self.grads[0][...] = np.dot(x.T, dt)
        self.grads[1][...] = np.dot(h_prev.T, dt)
        self.grads[2][...] = dt.sum(axis=0)
        return np.dot(dt, Wx.T), self._dh_prev(dt, dh_next)

    def _dh_prev(self, dt: Array, dh_next: Array) -> Array:
        return np.dot(dt, self.params[1].T)


class _Lstm:
    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache: Any = None

    def forward(self, x: Array, h_prev: Array, c_prev: Array) -> tuple[Array, Array]:
        Wx, Wh, b = self.params
        H = h_prev.shape[1]
        A = np.dot(x, Wx) + np.dot(h_prev, Wh) + b
        f, g = stable_sigmoid(A[:, :H]), np.tanh(A[:, H : 2 * H])
        i, o = stable_sigmoid(A[:, 2 * H : 3 * H]), stable_sigmoid(A[:, 3 * H :])
        c_next = f * c_prev + g * i
        h_next = o * np.tanh(c_next)
        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next

    def backward(self, dh_next: Array, dc_next: Array) -> tuple[Array, Array, Array]:
        Wx, Wh, _ = self.params
        x, h_prev, c_prev, i, f, g, o, c_next = self.cache
        tanh_c = np.tanh(c_next)
        ds = dc_next + (dh_next * o) * (1 - tanh_c**2)
        df = ds * c_prev * f * (1 - f)
        dg = ds * i * (1 - g**2)
        di = ds * g * i * (1 - i)
        do = dh_next * tanh_c * o * (1 - o)
        dA = self._stack(df, dg, di, do)
        self.grads[0][...] = np.dot(x.T, dA)
        self.grads[1][...] = np.dot(h_prev.T, dA)
        self.grads[2][...] = dA.sum(axis=0)
        return np.dot(dA, Wx.T), np.dot(dA, Wh.T), self._dc_prev(ds, f)

    def _stack(self, df: Array, dg: Array, di: Array, do: Array) -> Array:
        return np.hstack((df, dg, di, do))

    def _dc_prev(self, ds: Array, f: Array) -> Array:
        return ds * f


class _Gru:
    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache: Any = None

    def forward(self, x: Array, h_prev: Array) -> Array:
        Wx, Wh, b = self.params
        H = h_prev.shape[1]
        z = stable_sigmoid(np.dot(x, Wx[:, :H]) + np.dot(h_prev, Wh[:, :H]) + b[:H])
        r = stable_sigmoid(np.dot(x, Wx[:, H : 2 * H]) + np.dot(h_prev, Wh[:, H : 2 * H]) + b[H : 2 * H])
        h_hat = np.tanh(np.dot(x, Wx[:, 2 * H :]) + np.dot(r * h_prev, Wh[:, 2 * H :]) + b[2 * H :])
        self.cache = (x, h_prev, z, r, h_hat)
        return (1 - z) * h_prev + z * h_hat

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        Wx, Wh, _ = self.params
        x, h_prev, z, r, h_hat = self.cache
        H = h_prev.shape[1]
        dh_prev = self._direct(dh_next, z)
        dt = dh_next * z * (1 - h_hat**2)
        dhr = np.dot(dt, Wh[:, 2 * H :].T)
        dh_prev = dh_prev + r * dhr
        dtz = dh_next * (h_hat - h_prev) * z * (1 - z)
        dtr = dhr * h_prev * r * (1 - r)
        dh_prev = dh_prev + np.dot(dtz, Wh[:, :H].T) + np.dot(dtr, Wh[:, H : 2 * H].T)
        dx = np.dot(np.hstack((dtz, dtr, dt)), Wx.T)
        self.grads[0][...] = np.dot(x.T, np.hstack((dtz, dtr, dt)))
        self.grads[1][...] = np.hstack(
            (np.dot(h_prev.T, dtz), np.dot(h_prev.T, dtr), np.dot((r * h_prev).T, dt))
        )
        self.grads[2][...] = np.hstack((dtz, dtr, dt)).sum(axis=0)
        return dx, dh_prev

    def _direct(self, dh_next: Array, z: Array) -> Array:
        """The path h_next = (1 - z) h_prev + ...: dh_prev gets dh_next (1 - z)."""
        return dh_next * (1 - z)


# ==== broken steps =======================================================================================


@caught(against="rnn", check="dh_prev", kinds={"value"}, diagnosis="other", why="dh_prev without (1 - h^2)")
class RnnDhPrevMissingTanhDerivative(_Rnn):
    """dh_prev = dh_next Wh^T: the tanh derivative (1 - h_next^2) left out of the way back to h_prev."""

    def _dh_prev(self, dt: Array, dh_next: Array) -> Array:
        return np.dot(dh_next, self.params[1].T)  # BUG


@caught(against="lstm", check="dc_prev", kinds={"value"}, diagnosis="other", why="dc_prev = ds, f missing")
class LstmDcPrevMissingForgetGate(_Lstm):
    """dc_prev = ds: the forget gate f, which scales c_prev in c_next = f c_prev + g i, left out."""

    def _dc_prev(self, ds: Array, f: Array) -> Array:
        return ds.copy()  # BUG


@caught(against="lstm", check="grads[2]", kinds={"value"}, diagnosis="other", why="dA stacked (i, f, g, o)")
class LstmGatesRestacked(_Lstm):
    """dA = hstack((di, df, dg, do)): the gate gradients stacked in the order of the LSTM's usual formula
    (i, f, g, o), not in the order forward sliced them (f, g, i, o)."""

    def _stack(self, df: Array, dg: Array, di: Array, do: Array) -> Array:
        return np.hstack((di, df, dg, do))  # BUG


@caught(
    against="gru", check="dh_prev", kinds={"value"}, diagnosis="other", why="dh_prev's direct term dh_next z"
)
class GruDirectPathUsesZ(_Gru):
    """dh_prev's direct term is dh_next z instead of dh_next (1 - z): the interpolation's weights swapped."""

    def _direct(self, dh_next: Array, z: Array) -> Array:
        return dh_next * z  # BUG


# ==== right book-style time layers (the bases) ===========================================================


class _TimeRnn:
    """The book's TimeRNN, in the input's dtype; subclasses override the step that holds their mistake."""

    step: Any = _Rnn

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers: list[Any] = []
        self.h: Array | None = None
        self.dh: Array | None = None
        self.stateful = stateful

    def forward(self, xs: Array) -> Array:
        N, T, _ = xs.shape
        H = self.params[1].shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=xs.dtype)
        hs = np.empty((N, T, H), dtype=xs.dtype)
        self.layers = []
        h = self.h
        for t in range(T):
            layer = self.step(*self.params)
            h = layer.forward(xs[:, t, :], h)
            hs[:, t, :] = h
            self.layers.append(layer)
        self._keep(h)
        return hs

    def _keep(self, h: Array) -> None:
        self.h = h

    def backward(self, dhs: Array) -> Array:
        N, T, _ = dhs.shape
        D = self.params[0].shape[0]
        dxs = np.empty((N, T, D), dtype=dhs.dtype)
        dh: Any = 0
        grads: list[Any] = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(self._dh_in(dhs[:, t, :], dh))
            dxs[:, t, :] = dx
            self._add(grads, layer.grads)
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs

    def _dh_in(self, dh_t: Array, dh: Any) -> Any:
        return dh_t + dh

    def _add(self, grads: list[Any], step: list[Array]) -> None:
        for i, grad in enumerate(step):
            grads[i] += grad

    def set_state(self, h: Array) -> None:
        self.h = h

    def reset_state(self) -> None:
        self.h = None


class _TimeLstm:
    """The book's TimeLSTM, in the input's dtype."""

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers: list[Any] = []
        self.h: Array | None = None
        self.c: Array | None = None
        self.dh: Array | None = None
        self.stateful = stateful

    def forward(self, xs: Array) -> Array:
        N, T, _ = xs.shape
        H = self.params[1].shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=xs.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=xs.dtype)
        hs = np.empty((N, T, H), dtype=xs.dtype)
        self.layers = []
        for t in range(T):
            layer = _Lstm(*self.params)
            self.h, self.c = layer.forward(xs[:, t, :], self.h, self.c)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs: Array) -> Array:
        N, T, _ = dhs.shape
        dxs = np.empty((N, T, self.params[0].shape[0]), dtype=dhs.dtype)
        dh: Any = 0
        dc: Any = 0
        grads: list[Any] = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh, dc = layer.backward(*self._into_step(dhs[:, t, :], dh, dc))
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs

    def _into_step(self, dh_t: Array, dh: Any, dc: Any) -> tuple[Any, Any]:
        return dh_t + dh, dc

    def set_state(self, h: Array, c: Array | None = None) -> None:
        self.h, self.c = h, c

    def reset_state(self) -> None:
        self.h, self.c = None, None


class _TimeGru(_TimeRnn):
    step = _Gru


# ==== broken time layers =================================================================================


@caught(against="time_rnn", check="grads[2]", kinds={"value"}, diagnosis="other", why="dWx of step 0 only")
class TimeRnnLastStepGrads(_TimeRnn):
    """grads[i] = the step's grads, overwritten at every step instead of summed: dWx, dWh and db come from
    the last step backward visits (t = 0) only."""

    def _add(self, grads: list[Any], step: list[Array]) -> None:
        for i, grad in enumerate(step):
            grads[i] = grad.copy()  # BUG


@caught(against="time_gru", check="grads[2]", kinds={"value"}, diagnosis="other", why="dWx of step 0 only")
class TimeGruLastStepGrads(_TimeGru):
    """As TimeRnnLastStepGrads, in a TimeGRU: the parameter gradients of step 0 only."""

    def _add(self, grads: list[Any], step: list[Array]) -> None:
        for i, grad in enumerate(step):
            grads[i] = grad.copy()  # BUG


@caught(
    against="time_rnn",
    check="hs",
    kinds={"value"},
    diagnosis="other",
    why="stateful, but the state is not carried into the next call",
    or_checks=frozenset({"grads[1]"}),
)
class TimeRnnForgetsState(_TimeRnn):
    """Stateful, but self.h is never moved on: each call starts again from the state set_state gave (or
    zeros), not from where the previous call ended."""

    def _keep(self, h: Array) -> None:
        pass


@caught(
    against="time_lstm",
    check="hs",
    kinds={"stale"},
    diagnosis="stale",
    why="reset_state() keeps the cell state",
)
class TimeLstmResetKeepsCell(_TimeLstm):
    """reset_state() forgets h but keeps the cell state c: a new sequence starts from the old memory."""

    def reset_state(self) -> None:
        self.h = None  # BUG


@caught(against="time_rnn", check="hs", kinds={"stale"}, diagnosis="stale", why="reset_state() does nothing")
class TimeRnnResetDoesNothing(_TimeRnn):
    """reset_state() is there, but empty: a stateful layer carries its state into the next sequence."""

    def reset_state(self) -> None:
        pass


@caught(
    against="time_rnn",
    check="grads[2]",
    # the kept step layers also carry the history past reset_state(), which the derandomized search
    # meets first: after reset_state() backward still runs into the sequence before
    kinds={"value", "stale"},
    diagnosis="stale",
    why="backward runs through the previous call too",
)
class TimeRnnNoTruncation(_TimeRnn):
    """Stateful, and the step layers of the previous call are kept: backward runs through both calls, so
    the gradients (and dh) are those of the whole history, not truncated at the call's first step."""

    def forward(self, xs: Array) -> Array:
        earlier = self.layers if self.stateful else []
        hs = super().forward(xs)
        self.layers = earlier + self.layers
        return hs

    def backward(self, dhs: Array) -> Array:
        N, T, _ = dhs.shape
        D = self.params[0].shape[0]
        dxs = np.empty((N, T, D), dtype=dhs.dtype)
        dh: Any = 0
        grads: list[Any] = [0, 0, 0]
        before = len(self.layers) - T
        for k in reversed(range(len(self.layers))):
            layer = self.layers[k]
            dh_t = dhs[:, k - before, :] if k >= before else 0
            dx, dh = layer.backward(dh_t + dh)
            if k >= before:
                dxs[:, k - before, :] = dx
            self._add(grads, layer.grads)
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs

    def set_state(self, h: Array) -> None:
        self.h, self.layers = h, []  # a new history starts here


@caught(
    against="time_rnn",
    check="dh",
    kinds={"value"},
    diagnosis="other",
    why="dh taken before step 0's backward",
)
class TimeRnnDhBeforeTheStep(_TimeRnn):
    """dh = the gradient reaching step 0's output (dhs[:, 0] plus what step 1 sends back), never passed back
    through step 0 to the state the call started from."""

    def backward(self, dhs: Array) -> Array:
        dxs = super().backward(dhs)
        dh: Any = 0
        for t in reversed(range(1, dhs.shape[1])):  # again, as backward did, up to step 1
            _, dh = self.layers[t].backward(dhs[:, t, :] + dh)
        self.dh = dhs[:, 0, :] + dh
        return dxs


@caught(against="time_lstm", check="grads[2]", kinds={"value"}, diagnosis="other", why="dh not carried back")
class TimeLstmDropsDh(_TimeLstm):
    """Each step gets dhs[:, t] alone: the gradient dh flowing back from step t + 1 is dropped (dc is
    still carried)."""

    def _into_step(self, dh_t: Array, dh: Any, dc: Any) -> tuple[Any, Any]:
        return dh_t, dc  # BUG


@caught(against="time_lstm", check="grads[2]", kinds={"value"}, diagnosis="other", why="dc not carried back")
class TimeLstmDropsDc(_TimeLstm):
    """Each step gets dc_next = 0: the cell state's gradient is not carried back through time."""

    def _into_step(self, dh_t: Array, dh: Any, dc: Any) -> tuple[Any, Any]:
        return dh_t + dh, np.zeros_like(dh_t)  # BUG


class _TimeBiLstm:
    def __init__(
        self, Wx1: Array, Wh1: Array, b1: Array, Wx2: Array, Wh2: Array, b2: Array, stateful: bool = False
    ) -> None:
        self.ahead, self.behind = _TimeLstm(Wx1, Wh1, b1, stateful), _TimeLstm(Wx2, Wh2, b2, stateful)
        self.params = self.ahead.params + self.behind.params
        self.grads = self.ahead.grads + self.behind.grads

    def forward(self, xs: Array) -> Array:
        o1 = self.ahead.forward(xs)
        o2 = self.behind.forward(xs[:, ::-1])[:, ::-1]
        return np.concatenate((o1, o2), axis=2)

    def backward(self, dhs: Array) -> Array:
        H = dhs.shape[2] // 2
        dxs1 = self.ahead.backward(dhs[:, :, :H])
        dxs2 = self.behind.backward(dhs[:, ::-1, H:])
        return dxs1 + self._back_in_order(dxs2)

    def _back_in_order(self, dxs2: Array) -> Array:
        return dxs2[:, ::-1]


@caught(
    against="time_bilstm",
    check="dxs",
    kinds={"value"},
    diagnosis="other",
    why="the backward LSTM's dxs left reversed",
)
class TimeBiLstmDxNotReversed(_TimeBiLstm):
    """The backward LSTM's dxs is added as it comes, in reversed time: it is never flipped back."""

    def _back_in_order(self, dxs2: Array) -> Array:
        return dxs2  # BUG


# ==== right alternatives =================================================================================


@passes(against="rnn", why="a loop over samples, outer products")
class RnnPerSample(_Rnn):
    """Every sample's step on its own, in a Python loop, the gradients accumulated sample by sample."""

    def forward(self, x: Array, h_prev: Array) -> Array:
        Wx, Wh, b = self.params
        h_next = np.stack([np.tanh(h_prev[n] @ Wh + x[n] @ Wx + b) for n in range(x.shape[0])])
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        Wx, Wh, _ = self.params
        x, h_prev, h_next = self.cache
        for grad in self.grads:
            grad[...] = 0
        dx, dh_prev = np.empty_like(x), np.empty_like(h_prev)
        for n in range(x.shape[0]):
            dt = dh_next[n] * (1 - h_next[n] ** 2)
            self.grads[0] += np.outer(x[n], dt)
            self.grads[1] += np.outer(h_prev[n], dt)
            self.grads[2] += dt
            dx[n], dh_prev[n] = Wx @ dt, Wh @ dt
        return dx, dh_prev


@passes(against="lstm", why="gates as an (N, 4, H) array, einsum")
class LstmEinsum(_Lstm):
    """The gates as one (N, 4, H) array: einsum for every product, the gate axis stacked back."""

    def forward(self, x: Array, h_prev: Array, c_prev: Array) -> tuple[Array, Array]:
        Wx, Wh, b = self.params
        N, H = h_prev.shape
        A = (np.einsum("nd,dk->nk", x, Wx) + np.einsum("nh,hk->nk", h_prev, Wh) + b).reshape(N, 4, H)
        f, g, i, o = (
            stable_sigmoid(A[:, 0]),
            np.tanh(A[:, 1]),
            stable_sigmoid(A[:, 2]),
            stable_sigmoid(A[:, 3]),
        )
        c_next = np.einsum("nh,nh->nh", f, c_prev) + g * i
        h_next = o * np.tanh(c_next)
        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next

    def _stack(self, df: Array, dg: Array, di: Array, do: Array) -> Array:
        return np.stack((df, dg, di, do), axis=1).reshape(df.shape[0], -1)


@passes(against="gru", why="one (N, 3H) gradient array, einsum")
class GruEinsum(_Gru):
    """The three pre-activations' gradients as one (N, 3H) array; every product an einsum."""

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        Wx, Wh, _ = self.params
        x, h_prev, z, r, h_hat = self.cache
        H = h_prev.shape[1]
        dt = dh_next * z * (1 - h_hat**2)
        dhr = np.einsum("nk,hk->nh", dt, Wh[:, 2 * H :])
        dtz = dh_next * (h_hat - h_prev) * z * (1 - z)
        dtr = dhr * h_prev * r * (1 - r)
        gates = np.concatenate((dtz, dtr), axis=1)
        dh_prev = dh_next * (1 - z) + r * dhr + np.einsum("nk,hk->nh", gates, Wh[:, : 2 * H])
        every = np.concatenate((gates, dt), axis=1)
        self.grads[0][...] = np.einsum("nd,nk->dk", x, every)
        self.grads[1][...] = np.concatenate(
            (np.einsum("nh,nk->hk", h_prev, gates), np.einsum("nh,nk->hk", r * h_prev, dt)), axis=1
        )
        self.grads[2][...] = np.einsum("nk->k", every)
        return np.einsum("nk,dk->nd", every, Wx), dh_prev


@passes(against="time_rnn", why="no step layers; einsum over time")
class TimeRnnEinsum:
    """The whole sequence without step layers: the states kept in one (N, T + 1, H) array, every product
    an einsum, the parameter gradients summed over time by the einsum itself."""

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h: Array | None = None
        self.dh: Array | None = None
        self.xs: Array | None = None
        self.states: Array | None = None

    def set_state(self, h: Array) -> None:
        self.h = h

    def reset_state(self) -> None:
        self.h = None

    def forward(self, xs: Array) -> Array:
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        states = np.zeros((N, T + 1, Wh.shape[0]), dtype=xs.dtype)
        if self.stateful and self.h is not None:
            states[:, 0] = self.h
        projected = np.einsum("ntd,dh->nth", xs, Wx) + b
        for t in range(T):
            states[:, t + 1] = np.tanh(projected[:, t] + np.einsum("nk,kh->nh", states[:, t], Wh))
        self.xs, self.states = xs, states
        self.h = states[:, T].copy()
        return states[:, 1:].copy()

    def backward(self, dhs: Array) -> Array:
        assert self.xs is not None and self.states is not None
        Wx, Wh, _ = self.params
        hs = self.states[:, 1:]
        dts = np.empty_like(dhs)
        dh = np.zeros_like(dhs[:, 0])
        for t in reversed(range(dhs.shape[1])):
            dts[:, t] = (dhs[:, t] + dh) * (1 - hs[:, t] ** 2)
            dh = np.einsum("nh,kh->nk", dts[:, t], Wh)
        self.grads[0][...] = np.einsum("ntd,nth->dh", self.xs, dts)
        self.grads[1][...] = np.einsum("ntk,nth->kh", self.states[:, :-1], dts)
        self.grads[2][...] = np.einsum("nth->h", dts)
        self.dh = dh
        return np.einsum("nth,dh->ntd", dts, Wx)


@passes(
    against="time_rnn",
    why="the book's dtype='f' buffers, gradients summed from 0: float32 only",
    float64=False,
)
class BookTimeRnnFloat32(_TimeRnn):
    """The book's TimeRNN as printed: hs and the first state allocated with dtype='f', the gradients summed
    from plain 0 and written in place. Right in a float32 run (a float64 run gets float32 back)."""

    def forward(self, xs: Array) -> Array:
        N, T, _ = xs.shape
        H = self.params[1].shape[0]
        hs = np.empty((N, T, H), dtype="f")
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype="f")
        self.layers = []
        for t in range(T):
            layer = _Rnn(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs: Array) -> Array:
        N, T, _ = dhs.shape
        dxs = np.empty((N, T, self.params[0].shape[0]), dtype="f")
        dh: Any = 0
        grads: list[Any] = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs


@passes(against="time_lstm", why="x Wx + b for all steps in one product")
class TimeLstmProjectedOnce(_TimeLstm):
    """x Wx + b for every time step in one matrix product before the loop; each step adds h_prev Wh and
    slices its gates from that; dWx and db summed over time by one product after it."""

    def forward(self, xs: Array) -> Array:
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=xs.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=xs.dtype)
        projected = (xs.reshape(N * T, -1) @ Wx + b).reshape(N, T, 4 * H)
        hs = np.empty((N, T, H), dtype=xs.dtype)
        self.layers = []
        for t in range(T):
            A = projected[:, t] + self.h @ Wh
            f, g = stable_sigmoid(A[:, :H]), np.tanh(A[:, H : 2 * H])
            i, o = stable_sigmoid(A[:, 2 * H : 3 * H]), stable_sigmoid(A[:, 3 * H :])
            c = f * self.c + g * i
            self.layers.append((self.h, self.c, f, g, i, o, c))
            self.h, self.c = o * np.tanh(c), c
            hs[:, t] = self.h
        self.xs = xs
        return hs

    def backward(self, dhs: Array) -> Array:
        Wx, Wh, _ = self.params
        N, T, H = dhs.shape
        dAs = np.empty((N, T, 4 * H), dtype=dhs.dtype)
        dh, dc = np.zeros_like(dhs[:, 0]), np.zeros_like(dhs[:, 0])
        dWh = np.zeros_like(Wh)
        for t in reversed(range(T)):
            h_prev, c_prev, f, g, i, o, c = self.layers[t]
            dh_t, tanh_c = dhs[:, t] + dh, np.tanh(c)
            ds = dc + dh_t * o * (1 - tanh_c**2)
            dA = np.concatenate(
                (
                    ds * c_prev * f * (1 - f),
                    ds * i * (1 - g**2),
                    ds * g * i * (1 - i),
                    dh_t * tanh_c * o * (1 - o),
                ),
                axis=1,
            )
            dAs[:, t] = dA
            dWh += h_prev.T @ dA
            dh, dc = dA @ Wh.T, ds * f
        flat = dAs.reshape(N * T, -1)
        self.grads[0][...] = self.xs.reshape(N * T, -1).T @ flat
        self.grads[1][...] = dWh
        self.grads[2][...] = flat.sum(axis=0)
        self.dh = dh
        return (flat @ Wx.T).reshape(N, T, -1)


@passes(against="time_gru", why="steps run one sample at a time")
class TimeGruPerSample(_TimeGru):
    """A TimeGRU whose steps are book-style GRUs run one sample at a time (a batch of N = 1 each), their
    gradients summed over samples and steps."""

    class step(_Gru):
        def forward(self, x: Array, h_prev: Array) -> Array:
            self.cells = [_Gru(*self.params) for _ in range(x.shape[0])]
            return np.concatenate(
                [c.forward(x[n : n + 1], h_prev[n : n + 1]) for n, c in enumerate(self.cells)]
            )

        def backward(self, dh_next: Array) -> tuple[Array, Array]:
            parts = [c.backward(dh_next[n : n + 1]) for n, c in enumerate(self.cells)]
            for i, grad in enumerate(self.grads):
                grad[...] = sum(c.grads[i] for c in self.cells)
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@passes(against="time_bilstm", why="np.flip and np.split")
class TimeBiLstmFlipped(_TimeBiLstm):
    """np.flip instead of [:, ::-1] slicing, and the two halves of dhs taken with np.split."""

    def forward(self, xs: Array) -> Array:
        return np.concatenate(
            (self.ahead.forward(xs), np.flip(self.behind.forward(np.flip(xs, axis=1)), axis=1)), axis=-1
        )

    def backward(self, dhs: Array) -> Array:
        ahead, behind = np.split(dhs, 2, axis=-1)
        return self.ahead.backward(ahead) + np.flip(self.behind.backward(np.flip(behind, axis=1)), axis=1)
