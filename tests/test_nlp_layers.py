"""The book-2 layers of ``backprop.nlp.layers``: the book's API (params/grads lists written in place),
hand-checked values, dtypes and errors; the rows check the gradients on drawn examples."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import backprop
import backprop.nlp
from backprop import BackwardBeforeForwardError
from backprop.nlp import (
    Affine,
    Dropout,
    Embedding,
    MatMul,
    Sigmoid,
    SigmoidWithLoss,
    Softmax,
    SoftmaxWithLoss,
)
from backprop.verify import verify

F32 = np.float32
RNG = np.random.default_rng(0)


def _params_and_grads(layer: Any) -> tuple[list[Any], list[Any]]:
    return list(layer.params), list(layer.grads)


def test_every_public_name_is_exported() -> None:
    import backprop.nlp.layers as layers

    assert set(layers.__all__) <= set(backprop.nlp.__all__)
    for name in backprop.nlp.__all__:
        assert getattr(backprop.nlp, name).__name__ == name


# ==== MatMul and Affine ====================================================================================


def test_matmul_hand_example_and_in_place_grads() -> None:
    W = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    layer = MatMul(W)
    assert layer.params[0] is W
    before = _params_and_grads(layer)
    x = np.array([[1.0, -1.0], [0.5, 2.0]])
    np.testing.assert_array_equal(layer.forward(x), x @ W)
    dout = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    np.testing.assert_array_equal(layer.backward(dout), dout @ W.T)
    np.testing.assert_array_equal(layer.grads[0], x.T @ dout)
    params, grads = _params_and_grads(layer)
    assert all(a is b for a, b in zip(params + grads, before[0] + before[1], strict=True))


def test_matmul_sees_an_in_place_update_of_its_weight() -> None:
    W = np.eye(2)
    layer = MatMul(W)
    W[...] = 2 * W  # what an optimizer does to params[0]
    np.testing.assert_array_equal(layer.forward(np.ones((1, 2))), [[2.0, 2.0]])


def test_affine_hand_example_and_in_place_grads() -> None:
    W, b = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([0.5, -0.5])
    layer = Affine(W, b)
    grads = list(layer.grads)
    x = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    np.testing.assert_array_equal(layer.forward(x), x @ W + b)
    dout = np.array([[1.0, 2.0], [-1.0, 0.5]])
    np.testing.assert_array_equal(layer.backward(dout), dout @ W.T)
    np.testing.assert_array_equal(layer.grads[0], x.T @ dout)
    np.testing.assert_array_equal(layer.grads[1], dout.sum(axis=0))
    assert layer.grads[0] is grads[0] and layer.grads[1] is grads[1]
    assert layer.params[0] is W and layer.params[1] is b


@pytest.mark.parametrize("cls", [MatMul, Affine])
def test_matmul_and_affine_keep_float32(cls: type) -> None:
    W = RNG.normal(size=(3, 4)).astype(F32)
    layer = cls(W) if cls is MatMul else cls(W, np.zeros(4, F32))
    out = layer.forward(RNG.normal(size=(2, 3)).astype(F32))
    dx = layer.backward(np.ones((2, 4)))  # a float64 dout must not promote the float32 layer
    assert out.dtype == dx.dtype == F32
    assert all(g.dtype == F32 for g in layer.grads)


def test_book2_affine_does_not_flatten() -> None:
    """Book 2's Affine takes (N, D) only; TimeAffine reshapes (N, T, D) itself."""
    layer = Affine(np.zeros((6, 2)), np.zeros(2))
    with pytest.raises(
        ValueError, match=r"Affine.forward: x of shape \(2, 2, 3\) does not match W of shape \(6, 2\)"
    ):
        layer.forward(np.zeros((2, 2, 3)))


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: MatMul(np.zeros(3)), r"MatMul.__init__: W must be 2-D, got shape \(3,\)"),
        (
            lambda: Affine(np.zeros((2, 3)), np.zeros(2)),
            r"Affine.__init__: b of shape \(2,\) does not match W",
        ),
        (lambda: Affine(np.zeros((2, 3)), np.zeros((1, 3))), r"Affine.__init__: b must be 1-D"),
        (lambda: MatMul(np.zeros((2, 3))).forward(np.zeros((4, 3))), r"x of shape \(4, 3\) does not match W"),
        (lambda: MatMul(np.zeros((2, 3))).forward(np.zeros(2)), r"MatMul.forward: x of shape \(2,\)"),
        (lambda: Embedding(np.zeros(4)), r"Embedding.__init__: W must be 2-D"),
    ],
)
def test_constructor_and_forward_errors_name_the_layer_and_shapes(
    make: Callable[[], Any], pattern: str
) -> None:
    with pytest.raises(ValueError, match=pattern):
        make()


# ==== Softmax ==============================================================================================


