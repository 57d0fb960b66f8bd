"""Dropout, BatchNormalization and ChannelBatchNormalization: shapes, modes, errors, running statistics
against the reference's own update, reproducible masks and the degenerate batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import reference
from backprop import BackwardBeforeForwardError, BatchNormalization, ChannelBatchNormalization, Dropout
from backprop.verify import verify
from backprop.verify.specs.normalization import dropout_mask

F32 = np.float32
RNG = np.random.default_rng(0)


# ================================================================ Dropout


def test_dropout_train_mode_keeps_the_mask_and_does_not_rescale() -> None:
    x = RNG.normal(size=(4, 5))
    layer = Dropout(0.5, rng=1)
    out = layer.forward(x)
    assert layer.mask is not None and layer.mask.dtype == np.bool_
    np.testing.assert_array_equal(out, np.where(layer.mask, x, 0.0))
    dout = RNG.normal(size=x.shape)
    np.testing.assert_array_equal(layer.backward(dout), dout * layer.mask)


def test_dropout_test_mode_scales_by_the_keep_probability() -> None:
    x = RNG.normal(size=(3, 2)).astype(F32)
    layer = Dropout(0.2)
    out = layer.forward(x, train_flg=False)
    assert out.dtype == F32
    np.testing.assert_allclose(out, x * 0.8)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), np.full(x.shape, 0.8, dtype=F32))


def test_dropout_rng_makes_masks_reproducible_and_default_uses_np_random() -> None:
    x = np.ones((8, 8))
    a, b = Dropout(0.5, rng=7), Dropout(0.5, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    np.random.seed(3)
    first = Dropout().forward(x)
    np.random.seed(3)
    np.testing.assert_array_equal(Dropout().forward(x), first)


def test_dropout_errors() -> None:
    with pytest.raises(ValueError, match=r"Dropout.__init__: dropout_ratio must be in \[0, 1\], got 1.5"):
        Dropout(1.5)
    with pytest.raises(BackwardBeforeForwardError, match="Dropout"):
        Dropout().backward(np.ones(3))
    layer = Dropout()
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Dropout.backward: dout of shape \(3, 2\)"):
        layer.backward(np.ones((3, 2)))


class _RenamedFloatMask:
    def __init__(self) -> None:
        self.keep = np.array([1.0, 0.0])


class _ScaledMask:
    def __init__(self) -> None:
        self.mask = np.array([2.0, 0.0])


def test_the_dropout_row_reads_float_masks_and_names_what_it_cannot_read() -> None:
    class Floats:
        mask = np.array([1.0, 0.0], dtype=F32)

    np.testing.assert_array_equal(dropout_mask(Floats())["mask"], [1.0, 0.0])
    with pytest.raises(LookupError, match=r"_RenamedFloatMask holds no dropout mask .* keep"):
        dropout_mask(_RenamedFloatMask())
    with pytest.raises(ValueError, match=r"_ScaledMask\.mask holds values other than 0 and 1"):
        dropout_mask(_ScaledMask())


class InvertedDropout(Dropout):
    """The modern inverted dropout: its mask holds 0 and 1 / (1 - ratio)."""

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        super().forward(x, train_flg)
        if train_flg and self.mask is not None:
            self.mask = self.mask / (1.0 - self.dropout_ratio)  # type: ignore[assignment]
            return x * self.mask
        return x


@pytest.mark.oracle
def test_an_inverted_dropout_fails_clearly_as_a_finding_not_a_crash() -> None:
    report = verify(InvertedDropout, "dropout", max_examples=30, seed=0, scope=False, max_failures=1)
    assert not report.passed and report.error is None and report.failure is not None
    checks = {m.check: m for m in report.failure.mismatches}
    assert "InvertedDropout.mask holds values other than 0 and 1" in checks["state"].message


@pytest.mark.oracle
def test_a_dropout_without_a_readable_mask_is_a_finding() -> None:
    class Hidden(Dropout):
        def forward(self, x: Any, train_flg: bool = True) -> Any:
            out = super().forward(x, train_flg)
            # a float mask under another name: neither self.mask nor the only boolean array
            self._kept, self.mask = None if self.mask is None else self.mask.astype(float), None
            return out

        def backward(self, dout: Any) -> Any:
            return dout * self._kept if self.train_flg else super().backward(dout)

    report = verify(Hidden, "dropout", max_examples=30, seed=0, scope=False, max_failures=1)
    assert report.failure is not None, report.error
    checks = {m.check: m for m in report.failure.mismatches}
    assert "state" in checks and "holds no dropout mask" in checks["state"].message
    assert checks["state"].diagnosis == "other"


# ================================================================ batch normalization


def _bn(d: int, dtype: Any = np.float64, **kw: Any) -> BatchNormalization:
    return BatchNormalization(np.ones(d, dtype=dtype), np.zeros(d, dtype=dtype), **kw)


def test_bn_train_mode_normalizes_each_feature_and_keeps_4d_shape() -> None:
    x = RNG.normal(3.0, 2.0, size=(6, 2, 3, 2))
    layer = _bn(12)
    out = layer.forward(x)
    assert out.shape == x.shape
    flat = out.reshape(6, -1)
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        flat.var(axis=0), x.reshape(6, -1).var(axis=0) / (x.reshape(6, -1).var(axis=0) + 1e-6)
    )
    dx = layer.backward(RNG.normal(size=x.shape))
    assert dx.shape == x.shape and layer.dgamma is not None and layer.dgamma.shape == (12,)


@pytest.mark.parametrize(
    ("layer", "x", "running"),
    [
        (
            lambda m: _bn(4, momentum=m, running_mean=np.full(4, 0.5), running_var=np.full(4, 2.0)),
            (5, 4),
            "batch_normalization_running",
        ),
        (lambda m: _bn(6, momentum=m), (3, 2, 1, 3), "batch_normalization_running"),
        (
            lambda m: ChannelBatchNormalization(np.ones(2), np.zeros(2), m, np.zeros(2), np.ones(2)),
            (3, 2, 2, 2),
            "channel_batch_normalization_running",
        ),
    ],
)
@pytest.mark.parametrize("momentum", [0.9, 0.5])
def test_running_statistics_follow_the_reference_update(
    layer: Any, x: Any, running: str, momentum: float
) -> None:
    bn = layer(momentum)
    mean0 = None if bn.running_mean is None else bn.running_mean.copy()
    var0 = None if bn.running_var is None else bn.running_var.copy()
    given_mean = bn.running_mean
    batch = RNG.normal(1.0, 3.0, size=x)
    bn.forward(batch)
    d = bn.gamma.shape[0]
    start_mean = np.zeros(d) if mean0 is None else mean0
    start_var = np.zeros(d) if var0 is None else var0
    with reference.x64():
        want_mean, want_var = getattr(reference, running)(batch, start_mean, start_var, momentum)
    np.testing.assert_allclose(bn.running_mean, want_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, want_var, rtol=1e-12)
    if given_mean is not None:
        np.testing.assert_array_equal(given_mean, start_mean)  # the caller's array is never written
    before = bn.running_mean.copy()
    bn.forward(batch, train_flg=False)
    np.testing.assert_array_equal(bn.running_mean, before)  # test mode leaves them alone


def test_bn_test_mode_uses_running_statistics_as_constants() -> None:
    layer = _bn(2, F32, running_mean=np.array([1.0, -1.0], F32), running_var=np.array([4.0, 0.25], F32))
    x = np.array([[3.0, 0.0]], dtype=F32)
    out = layer.forward(x, train_flg=False)
    assert out.dtype == F32
    np.testing.assert_allclose(out, [[2.0 / np.sqrt(4.0 + 1e-6), 1.0 / np.sqrt(0.25 + 1e-6)]], rtol=1e-6)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, [[1 / np.sqrt(4.0 + 1e-6), 1 / np.sqrt(0.25 + 1e-6)]], rtol=1e-6)
    assert dx.dtype == F32 and layer.dgamma is not None and layer.dgamma.dtype == F32


@pytest.mark.parametrize(
    ("layer", "x", "message"),
    [
        (
            lambda: _bn(3),
            np.ones((1, 3)),
            r"BatchNormalization.forward: train_flg=True but x of shape \(1, 3\) is a batch of N = 1",
        ),
        (
            lambda: ChannelBatchNormalization(np.ones(2), np.zeros(2)),
            np.ones((1, 2, 1, 1)),
            r"ChannelBatchNormalization.forward: train_flg=True but x of shape \(1, 2, 1, 1\) has N\*H\*W = 1",
        ),
    ],
)
def test_a_single_sample_in_train_mode_raises_and_test_mode_accepts_it(
    layer: Any, x: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        layer().forward(x)
    assert layer().forward(x, train_flg=False).shape == x.shape


def test_channel_bn_accepts_one_sample_with_a_spatial_extent() -> None:
    layer = ChannelBatchNormalization(np.ones(2), np.zeros(2))
    out = layer.forward(RNG.normal(size=(1, 2, 2, 2)))
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: BatchNormalization(np.ones((2, 2)), np.zeros((2, 2))),
            r"gamma of shape \(2, 2\) and beta of shape \(2, 2\) must both be 1-D",
        ),
        (lambda: BatchNormalization(np.ones(2), np.zeros(3)), r"beta of shape \(3,\)"),
        (
            lambda: BatchNormalization(np.ones(2), np.zeros(2), running_var=np.ones(3)),
            r"running_var of shape \(3,\) does not match gamma",
        ),
        (lambda: BatchNormalization(np.ones(2), np.zeros(2), momentum=2.0), r"momentum must be in \[0, 1\]"),
    ],
)
def test_bn_constructor_errors_name_the_layer_and_shapes(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_bn_forward_and_backward_errors() -> None:
    layer = _bn(3)
    with pytest.raises(BackwardBeforeForwardError, match="BatchNormalization"):
        layer.backward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"BatchNormalization.forward: x of shape \(2, 3, 1\) must be 2-D"):
        layer.forward(np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match=r"x of shape \(2, 4\) has 4 features but gamma has shape \(3,\)"):
        layer.forward(np.ones((2, 4)))
    layer.forward(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"BatchNormalization.backward: dout of shape \(3, 2\)"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(
        ValueError, match=r"ChannelBatchNormalization.forward: x of shape \(2, 3\) must be 4-D"
    ):
        ChannelBatchNormalization(np.ones(3), np.zeros(3)).forward(np.ones((2, 3)))


def test_bn_keeps_gamma_by_reference() -> None:
    gamma = np.ones(2)
    layer = BatchNormalization(gamma, np.zeros(2))
    gamma *= 3.0
    out = layer.forward(np.array([[0.0, 1.0], [2.0, 3.0]]))
    np.testing.assert_allclose(np.abs(out), 3.0 / np.sqrt(1.0 + 1e-6), rtol=1e-12)
