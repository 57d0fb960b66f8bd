"""The reference written as the book's computational graph (issue 20): ``runner.nodes`` gives every node's
right value and gradient, each graph gives its row's reference outputs, and the gradients at its nodes are
those the book's backward computes (with its sign conventions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, settings

from backprop.verify import ROWS, Row, examples, get_row, reference_vjp, runner
from backprop.verify.mismatch import Node
from tests.hidden_state import with_hidden_state

RNG_SEED = 20


def _by_name(found: tuple[Node, ...]) -> dict[str, Node]:
    names = [n.name for n in found]
    assert len(set(names)) == len(names), names
    return {n.name: n for n in found}


def test_a_row_without_a_graph_has_its_inputs_and_outputs_as_nodes() -> None:
    row = get_row("sigmoid")
    assert row.graph is None
    rng = np.random.default_rng(RNG_SEED)
    values = {"x": rng.normal(size=(3, 4))}
    dout = rng.normal(size=(3, 4))
    found = _by_name(runner.nodes(row, values, (dout,)))
    assert list(found) == ["out", "x"]
    np.testing.assert_allclose(found["out"].value, 1 / (1 + np.exp(-values["x"])), rtol=1e-15)
    np.testing.assert_array_equal(found["out"].grad, dout)  # an output's gradient is its cotangent
    expected = reference_vjp(row, values, (dout,))
    np.testing.assert_allclose(found["x"].grad, expected.grads["x"].value, rtol=0, atol=1e-12)


def test_a_loss_node_has_gradient_one_and_labels_are_nodes_without_one() -> None:
    row = get_row("softmax_with_loss")
    rng = np.random.default_rng(RNG_SEED)
    values: dict[str, Any] = {"x": rng.normal(size=(4, 3)), "t": np.array([0, 2, 1, 1])}
    found = _by_name(runner.nodes(row, values, (np.float64(1.0),)))
    assert found["loss"].grad == pytest.approx(1.0)
    assert found["t"].grad is None
    np.testing.assert_array_equal(found["t"].value, values["t"])
    expected = reference_vjp(row, values, (np.float64(1.0),))
    np.testing.assert_allclose(found["x"].grad, expected.grads["x"].value, rtol=0, atol=1e-12)


# ---- every graph gives its row's reference, node by node ------------------------------------------------

GRAPHED = [r for r in ROWS if r.graph is not None and not r.graph.__module__.startswith("reference.nlp")]
"""Book 1's graphs (book 2's have their own test, where an output such as ``c_next`` is also consumed by
the graph, so that its gradient is more than its cotangent)."""
COUNT = 3
CLOSE = 1e-12
"""Float64 agreement, relative to the largest magnitude of the compared array (the graph sums in another
order than the reference: im2col and a matrix product against a convolution primitive)."""


def _close(actual: Any, expected: Any, what: str) -> None:
    expected = np.asarray(expected, np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=CLOSE * scale, err_msg=what)


def _drawn(row: Row, count: int = COUNT) -> list[tuple[dict[str, Any], tuple[Any, ...]]]:
    """``count`` examples of the row, the same every run."""
    found: list[tuple[dict[str, Any], tuple[Any, ...]]] = []

    @settings(max_examples=count, derandomize=True, deadline=None, database=None, phases=[Phase.generate])
    @given(example=examples(row))
    def collect(example: Any) -> None:
        found.append((with_hidden_state(row, example.values), example.cotangents))

    collect()
    return found


@pytest.mark.parametrize(
    "row",
    # DeepConvNet compiles a whole 28x28 network twice (graph and reference): 10-20 s, outside the unit tier
    [pytest.param(r, marks=pytest.mark.slow) if r.name == "deep_conv_net" else r for r in GRAPHED],
    ids=[r.name for r in GRAPHED],
)
def test_a_graph_gives_the_reference_outputs_and_input_gradients(row: Row) -> None:
    drawn = _drawn(row)
    assert any(np.any(np.asarray(c) != 0) for _, cotangents in drawn for c in cotangents)  # not vacuous
    for values, cotangents in drawn:
        found = _by_name(runner.nodes(row, values, cotangents))
        expected = reference_vjp(row, values, cotangents)
        for name, output in zip(row.outputs, expected.outputs, strict=True):
            _close(found[name].value, output.value, f"{row.name}: the output {name}")
            _close(
                found[name].grad, cotangents[row.outputs.index(name)], f"{row.name}: the gradient at {name}"
            )
        for arg in row.differentiable:
            grad = expected.grads[arg.name].value
            node = found[arg.name]  # the input, or the node of that name (x as the book reshapes it)
            assert node.grad is not None
            _close(node.grad.reshape(grad.shape), grad, f"{row.name}: the gradient at {arg.name}")
            _close(node.value.reshape(grad.shape), values[arg.name], f"{row.name}: the value of {arg.name}")


# ---- the gradients at the nodes are the book's own backward variables -----------------------------------


def _bn_values(rng: np.random.Generator, shape: tuple[int, ...], train: bool) -> dict[str, Any]:
    d = int(np.prod(shape[1:]))
    return {
        "x": rng.normal(size=shape) * 2.0 + 1.0,
        "gamma": rng.uniform(0.5, 2.0, size=d),
        "beta": rng.normal(size=d),
        "running_mean": rng.normal(size=d),
        "running_var": rng.uniform(0.5, 2.0, size=d),
        "train_flg": train,
    }


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 2, 2)], ids=["2-D", "4-D"])
def test_batch_normalization_nodes_are_the_books_forward_and_backward_variables(
    shape: tuple[int, ...],
) -> None:
    """The book's ``__forward`` and ``__backward`` (common/layers.py), recomputed in NumPy: every variable
    is the value or the gradient at the node of its name, ``dxc`` after its ``+=``; ``dmu`` is MINUS the
    gradient at ``mu`` (the book folds the sign back in ``dx = dxc - dmu / N``), a convention the culprit
    search must allow."""
    rng = np.random.default_rng(RNG_SEED)
    values = _bn_values(rng, shape, train=True)
    dout = rng.normal(size=shape)
    found = _by_name(runner.nodes(get_row("batch_normalization"), values, (dout,)))

    x, gamma, beta = values["x"].reshape(shape[0], -1), values["gamma"], values["beta"]
    mu = x.mean(axis=0)
    xc = x - mu
    var = np.mean(xc**2, axis=0)
    std = np.sqrt(var + 10e-7)
    xn = xc / std
    out = gamma * xn + beta
    for name, value in {"x": x, "mu": mu, "xc": xc, "var": var, "std": std, "xn": xn}.items():
        _close(found[name].value, value, f"the value of {name}")
    _close(found["out"].value.reshape(out.shape), out, "the value of out")

    d = dout.reshape(shape[0], -1)
    n = x.shape[0]
    dbeta = d.sum(axis=0)
    dgamma = np.sum(xn * d, axis=0)
    dxn = gamma * d
    dxc = dxn / std
    dstd = -np.sum((dxn * xc) / (std * std), axis=0)
    dvar = 0.5 * dstd / std
    dxc += (2.0 / n) * xc * dvar
    dmu = np.sum(dxc, axis=0)
    dx = dxc - dmu / n
    book = {"xn": dxn, "xc": dxc, "std": dstd, "var": dvar, "x": dx, "gamma": dgamma, "beta": dbeta}
    for name, grad in book.items():
        _close(found[name].grad, grad, f"the gradient at {name}")
    _close(found["mu"].grad, -dmu, "the gradient at mu is minus the book's dmu")
    assert not np.allclose(found["mu"].grad, dmu)  # the sign is the convention, not a coincidence


def test_batch_normalization_in_test_mode_has_xc_and_xn_and_no_batch_statistics() -> None:
    rng = np.random.default_rng(RNG_SEED)
    values = _bn_values(rng, (4, 3), train=False)
    dout = rng.normal(size=(4, 3))
    found = _by_name(runner.nodes(get_row("batch_normalization"), values, (dout,)))
    assert {"mu", "var", "std"}.isdisjoint(found)
    xc = values["x"] - values["running_mean"]
    std = np.sqrt(values["running_var"] + 10e-7)
    _close(found["xc"].value, xc, "xc")
    _close(found["xn"].value, xc / std, "xn")
    _close(found["xc"].grad, values["gamma"] * dout / std, "the gradient at xc")
    assert found["running_mean"].grad is None and found["running_var"].grad is None


def test_channel_batch_normalization_nodes_are_per_channel_rows() -> None:
    rng = np.random.default_rng(RNG_SEED)
    n, c, h, w = 2, 3, 2, 2
    values = _bn_values(rng, (n, c, h, w), train=True)
    values |= {k: values[k][:c] for k in ("gamma", "beta", "running_mean", "running_var")}
    dout = rng.normal(size=(n, c, h, w))
    found = _by_name(runner.nodes(get_row("channel_batch_normalization"), values, (dout,)))
    rows = values["x"].transpose(0, 2, 3, 1).reshape(-1, c)
    _close(found["rows"].value, rows, "rows")
    _close(found["mu"].value, rows.mean(axis=0), "mu")
    _close(found["rows"].grad.reshape(n, h, w, c).transpose(0, 3, 1, 2), found["x"].grad, "dx")


def test_convolution_nodes_are_the_books_col_col_W_and_2d_out() -> None:
    """The book's Convolution: ``col``, ``col_W``, the 2-D ``out``; its backward's ``dout`` (transposed
    and reshaped to (-1, FN)), ``dW`` before its transpose, and ``dcol`` are the gradients at them."""
    from backprop import im2col

    rng = np.random.default_rng(RNG_SEED)
    x, W, b = rng.normal(size=(2, 2, 4, 4)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    values: dict[str, Any] = {"x": x, "W": W, "b": b, "stride": 1, "pad": 1}
    dout = rng.normal(size=(2, 3, 4, 4))
    found = _by_name(runner.nodes(get_row("convolution"), values, (dout,)))
    col, col_W = im2col(x, 3, 3, 1, 1), W.reshape(3, -1).T
    _close(found["col"].value, col, "col")
    _close(found["col_W"].value, col_W, "col_W")
    _close(found["out (before the transpose)"].value, col @ col_W + b, "out before the transpose")
    d2 = dout.transpose(0, 2, 3, 1).reshape(-1, 3)
    _close(found["out (before the transpose)"].grad, d2, "the book's dout")
    _close(found["col_W"].grad, col.T @ d2, "the book's dW before its transpose")
    _close(found["col"].grad, d2 @ col_W.T, "the book's dcol")
    _close(found["b"].grad, d2.sum(axis=0), "db")


def test_pooling_nodes_are_the_books_col_arg_max_and_dmax() -> None:
    from backprop import im2col

    rng = np.random.default_rng(RNG_SEED)
    x = rng.normal(size=(2, 3, 4, 4))
    values: dict[str, Any] = {"x": x, "pool_h": 2, "pool_w": 2, "stride": 2, "pad": 0}
    dout = rng.normal(size=(2, 3, 2, 2))
    found = _by_name(runner.nodes(get_row("pooling"), values, (dout,)))
    col = im2col(x, 2, 2, 2, 0).reshape(-1, 4)
    arg_max = np.argmax(col, axis=1)
    _close(found["col"].value, col, "col")
    np.testing.assert_array_equal(found["arg_max"].value, arg_max)
    assert found["arg_max"].grad is None  # an index has no gradient
    d = dout.transpose(0, 2, 3, 1)
    dmax = np.zeros((d.size, 4))
    dmax[np.arange(arg_max.size), arg_max] = d.flatten()
    _close(found["col"].grad, dmax, "the book's dmax")
    _close(found["out (before the transpose)"].grad, d.flatten(), "the book's dout, transposed")


def test_softmax_with_loss_y_and_its_gradient_even_where_y_underflows() -> None:
    row = get_row("softmax_with_loss")
    x = np.array([[0.0, 1.0, 2.0], [0.0, -2000.0, 1.0]])
    for t in (np.array([2, 1]), np.eye(3)[[2, 1]]):
        found = _by_name(runner.nodes(row, {"x": x, "t": t}, (np.float64(1.0),)))
        expected = reference_vjp(row, {"x": x, "t": t}, (np.float64(1.0),))
        y = np.exp(x - x.max(axis=1, keepdims=True))
        y /= y.sum(axis=1, keepdims=True)
        _close(found["y"].value, y, "y")
        _close(found["loss"].value, expected.outputs[0].value, "loss: finite where y underflows")
        _close(found["x"].grad, expected.grads["x"].value, "dx: finite where y underflows")
        assert found["y"].grad[0, 2] == pytest.approx(-1 / (2 * y[0, 2]))
        assert found["y"].grad[0, 0] == 0.0 and found["y"].grad[1, 0] == 0.0
        assert found["y"].grad[1, 1] < -1e300  # -1/(N y) where y is 0: as near -inf as a float goes


def test_relu_mask_is_a_node_without_a_gradient() -> None:
    x = np.array([[-1.0, 0.0, 2.0]])
    found = _by_name(runner.nodes(get_row("relu"), {"x": x}, (np.array([[1.0, 2.0, 3.0]]),)))
    np.testing.assert_array_equal(found["mask"].value, [[1.0, 1.0, 0.0]])
    assert found["mask"].grad is None
    np.testing.assert_array_equal(found["x"].grad, [[0.0, 0.0, 3.0]])


# ---- the networks: each layer's nodes under the name the network gives the layer ------------------------


def _layers(found: dict[str, Node]) -> list[str]:
    """The layers whose output is a node, in order."""
    return [name[: -len(".out")] for name in found if name.endswith(".out")]


def test_two_layer_net_nodes_are_its_layers_and_chain_as_its_backward_does() -> None:
    row = get_row("two_layer_net")
    values = _drawn(row, 1)[0][0]
    found = _by_name(runner.nodes(row, values, (np.float64(1.0),)))  # the book's dout = 1
    assert _layers(found) == ["Affine1", "Relu1", "Affine2"]
    assert {"Affine1.x", "Relu1.mask", "lastLayer.y", "lastLayer.loss", "loss", "x", "t"} <= set(found)
    assert {"input_size", "hidden_size", "output_size"}.isdisjoint(found)  # sizes are not nodes
    # Affine2.backward: dx = dout @ W.T, and that dx is the gradient at Relu1's output
    dout = found["Affine2.out"].grad
    assert dout is not None
    _close(found["Relu1.out"].grad, dout @ values["W2"].T, "Affine2's dx is the gradient at Relu1.out")
    _close(found["W2"].grad, found["Affine2.x"].value.T @ dout, "Affine2's dW")
    y, t = found["lastLayer.y"].value, values["t"]
    one_hot = t if t.ndim == 2 else np.eye(y.shape[1])[t]
    _close(dout, (y - one_hot) / y.shape[0], "SoftmaxWithLoss's dx")


@pytest.mark.parametrize(
    ("name", "layers"),
    [
        (
            "multi_layer_net",
            ["Affine1", "Activation_function1", "Affine2", "Activation_function2", "Affine3"],
        ),
        ("simple_conv_net", ["Conv1", "Relu1", "Pool1", "Affine1", "Relu2", "Affine2"]),
    ],
)
def test_network_nodes_are_named_by_the_books_layers(name: str, layers: list[str]) -> None:
    row = get_row(name)
    values, cotangents = _drawn(row, 1)[0]
    found = _by_name(runner.nodes(row, values, cotangents))
    assert _layers(found) == layers
    assert "last_layer.y" in found and "last_layer.loss" in found


def test_multi_layer_net_extend_has_batch_norm_and_dropout_layers_with_their_nodes() -> None:
    row = get_row("multi_layer_net_extend")
    on = [e for e in _drawn(row, 8) if e[0]["use_batchnorm"] and e[0]["use_dropout"]]
    assert on, "no drawn example with batch normalization and dropout both on"
    values, cotangents = on[0]
    found = _by_name(runner.nodes(row, values, cotangents))
    assert _layers(found)[:4] == ["Affine1", "BatchNorm1", "Activation_function1", "Dropout1"]
    assert {"BatchNorm1.mu", "BatchNorm1.xc", "BatchNorm1.var", "BatchNorm1.std", "BatchNorm1.xn"} <= set(
        found
    )
    assert found["mask1"].grad is None


def test_nodes_of_runs_a_graph_eagerly_and_refuses_a_node_tapped_twice() -> None:
    import jax.numpy as jnp

    import reference
    from reference._graph import Tap, nodes_of

    def graph(tap: Tap, x: Any, k: Any) -> Any:
        doubled = tap("doubled", x * 2.0)
        index = tap("index", jnp.argmax(doubled))
        return jnp.sum(doubled**2) + 0 * index

    x = np.array([1.0, -2.0, 3.0])
    with reference.x64():
        held = nodes_of(graph, {"x": x}, {"k": 3}, (np.float64(1.0),))
    assert list(held) == ["doubled", "index", "x"]
    np.testing.assert_array_equal(held["doubled"][0], 2 * x)
    np.testing.assert_array_equal(held["doubled"][1], 4 * x)  # d(sum(d**2))/dd = 2 d
    np.testing.assert_array_equal(held["x"][1], 8 * x)
    assert held["index"][0] == 2 and held["index"][1] is None  # an integer node has no gradient

    def twice(tap: Tap, x: Any) -> Any:
        return tap("y", tap("y", x))

    with reference.x64(), pytest.raises(ValueError, match="taps the node 'y' twice"):
        nodes_of(twice, {"x": x}, {}, (np.ones(3),))