def test_softmax_rows_and_its_jacobian() -> None:
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]])
    layer = Softmax()
    y = layer.forward(x)
    expected = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y, expected, rtol=1e-15)
    dout = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
    jacobians = [np.diag(r) - np.outer(r, r) for r in expected]
    np.testing.assert_allclose(layer.backward(dout), [j @ d for j, d in zip(jacobians, dout, strict=True)])
    assert layer.params == [] and layer.grads == []


def test_softmax_is_stable_for_logits_far_apart() -> None:
    layer = Softmax()
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        y = layer.forward(np.array([[1e4, -1e4, 0.0]], dtype=F32))
        dx = layer.backward(np.ones((1, 3), dtype=F32))
    np.testing.assert_array_equal(y, [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 0.0]])
    assert y.dtype == dx.dtype == F32


# ==== the book-1 layers with params and grads ===============================================================


@pytest.mark.parametrize("cls", [SoftmaxWithLoss, Sigmoid, Dropout, SigmoidWithLoss, Softmax])
def test_layers_without_parameters_have_empty_lists(cls: type) -> None:
    layer = cls()
    assert layer.params == [] and layer.grads == []


def test_book2_softmax_with_loss_honours_dout() -> None:
    """Unlike book 1's code, book 2's SoftmaxWithLoss multiplies by dout (TimeSoftmaxWithLoss relies on it)."""
    x, t = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]), np.array([1, 2])
    layer = SoftmaxWithLoss()
    layer.forward(x, t)
    np.testing.assert_allclose(layer.backward(2.5), 2.5 * layer.backward())


def test_book2_dropout_is_not_inverted_and_reproducible() -> None:
    x = np.arange(1.0, 41.0).reshape(4, 10)
    layer = Dropout(0.3, rng=7)
    out = layer.forward(x)
    assert layer.mask is not None and layer.mask.dtype == np.bool_
    np.testing.assert_array_equal(out, np.where(layer.mask, x, 0.0))  # kept elements are not rescaled
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), layer.mask.astype(float))
    np.testing.assert_array_equal(Dropout(0.3, rng=7).forward(x), out)
    np.testing.assert_allclose(layer.forward(x, train_flg=False), 0.7 * x)


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("cls", "row", "without"),
    [
        (Affine, "affine", ("nd",)),  # book 2's Affine does not flatten N-D input
        (Sigmoid, "sigmoid", ()),
        (SoftmaxWithLoss, "softmax_with_loss", ()),
        (Dropout, "dropout", ()),
    ],
)
def test_book2_versions_pass_book1_rows(cls: type, row: str, without: tuple[str, ...]) -> None:
    """The rows of book 1 read book 2's grads lists too: the layers without rows of their own are checked."""
    report = verify(cls, row, max_examples=25, without=without)
    assert report.passed, report.failure.render() if report.failure else report.error


# ==== SigmoidWithLoss ======================================================================================


def test_sigmoid_with_loss_hand_example() -> None:
    x, t = np.array([0.0, 2.0, -1.0]), np.array([1, 0, 0])
    layer = SigmoidWithLoss()
    y = 1 / (1 + np.exp(-x))
    expected = -np.mean(t * np.log(y) + (1 - t) * np.log(1 - y))
    np.testing.assert_allclose(layer.forward(x, t), expected, rtol=1e-15)
    np.testing.assert_allclose(layer.backward(), (y - t) / 3, rtol=1e-15)
    np.testing.assert_allclose(layer.backward(-2.0), -2.0 * (y - t) / 3, rtol=1e-15)


def test_sigmoid_with_loss_is_exact_for_extreme_scores() -> None:
    """A confidently wrong score of 1e4 costs 1e4 (the book's -log(y + 1e-7) would say 16.1)."""
    layer = SigmoidWithLoss()
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = layer.forward(np.array([1e4, -1e4, 1e4, -1e4]), np.array([0, 1, 1, 0]))
        dx = layer.backward()
    assert loss == pytest.approx(2e4 / 4, rel=1e-15)
    np.testing.assert_array_equal(dx, [0.25, -0.25, 0.0, 0.0])


def test_sigmoid_with_loss_labels_as_ints_or_floats_agree() -> None:
    x = RNG.normal(size=5)
    t = np.array([1, 0, 0, 1, 1], dtype=np.int32)
    a, b = SigmoidWithLoss(), SigmoidWithLoss()
    assert a.forward(x, t) == b.forward(x, t.astype(float))
    np.testing.assert_array_equal(a.backward(), b.backward())


@pytest.mark.parametrize("t_dtype", [np.int32, F32])
def test_sigmoid_with_loss_keeps_float32(t_dtype: type) -> None:
    layer = SigmoidWithLoss()
    loss = layer.forward(np.array([0.5, -2.0], dtype=F32), np.array([1, 0], dtype=t_dtype))
    assert loss.dtype == F32 and layer.backward(np.float64(1.0)).dtype == F32


