"""The book-2 graphs (``reference.nlp.*_graph``, issue 20): each is its row's reference again, written as
the book's forward pass with every node named, so that the culprit search knows the right value of every
node and the right gradient at it.

Checked here in float64: a graph's outputs and the gradients at the differentiated inputs equal the row's
reference's; the book's own backward, recomputed in NumPy from the node values, gives the node gradients
line by line (LSTM, GRU, RNN, the time loops, attention, negative sampling, the softmax loss), and where a
line of the book holds something else than a node's gradient (a partial sum, an unsummed broadcast, a
product before the division by N) the test says so and checks what it holds instead.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import pytest

import reference
from backprop.verify import ROWS, Row, get_row
from backprop.verify.specs.nlp.negative_sampling import NEGATIVES
from reference._graph import nodes_of
from reference.nlp import layers as ref_layers

Nodes = dict[str, tuple[Any, Any]]

GRAPHED = [r for r in ROWS if r.graph is not None and r.graph.__module__.startswith("reference.nlp")]

EXPECTED = {
    "rnn",
    "lstm",
    "gru",
    "time_rnn",
    "time_lstm",
    "time_gru",
    "time_bilstm",
    "weight_sum",
    "attention_weight",
    "attention",
    "time_attention",
    "sigmoid_with_loss",
    "embedding_dot",
    "negative_sampling_loss",
    "time_affine",
    "time_softmax_with_loss",
    "time_sigmoid_with_loss",
    "time_embedding",
    "softmax",
    "embedding",
    "simple_rnnlm",
    "rnnlm",
    "cbow",
    "skip_gram",
}


def close(actual: Any, expected: Any) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=1e-12, atol=1e-12 * scale)


# ---- examples ---------------------------------------------------------------------------------------------


def _integers(row: Row, name: str, shapes: Mapping[str, tuple[int, ...]], rng: np.random.Generator) -> Any:
    """The row's integer arguments: word ids below V, labels (-1 ignored, or one-hot), binary targets."""
    shape = shapes.get(name, ())
    if name == "dtype":
        return "float64"
    if "vocab_size" in shapes:  # a model's word ids
        return rng.integers(0, shapes["vocab_size"][0], size=shape)
    if name in ("idx", "target", "negative_sample") or (name == "xs" and "W" in shapes):
        return rng.integers(0, shapes["W"][0], size=shape)
    if name == "corpus":
        return np.arange(shape[0]) % shapes["W"][0]
    if row.name == "time_softmax_with_loss":
        n, t, v = shapes["xs"]
        if shape == (n, t, v):
            return np.eye(v)[rng.integers(0, v, size=(n, t))]
        labels = rng.integers(-1, v, size=(n, t))
        labels.flat[0] = 0  # one label kept at least
        return labels
    return rng.integers(0, 2, size=shape)  # binary targets


