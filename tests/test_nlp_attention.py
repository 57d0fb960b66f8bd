"""The library's attention layers (``backprop.nlp.attention``): the book's API and attributes, values
checked against plain NumPy and central differences, dtypes and the error paths."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from backprop import BackwardBeforeForwardError
from backprop.nlp import Attention, AttentionWeight, TimeAttention, WeightSum

F32 = np.float32


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def _numerical(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of f() with respect to x, perturbed in place."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


@pytest.fixture
def states() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3)), rng.normal(size=(2, 5, 3))


def test_no_parameters() -> None:
    for cls in (WeightSum, AttentionWeight, Attention, TimeAttention):
        layer = cls()
        assert layer.params == [] and layer.grads == []


def test_weight_sum(states: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    hs = states[0]
    a = np.random.default_rng(1).normal(size=(2, 4))
    dc = np.random.default_rng(2).normal(size=(2, 3))
    layer = WeightSum()
    c = layer.forward(hs, a)
    np.testing.assert_allclose(c, np.einsum("nth,nt->nh", hs, a))
    dhs, da = layer.backward(dc)
    np.testing.assert_allclose(dhs, a[:, :, None] * dc[:, None, :])
    np.testing.assert_allclose(da, np.einsum("nth,nh->nt", hs, dc))


def test_attention_weight_matches_differences(states: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    hs, h, _ = (s.copy() for s in states)
    da = np.random.default_rng(3).normal(size=(2, 4))
    layer = AttentionWeight()
    a = layer.forward(hs, h)
    np.testing.assert_allclose(a, _softmax(np.einsum("nth,nh->nt", hs, h)))
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    dhs, dh = layer.backward(da)

    def loss() -> float:
        return float(np.sum(AttentionWeight().forward(hs, h) * da))

    np.testing.assert_allclose(dhs, _numerical(loss, hs), atol=1e-7)
    np.testing.assert_allclose(dh, _numerical(loss, h), atol=1e-7)


def test_attention_matches_differences_and_keeps_weights(
    states: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    hs, h, _ = (s.copy() for s in states)
    dout = np.random.default_rng(4).normal(size=(2, 3))
    layer = Attention()
    out = layer.forward(hs, h)
    assert isinstance(layer.attention_weight_layer, AttentionWeight)
    assert isinstance(layer.weight_sum_layer, WeightSum)
    assert layer.attention_weight is not None and layer.attention_weight.shape == (2, 4)
    np.testing.assert_allclose(out, np.einsum("nt,nth->nh", layer.attention_weight, hs))
    dhs, dh = layer.backward(dout)

    def loss() -> float:
        return float(np.sum(Attention().forward(hs, h) * dout))

    np.testing.assert_allclose(dhs, _numerical(loss, hs), atol=1e-7)
    np.testing.assert_allclose(dh, _numerical(loss, h), atol=1e-7)
    assert np.any(dh != 0)  # the decoder state does get a gradient


def test_time_attention_matches_differences(states: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    enc, _, dec = (s.copy() for s in states)
    dout = np.random.default_rng(5).normal(size=dec.shape)
    layer = TimeAttention()
    out = layer.forward(enc, dec)
    assert out.shape == dec.shape
    assert layer.layers is not None and len(layer.layers) == 5
    assert all(isinstance(x, Attention) for x in layer.layers)
    assert layer.attention_weights is not None and len(layer.attention_weights) == 5
    for t, a in enumerate(layer.attention_weights):
        np.testing.assert_allclose(a, _softmax(np.einsum("nth,nh->nt", enc, dec[:, t])))
    denc, ddec = layer.backward(dout)

    def loss() -> float:
        return float(np.sum(TimeAttention().forward(enc, dec) * dout))

    np.testing.assert_allclose(denc, _numerical(loss, enc), atol=1e-7)
    np.testing.assert_allclose(ddec, _numerical(loss, dec), atol=1e-7)


def test_softmax_is_stable() -> None:
    a = AttentionWeight().forward(np.array([[[1e3], [-1e3]]]), np.array([[1e3]]))
    np.testing.assert_array_equal(a, [[1.0, 0.0]])


def test_float32_is_kept(states: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    enc, h, dec = (s.astype(F32) for s in states)
    layer = TimeAttention()
    out = layer.forward(enc, dec)
    assert out.dtype == F32
    assert all(g.dtype == F32 for g in layer.backward(np.ones_like(dec)))
    ws = WeightSum()
    assert ws.forward(enc, np.ones((2, 4), dtype=F32)).dtype == F32
    assert all(g.dtype == F32 for g in ws.backward(np.ones((2, 3), dtype=F32)))
    at = Attention()
    assert at.forward(enc, h).dtype == F32
    assert all(g.dtype == F32 for g in at.backward(np.ones((2, 3), dtype=F32)))


def test_backward_before_forward() -> None:
    for layer, dout in (
        (WeightSum(), np.ones((1, 1))),
        (AttentionWeight(), np.ones((1, 1))),
        (Attention(), np.ones((1, 1))),
        (TimeAttention(), np.ones((1, 1, 1))),
    ):
        with pytest.raises(BackwardBeforeForwardError):
            layer.backward(dout)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"WeightSum\.forward: a of shape \(2, 3\)"):
        WeightSum().forward(np.ones((2, 4, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"AttentionWeight\.forward: hs of shape \(2, 4\)"):
        AttentionWeight().forward(np.ones((2, 4)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"AttentionWeight\.forward: h of shape \(2, 4\)"):
        AttentionWeight().forward(np.ones((2, 4, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"TimeAttention\.forward: hs_enc of shape \(2, 4, 3\) and hs_dec"):
        TimeAttention().forward(np.ones((2, 4, 3)), np.ones((2, 4, 2)))
    layer = TimeAttention()
    layer.forward(np.ones((2, 4, 3)), np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match=r"TimeAttention\.backward: dout of shape \(2, 4, 3\)"):
        layer.backward(np.ones((2, 4, 3)))