@pytest.mark.parametrize(
    ("x", "t", "pattern"),
    [
        (np.zeros((2, 1)), np.zeros((2, 1)), r"x of shape \(2, 1\) must be \(N,\) scores"),
        (np.zeros(3), np.zeros(2), r"t of shape \(2,\) does not match x of shape \(3,\)"),
        (np.zeros(2), np.array([0, 2]), r"t \(shape \(2,\), dtype int64\) must hold labels 0 and 1"),
        (np.zeros(2), np.array([0.0, np.nan]), r"must hold labels 0 and 1"),
        (np.zeros(0), np.zeros(0), r"N >= 1"),
    ],
)
def test_sigmoid_with_loss_rejects_bad_inputs(x: Any, t: Any, pattern: str) -> None:
    with pytest.raises(ValueError, match=r"SigmoidWithLoss.forward: .*" + pattern):
        SigmoidWithLoss().forward(x, t)


# ==== Embedding ============================================================================================


def test_embedding_adds_the_rows_of_a_repeated_word() -> None:
    W = np.arange(8.0).reshape(4, 2)
    layer = Embedding(W)
    grads = list(layer.grads)
    idx = np.array([3, 0, 3, 3])
    np.testing.assert_array_equal(layer.forward(idx), W[idx])
    dout = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    assert layer.backward(dout) is None
    np.testing.assert_array_equal(layer.grads[0], [[3.0, 4.0], [0.0, 0.0], [0.0, 0.0], [13.0, 16.0]])
    assert layer.grads[0] is grads[0]


def test_embedding_backward_replaces_the_previous_gradient() -> None:
    layer = Embedding(np.zeros((3, 1)))
    layer.forward(np.array([0, 0]))
    layer.backward(np.ones((2, 1)))
    layer.forward(np.array([2]))
    layer.backward(np.ones((1, 1)))
    np.testing.assert_array_equal(layer.grads[0], [[0.0], [0.0], [1.0]])


def test_embedding_takes_a_batch_of_contexts_and_keeps_float32() -> None:
    W = RNG.normal(size=(5, 3)).astype(F32)
    layer = Embedding(W)
    out = layer.forward(np.array([[0, 4], [4, 4]], dtype=np.int32))
    assert out.shape == (2, 2, 3) and out.dtype == F32
    layer.backward(np.ones((2, 2, 3)))
    assert layer.grads[0].dtype == F32
    np.testing.assert_array_equal(layer.grads[0][:, 0], [1.0, 0.0, 0.0, 0.0, 3.0])


@pytest.mark.parametrize(
    ("idx", "pattern"),
    [
        (np.array([0.0, 1.0]), r"idx must hold integer word ids, got dtype float64"),
        (np.array([0, 5]), r"word id 5 in idx of shape \(2,\) is outside \[0, 4\) for W of shape \(4, 2\)"),
        (np.array([-1, 0]), r"word id -1 in idx"),
        (np.array([True, False]), r"idx must hold integer word ids, got dtype bool"),
    ],
)
def test_embedding_rejects_bad_indices(idx: Any, pattern: str) -> None:
    with pytest.raises(ValueError, match=r"Embedding.forward: " + pattern):
        Embedding(np.zeros((4, 2))).forward(idx)


# ==== every layer ==========================================================================================

_LAYERS: dict[str, tuple[Callable[[], Any], tuple[Any, ...], Any]] = {
    "MatMul": (lambda: MatMul(np.ones((2, 3))), (np.ones((1, 2)),), np.ones((1, 4))),
    "Affine": (lambda: Affine(np.ones((2, 3)), np.ones(3)), (np.ones((1, 2)),), np.ones((2, 3))),
    "Softmax": (Softmax, (np.ones((1, 2)),), np.ones((2, 2))),
    "SigmoidWithLoss": (SigmoidWithLoss, (np.ones(2), np.ones(2)), np.ones(1)),
    "Embedding": (lambda: Embedding(np.ones((3, 2))), (np.array([0, 1]),), np.ones((2, 3))),
}


@pytest.mark.parametrize("name", sorted(_LAYERS))
def test_backward_before_forward(name: str) -> None:
    with pytest.raises(BackwardBeforeForwardError, match=rf"{name}.backward\(\) was called before forward"):
        _LAYERS[name][0]().backward(*(() if name == "SigmoidWithLoss" else (np.ones(1),)))


@pytest.mark.parametrize("name", sorted(_LAYERS))
def test_backward_rejects_misshapen_dout(name: str) -> None:
    make, inputs, dout = _LAYERS[name]
    layer = make()
    layer.forward(*inputs)
    with pytest.raises(ValueError, match=rf"{name}.backward: dout of shape"):
        layer.backward(dout)


def test_import_backprop_nlp_needs_numpy_only() -> None:
    import subprocess
    import sys

    code = "import sys, backprop.nlp; print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'hypothesis'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_book1_names_stay_book1_layers() -> None:
    """``backprop.Affine`` flattens and keeps attributes; ``backprop.nlp.Affine`` is the book-2 one."""
    assert backprop.Affine is not Affine and not hasattr(
        backprop.Affine(np.ones((1, 1)), np.ones(1)), "params"
    )