def example(row: Row, entry: int, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """(differentiated inputs, the other values, cotangents) for the row's pool entry ``entry``: floats in
    [-2, 2] (moderate: no gate saturates), integers as the row draws them."""
    pool = row.shapes
    assert isinstance(pool, tuple)
    shapes = pool[entry]
    rng = np.random.default_rng(seed)
    values: dict[str, Any] = {}
    for arg in row.args:
        if arg.fixed is not None:
            values[arg.name] = arg.fixed(shapes)
        elif arg.is_float:
            values[arg.name] = rng.uniform(-2.0, 2.0, size=shapes[arg.name])
        else:
            values[arg.name] = _integers(row, arg.name, shapes, rng)
    if NEGATIVES in shapes:  # the words the layer draws, which the row captures after forward
        values[NEGATIVES] = _integers(row, NEGATIVES, shapes, rng)
    if row.name in ("cbow", "skip_gram"):  # (negative-sampling layers, N, 5), captured likewise
        layers = 1 if row.name == "cbow" else shapes["contexts"][1]
        values["negatives"] = rng.integers(0, shapes["vocab_size"][0], size=(layers, shapes["target"][0], 5))
    diff = {a.name: values.pop(a.name) for a in row.differentiable}
    cots = [rng.normal(size=shapes[o]) for o in row.outputs]
    return diff, values, cots


ENTRY: dict[str, int] = {"time_attention": 7}
"""The pool entry each row is checked on in the unit tier (3 by default: N, T and H of 2 to 4). Each new
shape costs a second or two of JAX compiling its operations one by one, so the unit tier checks one
entry per row, every test on that row the same one; the slow tier sweeps three."""


def entry_of(row: Row) -> int:
    return ENTRY.get(row.name, 3)


def entries(row: Row) -> list[int]:
    """Three entries of the pool: a small one, a middle one, the last (a large or an ALIGNED one)."""
    pool = row.shapes
    assert isinstance(pool, tuple)
    return sorted({1 % len(pool), len(pool) // 2, len(pool) - 1})


class Run(NamedTuple):
    nodes: Nodes
    outputs: tuple[Any, ...]
    """The graph's outputs."""
    reference: tuple[Any, ...]
    """The reference's outputs."""
    grads: dict[str, Any]
    """The reference's gradients at the differentiated inputs."""
    diff: dict[str, Any]
    consts: dict[str, Any]
    cots: list[Any]


@functools.cache
def run(row: Row, entry: int) -> Run:
    """The nodes of the row's graph on the pool entry's example, and its reference's outputs and gradients;
    held for the other tests of the row (none changes them)."""
    diff, consts, cots = example(row, entry)
    names = list(diff)
    single = len(row.outputs) == 1
    assert row.graph is not None
    with reference.x64():
        nodes = nodes_of(row.graph, diff, consts, cots)
        plain = row.graph(lambda name, value: value, **diff, **consts)

        def f(*primals: Any) -> Any:
            return row.reference(**dict(zip(names, primals, strict=True)), **consts)

        out, pullback = jax.vjp(f, *diff.values())
        grads = pullback(cots[0] if single else tuple(cots))
    return Run(
        nodes,
        (plain,) if single else tuple(plain),
        (out,) if single else tuple(out),
        dict(zip(names, grads, strict=True)),
        diff,
        consts,
        cots,
    )


def test_every_book2_row_with_a_multi_line_backward_has_its_graph() -> None:
    assert {r.name for r in GRAPHED} == EXPECTED


def check_against_reference(row: Row, entry: int) -> None:
    held = run(row, entry)
    for got, want in zip(held.outputs, held.reference, strict=True):
        close(got, want)
    for name in held.diff:
        value, grad = held.nodes[name]
        close(value, held.diff[name])
        close(grad, held.grads[name])
    for name, (value, grad) in held.nodes.items():  # every node has a value and a gradient of its shape
        assert np.shape(grad) == np.shape(value), name
        assert np.all(np.isfinite(value)), name
        assert np.all(np.isfinite(grad)), name  # moderate values: no probability rounds to 0


@pytest.mark.parametrize("row", GRAPHED, ids=lambda r: r.name)
def test_graph_outputs_and_input_gradients_equal_the_reference(row: Row) -> None:
    check_against_reference(row, entry_of(row))


@pytest.mark.slow
@pytest.mark.parametrize("row", GRAPHED, ids=lambda r: r.name)
def test_graph_equals_the_reference_across_the_pool(row: Row) -> None:
    for entry in entries(row):
        check_against_reference(row, entry)


@pytest.mark.parametrize("row", GRAPHED, ids=lambda r: r.name)
def test_the_graph_taps_its_outputs_under_the_books_names(row: Row) -> None:
    held = run(row, entry_of(row))
    named = {"time_bilstm": ("out",)}.get(row.name, row.outputs)  # the book's TimeBiLSTM returns ``out``
    for name, got in zip(named, held.outputs, strict=True):
        close(held.nodes[name][0], got)


# ---- the book's backward, line by line --------------------------------------------------------------------


def _row_nodes(name: str, entry: int | None = None) -> tuple[Nodes, dict[str, Any], list[Any]]:
    row = get_row(name)
    held = run(row, entry_of(row) if entry is None else entry)
    return held.nodes, {**held.diff, **held.consts}, held.cots


def V(nodes: Nodes, name: str) -> Any:
    return nodes[name][0]


def G(nodes: Nodes, name: str) -> Any:
    return nodes[name][1]


def test_rnn_book_backward() -> None:
    nodes, x, (dh_next,) = _row_nodes("rnn")
    h_next = V(nodes, "h_next")
    close(h_next, np.tanh(V(nodes, "t")))
    dt = dh_next * (1 - h_next**2)
    close(dt, G(nodes, "t"))
    close(np.dot(dt, x["Wh"].T), G(nodes, "h_prev"))
    close(np.dot(x["x"].T, dt), G(nodes, "Wx"))


def _lstm_book_backward(nodes: Nodes, at: str, dh_next: Any, dc_next: Any, Wx: Any, Wh: Any) -> Any:
    """The book's LSTM.backward from the node values of step ``at`` (``""`` or ``layers[t].``), each line
    checked against the node gradient it computes; returns (dx, dh_prev, dc_prev, dWx)."""
    x, h_prev, c_prev = (V(nodes, at + n) for n in ("x", "h_prev", "c_prev"))
    i, f, g, o, c_next = (V(nodes, at + n) for n in ("i", "f", "g", "o", "c_next"))
    close(dh_next, G(nodes, at + "h_next"))

    tanh_c_next = np.tanh(c_next)
    close(tanh_c_next, V(nodes, at + "tanh_c_next"))
    ds = dc_next + (dh_next * o) * (1 - tanh_c_next**2)
    close(ds, G(nodes, at + "c_next"))  # ds: the total gradient at c_next
    dc_prev = ds * f
    close(dc_prev, G(nodes, at + "c_prev"))

    di = ds * g
    df = ds * c_prev
    do = dh_next * tanh_c_next
    dg = ds * i
    for d, n in ((di, "i"), (df, "f"), (do, "o"), (dg, "g")):  # the gradients at the gates
        close(d, G(nodes, at + n))

    di *= i * (1 - i)
    df *= f * (1 - f)
    do *= o * (1 - o)
    dg *= 1 - g**2
    for d, n in ((df, "A[:, :H]"), (dg, "A[:, H:2*H]"), (di, "A[:, 2*H:3*H]"), (do, "A[:, 3*H:]")):
        close(d, G(nodes, at + n))  # after the in-place products: the gradients at the pre-activations

    dA = np.hstack((df, dg, di, do))
    close(dA, G(nodes, at + "A"))
    dWh = np.dot(h_prev.T, dA)
    dWx = np.dot(x.T, dA)
    db = dA.sum(axis=0)
    close(dWh, G(nodes, at + "Wh"))
    close(dWx, G(nodes, at + "Wx"))
    close(db, G(nodes, at + "b"))
    dx = np.dot(dA, Wx.T)
    dh_prev = np.dot(dA, Wh.T)
    close(dx, G(nodes, at + "x"))
    close(dh_prev, G(nodes, at + "h_prev"))
    return dx, dh_prev, dc_prev, dWx


def test_lstm_book_backward_gives_every_node_gradient() -> None:
    """Every gradient the book's LSTM.backward computes is the gradient at a node, with no convention:
    ds at c_next, dc_prev at c_prev, di, df, do, dg first at the gates and then, after ``*=``, at the
    slices of A, dA at A."""
    nodes, x, (dh_next, dc_next) = _row_nodes("lstm")
    _lstm_book_backward(nodes, "", dh_next, dc_next, x["Wx"], x["Wh"])


def test_time_lstm_book_backward_through_every_step() -> None:
    """The book's TimeLSTM.backward: step t's backward gets ``dhs[:, t, :] + dh``, the total gradient at
    ``layers[t].h_next``, and returns dh and dc, the gradients at ``layers[t].h_prev`` and ``c_prev``,
    which are that step's share only (the gradient at ``layers[t - 1].h_next`` adds dhs[:, t - 1]). The
    per-step grads are the gradients at ``layers[t].Wx``; their sum is dWx, and the last dh the layer's."""
    nodes, x, (dhs,) = _row_nodes("time_lstm")
    T = dhs.shape[1]
    dh, dc, dWx = 0, 0, 0
    for t in reversed(range(T)):
        at = f"layers[{t}]."
        _, dh, dc, step_dWx = _lstm_book_backward(nodes, at, dhs[:, t, :] + dh, dc, x["Wx"], x["Wh"])
        dWx = dWx + step_dWx
        if t:
            close(dhs[:, t - 1, :] + dh, G(nodes, f"layers[{t - 1}].h_next"))
    close(dWx, G(nodes, "Wx"))
    close(dh, G(nodes, "h"))


def test_gru_book_backward() -> None:
    """The book's GRU.backward: dh_hat, dz, dr and dhr are the gradients at h_hat, z, r and r * h_prev,
    and each ``dt`` the gradient at its pre-activation (th, tz, tr). dh_prev is a partial sum until its
    last ``+=`` (convention): first the direct path alone, dh_next (1 - z), then plus r * dhr; only the
    last value (after both gates' terms) is the gradient at h_prev."""
    nodes, vals, (dh_next,) = _row_nodes("gru")
    x, h_prev, Wx, Wh = vals["x"], vals["h_prev"], vals["Wx"], vals["Wh"]
    z, r, h_hat = V(nodes, "z"), V(nodes, "r"), V(nodes, "h_hat")
    H = Wh.shape[0]
    Wxz, Wxr, Wxh = Wx[:, :H], Wx[:, H : 2 * H], Wx[:, 2 * H :]
    Whz, Whr, Whh = Wh[:, :H], Wh[:, H : 2 * H], Wh[:, 2 * H :]

    dh_hat = dh_next * z
    close(dh_hat, G(nodes, "h_hat"))
    dh_prev = dh_next * (1 - z)  # the direct path only: a partial sum

    dt = dh_hat * (1 - h_hat**2)
    close(dt, G(nodes, "th"))
    close(np.dot(x.T, dt), G(nodes, "Wx")[:, 2 * H :])
    dWhh = np.dot((r * h_prev).T, dt)
    close(dWhh, G(nodes, "Wh")[:, 2 * H :])
    dhr = np.dot(dt, Whh.T)
    close(dhr, G(nodes, "r * h_prev"))
    dx = np.dot(dt, Wxh.T)
    dh_prev += r * dhr

    dz = dh_next * h_hat - dh_next * h_prev
    close(dz, G(nodes, "z"))
    dt = dz * z * (1 - z)
    close(dt, G(nodes, "tz"))
    close(np.dot(x.T, dt), G(nodes, "Wx")[:, :H])
    dh_prev += np.dot(dt, Whz.T)
    dx += np.dot(dt, Wxz.T)

    dr = dhr * h_prev
    close(dr, G(nodes, "r"))
    dt = dr * r * (1 - r)
    close(dt, G(nodes, "tr"))
    close(np.dot(x.T, dt), G(nodes, "Wx")[:, H : 2 * H])
    partial = dh_prev.copy()
    dh_prev += np.dot(dt, Whr.T)
    dx += np.dot(dt, Wxr.T)

    close(dh_prev, G(nodes, "h_prev"))
    close(dx, G(nodes, "x"))
    assert not np.allclose(partial, G(nodes, "h_prev"))  # the partial sums are not the node gradient


def test_time_rnn_book_backward_conventions() -> None:
    """TimeRNN: the step's dh_next is ``dhs[:, t, :] + dh`` (the gradient at ``layers[t].h_next``), the dh
    it returns the gradient at ``layers[t].h_prev``; the step's dx fills ``dxs[:, t, :]``."""
    nodes, vals, (dhs,) = _row_nodes("time_rnn")
    dh = 0
    for t in reversed(range(dhs.shape[1])):
        at = f"layers[{t}]."
        dh_next = dhs[:, t, :] + dh
        close(dh_next, G(nodes, at + "h_next"))
        dt = dh_next * (1 - V(nodes, at + "h_next") ** 2)
        close(dt, G(nodes, at + "t"))
        dh = np.dot(dt, vals["Wh"].T)
        close(dh, G(nodes, at + "h_prev"))
        close(np.dot(dt, vals["Wx"].T), G(nodes, "xs")[:, t, :])
    close(dh, G(nodes, "h"))


def test_time_gru_steps_share_the_weights() -> None:
    """The per-step gradients at ``layers[t].Wx`` (each step's grads) sum to the gradient at Wx."""
    nodes, _, _ = _row_nodes("time_gru")
    steps = [n for n in nodes if n.endswith("].Wx")]
    assert len(steps) >= 2
    close(sum(G(nodes, n) for n in steps), G(nodes, "Wx"))


def test_weight_sum_book_backward() -> None:
    """dt and dhs are the gradients at t and hs. dar is the gradient at ar unsummed (convention: the book
    broadcasts ar over H and keeps dar (N, T, H)); its sum over H is the gradient at ar, and da."""
    nodes, vals, (dc,) = _row_nodes("weight_sum")
    hs = vals["hs"]
    N, T, H = hs.shape
    ar = V(nodes, "ar")
    dt = dc.reshape(N, 1, H).repeat(T, axis=1)
    close(dt, G(nodes, "t"))
    dar = dt * hs
    close(dar.sum(axis=2, keepdims=True), G(nodes, "ar"))
    close(dt * ar, G(nodes, "hs"))
    close(np.sum(dar, axis=2), G(nodes, "a"))


def _attention_weight_backward(nodes: Nodes, at: str, da: Any) -> tuple[Any, Any]:
    """The book's AttentionWeight.backward (its Softmax's too), checked against the nodes under ``at``.
    The Softmax's ``dx = self.out * dout`` is a partial product (convention), not a node gradient; ds is
    the gradient at s. dhr is the gradient at hr unsummed over T (convention); dh is its sum."""
    hs, hr, a = V(nodes, at + "hs"), V(nodes, at + "hr"), V(nodes, at + "a")
    N, T, H = hs.shape
    close(da, G(nodes, at + "a"))
    dx = a * da
    sumdx = np.sum(dx, axis=1, keepdims=True)
    dx -= a * sumdx
    ds = dx
    close(ds, G(nodes, at + "s"))
    dt = ds.reshape(N, T, 1).repeat(H, axis=2)
    close(dt, G(nodes, at + "t"))
    dhs = dt * hr
    close(dhs, G(nodes, at + "hs"))
    dhr = dt * hs
    close(dhr.sum(axis=1, keepdims=True), G(nodes, at + "hr"))
    dh = np.sum(dhr, axis=1)
    close(dh, G(nodes, at + "h"))
    return dhs, dh


def test_attention_weight_book_backward() -> None:
    nodes, _, (da,) = _row_nodes("attention_weight")
    _attention_weight_backward(nodes, "", da)


def test_attention_book_backward() -> None:
    """Attention: weight_sum_layer's backward gives dhs0 (the gradient at ``weight_sum_layer.hs``) and da
    (at ``weight_sum_layer.a``, which is ``attention_weight_layer.a``); attention_weight_layer's gives
    dhs1 and dh; dhs = dhs0 + dhs1 is the gradient at hs."""
    nodes, vals, (dout,) = _row_nodes("attention")
    hs = vals["hs"]
    N, T, H = hs.shape
    dt = dout.reshape(N, 1, H).repeat(T, axis=1)
    dhs0 = dt * V(nodes, "weight_sum_layer.ar")
    close(dhs0, G(nodes, "weight_sum_layer.hs"))
    da = np.sum(dt * hs, axis=2)
    close(da, G(nodes, "weight_sum_layer.a"))
    dhs1, dh = _attention_weight_backward(nodes, "attention_weight_layer.", da)
    close(dhs0 + dhs1, G(nodes, "hs"))
    close(dh, G(nodes, "h"))


def test_time_attention_sums_each_steps_dhs() -> None:
    """TimeAttention: ``dhs_enc += dhs`` over the steps, each step's dhs the gradient at ``layers[t].hs``;
    ``dhs_dec[:, t, :] = dh``, the gradient at ``layers[t].h``."""
    nodes, _, (dout,) = _row_nodes("time_attention")
    T = dout.shape[1]
    close(sum(G(nodes, f"layers[{t}].hs") for t in range(T)), G(nodes, "hs_enc"))
    for t in range(T):
        close(G(nodes, f"layers[{t}].h"), G(nodes, "hs_dec")[:, t, :])
        close(dout[:, t, :], G(nodes, f"layers[{t}].out"))


def test_negative_sampling_book_backward() -> None:
    """NegativeSamplingLoss: for each k, loss_layers[k]'s ``dx = (y - t) * dout / batch_size`` is the
    gradient at ``embed_dot_layers[k].out`` (the book's score); embed_dot_layers[k]'s ``dtarget_W`` and
    ``dh`` are the gradients at its target_W and its h (that layer's share; the book's ``dh +=`` sums
    them into the gradient at h). The gradient at each ``loss_layers[k].y`` is -1 / (N y) for the target
    and 1 / (N (1 - y)) for a negative, which the book's backward never forms."""
    nodes, vals, (dout,) = _row_nodes("negative_sampling_loss")
    h = vals["h"]
    N, K = h.shape[0], vals["negative_sample"].shape[1] + 1
    dh = 0
    for k in range(K):
        label = 1.0 if k == 0 else 0.0
        y = V(nodes, f"loss_layers[{k}].y")
        close(y, 1 / (1 + np.exp(-V(nodes, f"embed_dot_layers[{k}].out"))))
        close((-1 / (N * y) if k == 0 else 1 / (N * (1 - y))) * dout, G(nodes, f"loss_layers[{k}].y"))
        dscore = (y - label) * dout / N
        close(dscore, G(nodes, f"embed_dot_layers[{k}].out"))
        dscore = dscore.reshape(N, 1)
        dtarget_W = dscore * h
        close(dtarget_W, G(nodes, f"embed_dot_layers[{k}].target_W"))
        dh_k = dscore * V(nodes, f"embed_dot_layers[{k}].target_W")
        close(dh_k, G(nodes, f"embed_dot_layers[{k}].h"))
        dh = dh + dh_k
    close(dh, G(nodes, "h"))
    close(sum(G(nodes, f"embed_dot_layers[{k}].W") for k in range(K)), G(nodes, "W"))


def test_time_softmax_with_loss_book_backward() -> None:
    """TimeSoftmaxWithLoss: ``dx = ys; dx[arange, ts] -= 1`` holds mask.sum() / dout times the gradient at
    the kept rows of xs (convention: a product before the division), which ``dx *= dout; dx /=
    mask.sum(); dx *= mask`` makes the gradient at xs (reshaped to (N*T, V), as the book does)."""
    row = get_row("time_softmax_with_loss")
    for entry in (3, 4):  # labels with -1, one-hot targets
        nodes, vals, (dout,) = _row_nodes(row.name, entry)
        xs, ts = vals["xs"], vals["ts"]
        N, T, V_ = xs.shape
        ts = ts.argmax(axis=2) if ts.ndim == 3 else ts
        mask = (ts != -1).reshape(N * T)
        ts = ts.reshape(N * T)
        ys = V(nodes, "ys")
        e = np.exp(xs.reshape(N * T, V_) - xs.reshape(N * T, V_).max(axis=1, keepdims=True))
        close(ys, e / e.sum(axis=1, keepdims=True))
        dx = ys.copy()
        dx[np.arange(N * T), ts] -= 1
        grad = G(nodes, "xs").reshape(N * T, V_)
        close((dx * mask[:, None]) * dout / mask.sum(), grad)
        dx *= dout
        dx /= mask.sum()
        dx *= mask[:, np.newaxis]
        close(dx, grad)
        picked = G(nodes, "ys")[np.arange(N * T), ts]
        close(picked[mask], -dout / (mask.sum() * ys[np.arange(N * T), ts][mask]))
        close(G(nodes, "ls"), np.full(N * T, -dout / mask.sum()))


def test_a_saturated_probability_node_has_no_number_for_a_gradient() -> None:
    """Where the book's y rounds to 1 for a negative label, log(1 - y) is -inf: the loss, the gradient at
    x and everything before it stay the stable reference's, and the gradient at y is NaN (it matches no
    array), never a finite number that could vouch for a wrong one."""
    x = np.array([800.0, -3.0, 0.5])
    t = np.array([0, 1, 1])
    with reference.x64():
        nodes = nodes_of(ref_layers.sigmoid_with_loss_graph, {"x": x}, {"t": t}, [np.float64(1.0)])
        loss, pullback = jax.vjp(lambda x: ref_layers.sigmoid_with_loss(x, t), x)
        (dx,) = pullback(np.float64(1.0))
    close(V(nodes, "loss"), loss)
    close(G(nodes, "x"), dx)
    assert np.isnan(G(nodes, "y")[0])
    close(G(nodes, "y")[1:], -1 / (3 * V(nodes, "y")[1:]))


def test_rnnlm_nodes_are_its_layers_nodes() -> None:
    """Rnnlm: the loss layer's xs is the affine layer's out, the recurrent layer's hs the affine layer's x;
    the embedding's per-step W (each step layer's grads[0]) sum to the gradient at embed_W."""
    nodes, _, _ = _row_nodes("rnnlm")
    close(V(nodes, "loss_layer.xs"), V(nodes, "layers[2].out"))
    close(G(nodes, "loss_layer.xs"), G(nodes, "layers[2].out"))
    close(G(nodes, "layers[1].hs"), G(nodes, "layers[2].x"))
    steps = [n for n in nodes if n.startswith("layers[0].layers[") and n.endswith("].W")]
    assert len(steps) >= 2
    close(sum(G(nodes, n) for n in steps), G(nodes, "embed_W"))
    assert "layers[1].layers[1].c_next" in nodes


def test_cbow_book_backward() -> None:
    """CBOW: ``dh = self.ns_loss.backward(dout)`` is the gradient at h (``ns_loss.h``); ``dh *= 1 /
    len(self.in_layers)`` is then the gradient at each ``in_layers[i].out``."""
    nodes, vals, _ = _row_nodes("cbow")
    count = vals["contexts"].shape[1]
    close(G(nodes, "ns_loss.h"), G(nodes, "h"))
    for i in range(count):
        close(G(nodes, "h") * (1 / count), G(nodes, f"in_layers[{i}].out"))
