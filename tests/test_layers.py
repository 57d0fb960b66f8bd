"""Hand-checked forward/backward values, shapes, dtypes and error paths for every layer."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import backprop
from backprop import (
    AddLayer,
    Affine,
    BackwardBeforeForwardError,
    MulLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)

F32 = np.float32


# ================================================================ public API


def test_public_names() -> None:
    expected = {
        "MulLayer",
        "AddLayer",
        "Relu",
        "Sigmoid",
        "Affine",
        "SoftmaxWithLoss",
        "Dropout",
        "BatchNormalization",
        "ChannelBatchNormalization",
        "softmax",
        "log_softmax",
        "cross_entropy_error",
        "sigmoid",
        "BackwardBeforeForwardError",
        "Convolution",
        "Pooling",
        "Im2col",
        "Col2im",
        "im2col",
        "col2im",
        "TwoLayerNet",
        "MultiLayerNet",
        "MultiLayerNetExtend",
        "SimpleConvNet",
        "DeepConvNet",
        "SGD",
        "Momentum",
        "AdaGrad",
        "Adam",
        "numerical_gradient",
    }
    assert set(backprop.__all__) == expected
    assert all(hasattr(backprop, name) for name in expected)
    assert issubclass(BackwardBeforeForwardError, RuntimeError)


def test_import_pulls_in_numpy_only() -> None:
    code = (
        "import sys, backprop; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'jaxlib', 'hypothesis', 'rich'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ================================================================ MulLayer


def test_mul_python_scalars_keep_python_arithmetic() -> None:
    layer = MulLayer()
    assert layer.forward(100, 2) == 200
    dx, dy = layer.backward(1.1)
    assert (dx, dy) == (1.1 * 2, 1.1 * 100)
    tax = MulLayer()
    tax.forward(200, 1.1)
    _, dtax = tax.backward(1)
    assert type(dtax) is int
    assert dtax == 200


def test_mul_hand_example_and_book_attributes() -> None:
    layer = MulLayer()
    x, y = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    np.testing.assert_array_equal(layer.forward(x, y), [4.0, 10.0, 18.0])
    assert layer.x is x
    assert layer.y is y
    dx, dy = layer.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(dx, [4.0, 10.0, 18.0])  # dout * y
    np.testing.assert_array_equal(dy, [1.0, 4.0, 9.0])  # dout * x


def test_mul_broadcast_column_times_row() -> None:
    layer = MulLayer()
    x = np.array([[1.0], [2.0], [3.0]])  # (3, 1)
    y = np.array([[10.0, 20.0, 30.0, 40.0]])  # (1, 4)
    assert layer.forward(x, y).shape == (3, 4)
    dx, dy = layer.backward(np.ones((3, 4)))
    assert dx.shape == (3, 1)
    assert dy.shape == (1, 4)
    np.testing.assert_array_equal(dx, [[100.0], [100.0], [100.0]])  # 10 + 20 + 30 + 40
    np.testing.assert_array_equal(dy, [[6.0, 6.0, 6.0, 6.0]])  # 1 + 2 + 3


def test_mul_broadcast_vector_against_3d() -> None:
    layer = MulLayer()
    x = np.array([1.0, 2.0, 3.0, 4.0])  # (4,)
    y = np.full((2, 3, 4), 2.0)
    layer.forward(x, y)
    dx, dy = layer.backward(np.ones((2, 3, 4)))
    assert dx.shape == (4,)
    np.testing.assert_array_equal(dx, [12.0, 12.0, 12.0, 12.0])  # six copies of 2
    assert dy.shape == (2, 3, 4)
    np.testing.assert_array_equal(dy[1, 2], x)


def test_mul_broadcast_0d_against_vector() -> None:
    layer = MulLayer()
    x, y = np.array(3.0), np.array([1.0, 2.0])
    np.testing.assert_array_equal(layer.forward(x, y), [3.0, 6.0])
    dx, dy = layer.backward(np.array([1.0, 10.0]))
    assert np.shape(dx) == ()
    assert dx == 21.0  # 1*1 + 10*2
    np.testing.assert_array_equal(dy, [3.0, 30.0])


def test_mul_0d_with_0d() -> None:
    layer = MulLayer()
    layer.forward(np.array(3.0), np.array(4.0))
    dx, dy = layer.backward(np.array(2.0))
    assert (np.shape(dx), np.shape(dy)) == ((), ())
    assert (dx, dy) == (8.0, 6.0)


# ================================================================ AddLayer


def test_add_python_scalars() -> None:
    layer = AddLayer()
    assert layer.forward(220, 495) == 715
    assert layer.backward(1.1) == (1.1, 1.1)


def test_add_hand_example() -> None:
    layer = AddLayer()
    np.testing.assert_array_equal(layer.forward(np.array([1.0, 2.0]), np.array([10.0, 20.0])), [11.0, 22.0])
    dx, dy = layer.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(dx, [3.0, 4.0])
    np.testing.assert_array_equal(dy, [3.0, 4.0])
    assert dx is not dy


def test_add_broadcast_column_plus_row() -> None:
    layer = AddLayer()
    layer.forward(np.zeros((3, 1)), np.zeros((1, 4)))
    dx, dy = layer.backward(np.arange(12.0).reshape(3, 4))
    assert dx.shape == (3, 1)
    assert dy.shape == (1, 4)
    np.testing.assert_array_equal(dx, [[6.0], [22.0], [38.0]])  # row sums
    np.testing.assert_array_equal(dy, [[12.0, 15.0, 18.0, 21.0]])  # column sums


def test_add_broadcast_vector_against_3d() -> None:
    layer = AddLayer()
    layer.forward(np.zeros(4), np.zeros((2, 3, 4)))
    dout = np.arange(24.0).reshape(2, 3, 4)
    dx, dy = layer.backward(dout)
    assert dx.shape == (4,)
    np.testing.assert_array_equal(dx, [60.0, 66.0, 72.0, 78.0])  # sum_i (4i + k), i = 0..5
    np.testing.assert_array_equal(dy, dout)


def test_add_broadcast_0d_against_matrix() -> None:
    layer = AddLayer()
    layer.forward(np.array(1.0), np.zeros((2, 2)))
    dx, dy = layer.backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert np.shape(dx) == ()
    assert dx == 10.0
    assert dy.shape == (2, 2)


# ================================================================ Relu


def test_relu_hand_example() -> None:
    layer = Relu()
    np.testing.assert_array_equal(layer.forward(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(layer.mask, [True, True, False])
    np.testing.assert_array_equal(layer.backward(np.array([5.0, 6.0, 7.0])), [0.0, 0.0, 7.0])


def test_relu_derivative_at_zero_is_zero() -> None:
    layer = Relu()
    assert layer.forward(np.array([0.0]))[0] == 0.0
    assert layer.backward(np.array([1.0]))[0] == 0.0


def test_relu_2d() -> None:
    layer = Relu()
    out = layer.forward(np.array([[1.0, -0.5], [-2.0, 3.0]]))
    np.testing.assert_array_equal(out, [[1.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(layer.backward(np.full((2, 2), 4.0)), [[4.0, 0.0], [0.0, 4.0]])


# ================================================================ Sigmoid


def test_sigmoid_hand_example() -> None:
    layer = Sigmoid()
    # sigmoid(0) = 1/2, sigmoid(log 3) = 3/4; derivatives 1/4 and 3/16.
    out = layer.forward(np.array([0.0, math.log(3)]))
    np.testing.assert_allclose(out, [0.5, 0.75], rtol=1e-12)
    assert layer.out is out
    np.testing.assert_allclose(layer.backward(np.array([2.0, 1.0])), [0.5, 3 / 16], rtol=1e-12)


def test_sigmoid_backward_is_stable_at_extremes() -> None:
    layer = Sigmoid()
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        layer.forward(np.array([-1e4, 1e4]))
        np.testing.assert_array_equal(layer.backward(np.ones(2)), [0.0, 0.0])


# ================================================================ Affine


def _affine_hand() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    W = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]])
    b = np.array([1.0, 1.0, 1.0])
    return x, W, b


def test_affine_hand_example() -> None:
    x, W, b = _affine_hand()
    layer = Affine(W, b)
    np.testing.assert_array_equal(layer.forward(x), [[2.0, 3.0, 9.0], [4.0, 5.0, 19.0]])
    dx = layer.backward(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    np.testing.assert_array_equal(dx, [[3.0, 3.0], [0.0, 1.0]])  # dout @ W.T
    np.testing.assert_array_equal(layer.dW, [[1.0, 3.0, 1.0], [2.0, 4.0, 2.0]])  # x.T @ dout
    np.testing.assert_array_equal(layer.db, [1.0, 1.0, 1.0])


def test_affine_flattens_4d_input_and_restores_dx_shape() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 1, 2, 2))
    W = rng.normal(size=(4, 3))
    b = rng.normal(size=3)
    layer = Affine(W, b)
    out = layer.forward(x)
    expected_out = np.einsum("nchw,chwk->nk", x, W.reshape(1, 2, 2, 3)) + b
    np.testing.assert_allclose(out, expected_out, rtol=1e-12)
    assert layer.original_x_shape == (2, 1, 2, 2)
    assert layer.x is not None
    assert layer.x.shape == (2, 4)
    dout = rng.normal(size=(2, 3))
    dx = layer.backward(dout)
    assert dx.shape == (2, 1, 2, 2)
    np.testing.assert_allclose(dx, np.einsum("nk,chwk->nchw", dout, W.reshape(1, 2, 2, 3)), rtol=1e-12)
    assert layer.dW is not None
    assert layer.db is not None
    np.testing.assert_allclose(layer.dW, np.einsum("nf,nk->fk", x.reshape(2, 4), dout), rtol=1e-12)
    np.testing.assert_allclose(layer.db, dout[0] + dout[1], rtol=1e-12)


def test_affine_keeps_parameters_by_reference() -> None:
    x, W, b = _affine_hand()
    layer = Affine(W, b)
    assert layer.W is W
    assert layer.b is b
    W -= 1.0  # an optimizer updating in place
    b *= 0.0
    np.testing.assert_array_equal(layer.forward(x), [[-2.0, -1.0, 5.0], [-4.0, -3.0, 11.0]])


def test_affine_empty_batch() -> None:
    layer = Affine(np.ones((4, 3)), np.zeros(3))
    assert layer.forward(np.zeros((0, 2, 2))).shape == (0, 3)
    assert layer.backward(np.zeros((0, 3))).shape == (0, 2, 2)
    np.testing.assert_array_equal(layer.db, np.zeros(3))


# ================================================================ SoftmaxWithLoss

# x rows: [0, 0, 0] -> y = [1/3, 1/3, 1/3]; [0, log 2, log 5] -> y = [1, 2, 5] / 8.
SWL_X = np.array([[0.0, 0.0, 0.0], [0.0, math.log(2), math.log(5)]])
SWL_LABELS = np.array([0, 2])
SWL_ONE_HOT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
SWL_LOSS = (math.log(3) + math.log(8 / 5)) / 2
SWL_DX = np.array([[-1 / 3, 1 / 6, 1 / 6], [1 / 16, 1 / 8, -3 / 16]])  # (y - t) / N


@pytest.mark.parametrize("t", [SWL_LABELS, SWL_ONE_HOT], ids=["labels", "one-hot"])
def test_softmax_with_loss_hand_example(t: np.ndarray) -> None:
    layer = SoftmaxWithLoss()
    loss = layer.forward(SWL_X, t)
    assert loss == pytest.approx(SWL_LOSS, rel=1e-12)
    assert layer.loss == loss
    assert layer.t is t
    assert layer.y is not None
    np.testing.assert_allclose(layer.y, [[1 / 3] * 3, [1 / 8, 2 / 8, 5 / 8]], rtol=1e-12)
    np.testing.assert_allclose(layer.backward(), SWL_DX, rtol=1e-12, atol=1e-15)


def test_softmax_with_loss_labels_and_one_hot_agree_exactly() -> None:
    x = np.random.default_rng(3).normal(scale=4.0, size=(5, 7))
    labels = np.array([0, 6, 3, 3, 1])
    by_label, by_one_hot = SoftmaxWithLoss(), SoftmaxWithLoss()
    assert by_label.forward(x, labels) == by_one_hot.forward(x, np.eye(7)[labels])
    np.testing.assert_array_equal(by_label.backward(), by_one_hot.backward())


@pytest.mark.parametrize("t", [SWL_LABELS, SWL_ONE_HOT], ids=["labels", "one-hot"])
def test_softmax_with_loss_honours_dout(t: np.ndarray) -> None:
    layer = SoftmaxWithLoss()
    layer.forward(SWL_X, t)
    np.testing.assert_allclose(layer.backward(2.5), 2.5 * layer.backward(1), rtol=1e-12)
    np.testing.assert_allclose(layer.backward(np.array(-1.0)), -SWL_DX, rtol=1e-12, atol=1e-15)


def test_softmax_with_loss_single_sample_1d() -> None:
    x = np.array([0.0, math.log(2), math.log(5)])
    for t in (np.array(2), np.array([2]), np.array([0, 0, 1])):
        layer = SoftmaxWithLoss()
        assert layer.forward(x, t) == pytest.approx(math.log(8 / 5), rel=1e-12)
        dx = layer.backward()
        assert dx.shape == (3,)
        np.testing.assert_allclose(dx, [1 / 8, 2 / 8, -3 / 8], rtol=1e-12)


def test_softmax_with_loss_soft_targets_use_the_row_sum() -> None:
    # y = [1/2, 1/2], t = [1, 1]: loss = -2 log(1/2); dx = y * 2 - t = 0.
    layer = SoftmaxWithLoss()
    assert layer.forward(np.array([[0.0, 0.0]]), np.array([[1.0, 1.0]])) == pytest.approx(2 * math.log(2))
    np.testing.assert_allclose(layer.backward(), [[0.0, 0.0]], atol=1e-15)


def test_softmax_with_loss_is_stable_for_huge_logits() -> None:
    layer = SoftmaxWithLoss()
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = layer.forward(np.array([[1e4, 0.0], [0.0, 1e4]]), np.array([1, 1]))
        dx = layer.backward()
    assert loss == pytest.approx(1e4 / 2)
    np.testing.assert_array_equal(dx, [[0.5, -0.5], [0.0, 0.0]])


def test_softmax_with_loss_returns_numpy_scalar() -> None:
    loss = SoftmaxWithLoss().forward(SWL_X, SWL_LABELS)
    assert isinstance(loss, np.float64)


# ================================================================ no mutation, no aliasing


def _run_mul(x: np.ndarray, dout: np.ndarray) -> list[Any]:
    layer = MulLayer()
    out = layer.forward(x, x * 2)
    return [out, *layer.backward(dout)]


def _run_add(x: np.ndarray, dout: np.ndarray) -> list[Any]:
    layer = AddLayer()
    out = layer.forward(x, x * 2)
    return [out, *layer.backward(dout)]


def _run_relu(x: np.ndarray, dout: np.ndarray) -> list[Any]:
    layer = Relu()
    return [layer.forward(x), layer.backward(dout)]


def _run_sigmoid(x: np.ndarray, dout: np.ndarray) -> list[Any]:
    layer = Sigmoid()
    return [layer.forward(x), layer.backward(dout)]


def _run_affine(x: np.ndarray, dout: np.ndarray) -> list[Any]:
    layer = Affine(np.ones((3, 3), dtype=x.dtype), np.zeros(3, dtype=x.dtype))
    out = layer.forward(x)
    dx = layer.backward(dout)
    return [out, dx, layer.dW, layer.db]


RUNNERS: dict[str, Callable[[np.ndarray, np.ndarray], list[Any]]] = {
    "MulLayer": _run_mul,
    "AddLayer": _run_add,
    "Relu": _run_relu,
    "Sigmoid": _run_sigmoid,
    "Affine": _run_affine,
}


@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_layer_leaves_inputs_alone_and_returns_fresh_arrays(name: str) -> None:
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -4.0, 0.5]])
    dout = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    x_before, dout_before = x.copy(), dout.copy()
    results = RUNNERS[name](x, dout)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dout, dout_before)
    for r in results[1:]:  # the gradients
        assert r is not dout
        assert not np.shares_memory(r, dout)
    for r in results:
        assert r is not x
        assert not np.shares_memory(r, x)


def test_softmax_with_loss_leaves_inputs_alone() -> None:
    x, t = SWL_X.copy(), SWL_ONE_HOT.copy()
    layer = SoftmaxWithLoss()
    layer.forward(x, t)
    dx = layer.backward()
    np.testing.assert_array_equal(x, SWL_X)
    np.testing.assert_array_equal(t, SWL_ONE_HOT)
    assert not np.shares_memory(dx, x)
    assert not np.shares_memory(dx, t)
    assert layer.y is not None
    assert not np.shares_memory(dx, layer.y)


def test_relu_backward_does_not_write_into_dout() -> None:
    # The book's Relu zeroes dout in place; a second backward would then see zeros.
    layer = Relu()
    layer.forward(np.array([-1.0, 1.0]))
    dout = np.array([5.0, 5.0])
    layer.backward(dout)
    np.testing.assert_array_equal(dout, [5.0, 5.0])


# ================================================================ dtype preservation


@pytest.mark.parametrize("name", sorted(RUNNERS))
@pytest.mark.parametrize("dout_dtype", [np.float32, np.float64])
def test_float32_in_float32_out(name: str, dout_dtype: type) -> None:
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -4.0, 0.5]], dtype=F32)
    dout: np.ndarray = np.ones((2, 3), dtype=dout_dtype)
    for r in RUNNERS[name](x, dout):
        assert r.dtype == np.float32


def test_float64_stays_float64() -> None:
    x = np.array([[-1.0, 0.0, 2.0]])
    for name, run in RUNNERS.items():
        for r in run(x, np.ones((1, 3), dtype=F32)):
            assert r.dtype == np.float64, name


def test_mul_add_gradients_follow_each_inputs_dtype() -> None:
    x32, y64 = np.ones(2, dtype=F32), np.ones(2)
    for layer in (MulLayer(), AddLayer()):
        layer.forward(x32, y64)
        dx, dy = layer.backward(np.ones(2))
        assert (dx.dtype, dy.dtype) == (np.float32, np.float64)


def test_mul_0d_float32_gradient_keeps_dtype() -> None:
    layer = MulLayer()
    layer.forward(np.array(2.0, dtype=F32), np.ones(3, dtype=F32))
    dx, _ = layer.backward(np.ones(3))
    assert np.shape(dx) == ()
    assert np.result_type(dx) == np.float32


@pytest.mark.parametrize(
    "t", [SWL_LABELS, SWL_ONE_HOT.astype(np.int64), SWL_ONE_HOT], ids=["labels", "int-one-hot", "one-hot"]
)
@pytest.mark.parametrize("dout", [1, 2.5, np.float64(2.5)])
def test_softmax_with_loss_float32(t: np.ndarray, dout: float) -> None:
    layer = SoftmaxWithLoss()
    loss = layer.forward(SWL_X.astype(F32), t)
    assert isinstance(loss, np.float32)
    assert loss == pytest.approx(SWL_LOSS, rel=1e-6)
    assert layer.y is not None
    assert layer.y.dtype == np.float32
    dx = layer.backward(dout)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, float(dout) * SWL_DX, rtol=1e-5, atol=1e-7)


# ================================================================ errors


def _mul() -> Any:
    return MulLayer()


def _add() -> Any:
    return AddLayer()


def _affine() -> Any:
    return Affine(np.ones((2, 3)), np.zeros(3))


NEW_LAYER: dict[str, Callable[[], Any]] = {
    "MulLayer": _mul,
    "AddLayer": _add,
    "Relu": Relu,
    "Sigmoid": Sigmoid,
    "Affine": _affine,
    "SoftmaxWithLoss": SoftmaxWithLoss,
}


@pytest.mark.parametrize("name", sorted(NEW_LAYER))
def test_backward_before_forward(name: str) -> None:
    layer = NEW_LAYER[name]()
    with pytest.raises(
        BackwardBeforeForwardError, match=rf"^{name}\.backward\(\) was called before forward\(\)$"
    ):
        layer.backward(np.ones(1))


def test_backward_before_forward_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError):
        SoftmaxWithLoss().backward()


@pytest.mark.parametrize("cls", [MulLayer, AddLayer])
def test_mul_add_reject_non_broadcastable_inputs(cls: type) -> None:
    with pytest.raises(
        ValueError,
        match=rf"^{cls.__name__}\.forward: x of shape \(3,\) and y of shape \(2, 4\) cannot be broadcast",
    ):
        cls().forward(np.ones(3), np.ones((2, 4)))


@pytest.mark.parametrize(
    ("name", "x", "dout", "out_shape"),
    [
        ("MulLayer", np.ones((2, 3)), np.ones(3), r"\(2, 3\)"),
        ("AddLayer", np.ones((2, 3)), np.ones((3, 2)), r"\(2, 3\)"),
        ("Relu", np.ones((2, 3)), np.ones((2, 1)), r"\(2, 3\)"),
        ("Sigmoid", np.ones(3), np.ones(4), r"\(3,\)"),
        ("Affine", np.ones((4, 2)), np.ones((4, 2)), r"\(4, 3\)"),
        ("SoftmaxWithLoss", np.ones((2, 3)), np.ones(2), r"\(\)"),
    ],
)
def test_backward_rejects_misshapen_dout(name: str, x: np.ndarray, dout: np.ndarray, out_shape: str) -> None:
    layer = NEW_LAYER[name]()
    if name in ("MulLayer", "AddLayer"):
        layer.forward(x, x)
    elif name == "SoftmaxWithLoss":
        layer.forward(x, np.zeros(x.shape[0], dtype=int))
    else:
        layer.forward(x)
    dout_shape = str(dout.shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(
        ValueError,
        match=rf"^{name}\.backward: dout of shape {dout_shape} does not match the forward output of shape "
        + out_shape,
    ):
        layer.backward(dout)


def test_scalar_mul_rejects_array_dout() -> None:
    layer = MulLayer()
    layer.forward(2, 3)
    with pytest.raises(ValueError, match=r"MulLayer\.backward: dout of shape \(2,\)"):
        layer.backward(np.ones(2))


def test_affine_rejects_non_2d_W() -> None:
    with pytest.raises(ValueError, match=r"^Affine\.__init__: W must be 2-D, got shape \(3,\)"):
        Affine(np.ones(3), np.zeros(3))


@pytest.mark.parametrize("b_shape", [(2,), (1, 3), ()])
def test_affine_rejects_misshapen_b(b_shape: tuple[int, ...]) -> None:
    b_str = str(b_shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(
        ValueError, match=rf"^Affine\.__init__: b of shape {b_str} does not match W of shape \(4, 3\)"
    ):
        Affine(np.ones((4, 3)), np.zeros(b_shape))


def test_affine_rejects_wrong_width() -> None:
    layer = Affine(np.ones((4, 3)), np.zeros(3))
    with pytest.raises(
        ValueError,
        match=r"^Affine\.forward: x of shape \(2, 5\) flattens to \(2, 5\) but W has shape \(4, 3\)$",
    ):
        layer.forward(np.ones((2, 5)))
    with pytest.raises(
        ValueError,
        match=r"^Affine\.forward: x of shape \(2, 3, 3\) flattens to \(2, 9\) but W has shape \(4, 3\)$",
    ):
        layer.forward(np.ones((2, 3, 3)))


@pytest.mark.parametrize("x_shape", [(4,), ()])
def test_affine_rejects_x_without_batch_axis(x_shape: tuple[int, ...]) -> None:
    x_str = str(x_shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=rf"^Affine\.forward: x of shape {x_str} needs a batch axis"):
        Affine(np.ones((4, 3)), np.zeros(3)).forward(np.ones(x_shape))


@pytest.mark.parametrize(
    ("x", "t", "pattern"),
    [
        (np.ones((2, 3)), np.array([0, 1, 2]), r"t of shape \(3,\) does not match x of shape \(2, 3\)"),
        (np.ones((2, 3)), np.ones((2, 4)), r"t of shape \(2, 4\) does not match x of shape \(2, 3\)"),
        (np.ones((2, 3)), np.ones((3, 2)), r"t of shape \(3, 2\) does not match x of shape \(2, 3\)"),
        (np.ones(3), np.array([0, 1]), r"t of shape \(2,\) does not match x of shape \(3,\)"),
        (np.ones((2, 3)), np.array([0, 3]), r"label 3 in t of shape \(2,\) is outside \[0, 3\)"),
        (np.ones((2, 3)), np.array([-1, 0]), r"label -1 in t of shape \(2,\) is outside \[0, 3\)"),
        (np.ones(3), np.array(5), r"label 5 in t of shape \(\) is outside \[0, 3\)"),
        (np.ones((2, 3)), np.array([0.0, 1.0]), r"labels t must be integers, got dtype float64"),
        (np.ones((2, 3)), np.array([0.5, 1.0]), r"labels t must be integers"),
        (np.ones((2, 3)), np.array([True, False]), r"labels t must be integers, got dtype bool"),
        (np.ones((2, 2, 3)), np.ones((2, 2, 3)), r"x of shape \(2, 2, 3\) must be \(N, C\) or \(C,\)"),
        (np.ones((0, 3)), np.zeros(0, dtype=int), r"x of shape \(0, 3\) is empty"),
    ],
)
def test_softmax_with_loss_rejects_bad_inputs(x: np.ndarray, t: np.ndarray, pattern: str) -> None:
    with pytest.raises(ValueError, match=r"^SoftmaxWithLoss\.forward: " + pattern):
        SoftmaxWithLoss().forward(x, t)
