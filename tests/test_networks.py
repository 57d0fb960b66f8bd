"""The book's networks and optimizers: what their rows do not check (saving, loading, accuracy, the
numerical gradient's promises, the optimizers' formulas)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import backprop
from backprop import (
    SGD,
    AdaGrad,
    Adam,
    DeepConvNet,
    Momentum,
    MultiLayerNet,
    MultiLayerNetExtend,
    SimpleConvNet,
    TwoLayerNet,
    numerical_gradient,
)
from backprop.verify import verify as backprop_verify

SMALL_CONV = {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1}


def _nets() -> list[tuple[Any, tuple[int, ...]]]:
    """Each network, small, with the shape of one input sample."""
    np.random.seed(0)
    return [
        (TwoLayerNet(6, 5, 3, weight_init_std=0.5), (6,)),
        (MultiLayerNet(6, [5, 4], 3, activation="sigmoid", weight_decay_lambda=0.1), (6,)),
        (
            MultiLayerNetExtend(6, [5, 4], 3, use_dropout=True, use_batchnorm=True, weight_decay_lambda=0.1),
            (6,),
        ),
        (SimpleConvNet((1, 6, 6), SMALL_CONV, hidden_size=5, output_size=3, weight_init_std=0.3), (1, 6, 6)),
        (DeepConvNet((1, 8, 8), *(dict(SMALL_CONV, pad=p) for p in (1, 1, 1, 2, 1, 1)), 5, 3), (1, 8, 8)),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(5), ids=["two", "multi", "extend", "simple_conv", "deep_conv"])
def test_gradient_matches_the_numerical_gradient(index: int) -> None:
    net, sample = _nets()[index]
    rng = np.random.default_rng(index)
    x, t = rng.normal(size=(4, *sample)), rng.integers(0, 3, 4)
    for key in [k for k in net.params if k[0] == "b"]:
        # biases start at 0: a padded border's windows would sit exactly on relu's kink, where finite
        # differences average the two sides
        net.params[key] += rng.uniform(0.05, 0.2, size=net.params[key].shape)
    before = {k: v.copy() for k, v in net.params.items()}
    np.random.seed(7)  # dropout's masks: numerical_gradient draws them from the state it finds, every time
    # a step of 1e-6: the book's 1e-4 can cross a pooling near-tie (windows 1e-4 apart are common)
    numeric = net.numerical_gradient(x, t, h=1e-6)
    for key, value in net.params.items():  # restored bit for bit (x + h - h is not x in floating point)
        np.testing.assert_array_equal(value, before[key])
    np.random.seed(7)  # so gradient() draws the same masks
    grads = net.gradient(x, t)
    assert set(grads) == set(net.params)
    for key in net.params:
        np.testing.assert_allclose(grads[key], numeric[key], rtol=1e-4, atol=1e-6, err_msg=key)


def test_save_then_load_gives_identical_predictions(tmp_path: Path) -> None:
    np.random.seed(1)
    net = SimpleConvNet((1, 6, 6), SMALL_CONV, hidden_size=5, output_size=3, weight_init_std=0.3)
    x = np.random.default_rng(0).normal(size=(4, 1, 6, 6))
    path = tmp_path / "params.npz"
    net.save_params(path)
    other = SimpleConvNet((1, 6, 6), SMALL_CONV, hidden_size=5, output_size=3, weight_init_std=0.3)
    assert not np.array_equal(other.predict(x), net.predict(x))
    held = other.params["W1"]
    other.load_params(path)
    np.testing.assert_array_equal(other.predict(x), net.predict(x))
    assert other.params["W1"] is held  # loaded into the arrays the layers hold


def test_a_bad_parameter_file_is_one_clear_error(tmp_path: Path) -> None:
    net = TwoLayerNet(4, 3, 2)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"TwoLayerNet.load_params: .*junk.npz' is not a parameter file"):
        net.load_params(junk)
    with pytest.raises(ValueError, match=r"is not a parameter file"):
        net.load_params(tmp_path / "missing.npz")
    wrong = tmp_path / "wrong.npz"
    TwoLayerNet(4, 5, 2).save_params(wrong)
    with pytest.raises(ValueError, match=r"W1 has shape \(4, 5\) in the file but \(4, 3\) here"):
        net.load_params(wrong)
    fewer = tmp_path / "fewer.npz"
    np.savez(fewer, W1=net.params["W1"])
    with pytest.raises(ValueError, match=r"the file lacks \['W2', 'b1', 'b2'\]"):
        net.load_params(fewer)


def test_accuracy_counts_every_sample_and_reads_one_hot_labels() -> None:
    net = TwoLayerNet(2, 3, 2)
    x = np.random.default_rng(0).normal(size=(150, 2))
    predicted = np.argmax(net.predict(x), axis=1)
    assert net.accuracy(x, predicted, batch_size=100) == 1.0  # the last partial batch counts too
    assert net.accuracy(x, np.eye(2)[predicted]) == 1.0
    assert net.accuracy(x, 1 - predicted) == 0.0


def test_numerical_gradient_leaves_its_argument_alone_and_takes_integers() -> None:
    x = np.array([1.0, 2.0, 3.0])
    seen = []

    def f(v: Any) -> float:
        seen.append(v.copy())
        return float(np.sum(v**2))

    np.testing.assert_allclose(numerical_gradient(f, x), 2 * x, rtol=1e-6)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    ints = np.array([1, 2, 3])
    np.testing.assert_allclose(numerical_gradient(lambda v: float(np.sum(v**2)), ints), [2, 4, 6], rtol=1e-6)
    np.testing.assert_array_equal(ints, [1, 2, 3])

    def fails(v: Any) -> float:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        numerical_gradient(fails, x)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])  # restored even though f raised


def test_bad_network_arguments_are_value_errors_naming_them() -> None:
    with pytest.raises(ValueError, match="activation must be 'relu' or 'sigmoid'"):
        MultiLayerNet(4, [3], 2, activation="tanh")
    with pytest.raises(ValueError, match="weight_init_std must be a number"):
        MultiLayerNet(4, [3], 2, weight_init_std="glorot")
    with pytest.raises(ValueError, match=r"input_dim \(1, 3, 3\) leaves a 1x1 map"):
        SimpleConvNet((1, 3, 3), {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1})


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        (SGD(lr=0.1), [1.0 - 0.1 * 2.0]),
        (Momentum(lr=0.1, momentum=0.9), [1.0 - 0.1 * 2.0]),
        (AdaGrad(lr=0.1), [1.0 - 0.1 * 2.0 / (2.0 + 1e-7)]),
        (Adam(lr=0.1), [1.0 - 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9) * 0.2 / (np.sqrt(0.004) + 1e-7)]),
    ],
    ids=["sgd", "momentum", "adagrad", "adam"],
)
def test_each_optimizer_takes_the_books_first_step_in_place(optimizer: Any, expected: list[float]) -> None:
    for params, grads in (
        ({"W": np.array([1.0])}, {"W": np.array([2.0])}),
        ([np.array([1.0])], [np.array([2.0])]),
    ):
        held = params["W"] if isinstance(params, dict) else params[0]
        type(optimizer).__init__(optimizer, **{"lr": optimizer.lr})
        optimizer.update(params, grads)
        np.testing.assert_allclose(held, expected)


def test_optimizers_check_everything_before_moving_anything() -> None:
    params = {"a": np.array([1.0]), "b": np.array([1.0, 2.0])}
    with pytest.raises(ValueError, match=r"'b' has shape \(2,\) but its gradient \(3,\)"):
        SGD().update(params, {"a": np.array([1.0]), "b": np.zeros(3)})
    np.testing.assert_array_equal(params["a"], [1.0])
    with pytest.raises(ValueError, match="params and grads must both be dicts or both be lists"):
        SGD().update(params, [np.zeros(1)])


def test_training_a_network_lowers_its_loss() -> None:
    np.random.seed(3)
    net = TwoLayerNet(4, 8, 2, weight_init_std=0.5)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4))
    t = (x[:, 0] + x[:, 1] > 0).astype(int)
    first = net.loss(x, t)
    optimizer = backprop.Adam(lr=0.05)
    for _ in range(50):
        optimizer.update(net.params, net.gradient(x, t))
    assert net.loss(x, t) < 0.5 * first
    assert net.accuracy(x, t) > 0.9


@pytest.mark.oracle
def test_the_network_row_catches_a_gradient_that_reuses_the_last_forward_pass() -> None:
    """Training loops call gradient(x, t) with no loss(x, t) before it: a gradient() that backpropagates
    whatever forward pass ran last is wrong there, and the row must say so."""

    class StaleGradient(TwoLayerNet):
        def gradient(self, x: Any, t: Any) -> dict[str, Any]:
            dout = self.last_layer.backward(1)
            for layer in reversed(self.layers.values()):
                dout = layer.backward(dout)
            return {k: getattr(self.layers[name], a).copy() for k, (name, a) in self._grad_of.items()}

    report = backprop_verify(StaleGradient, "two_layer_net", max_examples=30, max_failures=1, scope=False)
    assert not report.passed and report.failure is not None


@pytest.mark.oracle
def test_unhashable_networks_and_the_books_list_of_sizes_are_driven_as_they_are() -> None:
    class Unhashable(TwoLayerNet):
        def __eq__(self, other: object) -> bool:
            return self is other

    class ConcatenatesSizes(MultiLayerNet):  # the book writes [input_size] + hidden_size_list + [output_size]
        def __init__(self, input_size: int, hidden_size_list: list[int], output_size: int, **kw: Any) -> None:
            sizes = [input_size] + hidden_size_list + [output_size]  # noqa: RUF005 - as the book writes it
            assert len(sizes) == len(hidden_size_list) + 2
            super().__init__(input_size, hidden_size_list, output_size, **kw)

    assert backprop_verify(Unhashable, "two_layer_net", max_examples=10).passed
    assert backprop_verify(ConcatenatesSizes, "multi_layer_net", max_examples=10).passed


def test_save_params_writes_exactly_the_name_it_is_given(tmp_path: Path) -> None:
    net = TwoLayerNet(3, 4, 2)
    net.save_params(tmp_path / "weights")
    assert (tmp_path / "weights").exists() and not (tmp_path / "weights.npz").exists()
    TwoLayerNet(3, 4, 2).load_params(tmp_path / "weights")


@pytest.mark.oracle
def test_rounding_that_cancels_exactly_in_the_reference_is_no_false_alarm() -> None:
    """Equal weights give equal logits, so the gradient reaching every hidden layer cancels exactly in the
    reference (it is 0.0 there, and so is its run on absolute values), while NumPy's order of summation
    leaves ~1e-12 after five convolutions: judged against the largest gradient of the network, that is
    rounding, not a wrong gradient (a hypothesis run found this false alarm on the library's own net)."""
    from backprop.verify.oracle import check_example
    from backprop.verify.registry import get_row
    from backprop.verify.report import Example

    row = get_row("deep_conv_net")
    entry = max(row.shapes, key=lambda e: e["x"][0])  # a batch of several samples, as when it was found
    values: dict[str, Any] = {a.name: a.fixed(entry) for a in row.args if a.fixed is not None}
    for arg in row.placed("params"):
        fill = 0.0 if arg.name in ("W1", "W2", "W3") else 2.0 if arg.name in ("W7", "W8") else 1.0
        values[arg.name] = np.full(entry[arg.name], fill)
    values["x"] = np.linspace(-1.0, 1.0, int(np.prod(entry["x"]))).reshape(entry["x"])
    values["t"] = np.zeros(entry["t"], dtype=np.int64)
    drawn = Example(row=row.name, dtype="float64", values=values, cotangents=(0.0,))
    check_example(row, DeepConvNet, drawn)
