"""The library's time layers (``backprop.nlp.time_layers``): the book's API, hand-checked values, in-place
grads, dtypes, the ignored labels, dropout's masks and the error paths."""

from __future__ import annotations

import numpy as np
import pytest

from backprop import BackwardBeforeForwardError
from backprop.nlp import TimeAffine, TimeDropout, TimeEmbedding, TimeSigmoidWithLoss, TimeSoftmaxWithLoss

F32 = np.float32


# ==== TimeEmbedding =======================================================================================


def test_embedding_gathers_rows() -> None:
    W = np.arange(12, dtype=float).reshape(4, 3)
    layer = TimeEmbedding(W)
    out = layer.forward(np.array([[0, 3], [2, 0]]))
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[0, 1], W[3])
    np.testing.assert_array_equal(out[1, 0], W[2])
    out[...] = -1  # the output is a copy: writing into it leaves W alone
    assert W[0, 0] == 0


def test_embedding_accumulates_repeated_ids_in_place() -> None:
    W = np.zeros((3, 2))
    layer = TimeEmbedding(W)
    assert layer.params[0] is W and layer.W is W
    buffer = layer.grads[0]
    layer.forward(np.array([[1, 1, 0], [1, 2, 1]]))
    dout = np.arange(12, dtype=float).reshape(2, 3, 2)
    assert layer.backward(dout) is None
    assert layer.grads[0] is buffer  # written into, never rebound
    expected = np.zeros((3, 2))
    for n in range(2):
        for t in range(3):
            expected[[[1, 1, 0], [1, 2, 1]][n][t]] += dout[n, t]
    np.testing.assert_array_equal(buffer, expected)
    # a second batch replaces the gradient, it does not add to it
    layer.forward(np.array([[2]]))
    layer.backward(np.ones((1, 1, 2)))
    np.testing.assert_array_equal(buffer, [[0, 0], [0, 0], [1, 1]])


def test_embedding_keeps_float32() -> None:
    layer = TimeEmbedding(np.ones((3, 2), dtype=F32))
    out = layer.forward(np.array([[0, 2]]))
    assert out.dtype == F32
    layer.backward(np.ones((1, 2, 2), dtype=F32))
    assert layer.grads[0].dtype == F32


@pytest.mark.parametrize(
    ("xs", "match"),
    [
        (np.array([0, 1]), r"TimeEmbedding\.forward: xs of shape \(2,\)"),
        (np.array([[0, 3]]), r"outside \[0, 3\)"),
        (np.array([[-1, 0]]), r"holds -1"),
        (np.array([[0.5, 1.0]]), r"must hold integers"),
    ],
)
def test_embedding_rejects_bad_ids(xs: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TimeEmbedding(np.zeros((3, 2))).forward(xs)


def test_embedding_backward_checks() -> None:
    layer = TimeEmbedding(np.zeros((3, 2)))
    with pytest.raises(BackwardBeforeForwardError):
        layer.backward(np.ones((1, 1, 2)))
    layer.forward(np.array([[0, 1]]))
    with pytest.raises(ValueError, match=r"TimeEmbedding\.backward: dout of shape \(1, 1, 2\)"):
        layer.backward(np.ones((1, 1, 2)))


# ==== TimeAffine ==========================================================================================


def test_affine_values_and_grads_in_place() -> None:
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(3, 2)), rng.normal(size=2)
    x, dout = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 2))
    layer = TimeAffine(W, b)
    buffers = list(layer.grads)
    out = layer.forward(x)
    np.testing.assert_allclose(out, np.einsum("ntd,dm->ntm", x, W) + b)
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, np.einsum("ntm,dm->ntd", dout, W))
    np.testing.assert_allclose(buffers[0], np.einsum("ntd,ntm->dm", x, dout))
    np.testing.assert_allclose(buffers[1], dout.sum(axis=(0, 1)))
    assert all(g is buf for g, buf in zip(layer.grads, buffers, strict=True))


def test_affine_keeps_float32() -> None:
    layer = TimeAffine(np.ones((3, 2), dtype=F32), np.zeros(2, dtype=F32))
    out = layer.forward(np.ones((1, 2, 3), dtype=F32))
    assert out.dtype == F32
    assert layer.backward(np.ones((1, 2, 2), dtype=F32)).dtype == F32


def test_affine_errors() -> None:
    layer = TimeAffine(np.ones((3, 2)), np.zeros(2))
    with pytest.raises(BackwardBeforeForwardError):
        layer.backward(np.ones((1, 1, 2)))
    with pytest.raises(ValueError, match=r"TimeAffine\.forward: x of shape \(2, 3\)"):
        layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"D = 3"):
        layer.forward(np.ones((1, 2, 4)))


# ==== TimeSoftmaxWithLoss =================================================================================


def _log_softmax(x: np.ndarray) -> np.ndarray:
    s = x - x.max(axis=-1, keepdims=True)
    return np.asarray(s - np.log(np.exp(s).sum(axis=-1, keepdims=True)))


def test_softmax_loss_ignores_minus_one() -> None:
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(2, 3, 4))
    ts = np.array([[0, -1, 3], [-1, 2, 1]])
    layer = TimeSoftmaxWithLoss()
    assert layer.params == [] and layer.grads == [] and layer.ignore_label == -1
    loss = layer.forward(xs, ts)
    logp = _log_softmax(xs)
    kept = [(0, 0), (0, 2), (1, 1), (1, 2)]
    assert loss == pytest.approx(-sum(logp[n, t, ts[n, t]] for n, t in kept) / 4)
    dx = layer.backward(0.5)
    for n, t in kept:
        expected = np.exp(logp[n, t])
        expected[ts[n, t]] -= 1
        np.testing.assert_allclose(dx[n, t], 0.5 * expected / 4)
    np.testing.assert_array_equal(dx[0, 1], 0)
    np.testing.assert_array_equal(dx[1, 0], 0)


def test_softmax_loss_one_hot_matches_labels() -> None:
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(2, 2, 3))
    ts = np.array([[0, 2], [1, 1]])
    by_label, by_one_hot = TimeSoftmaxWithLoss(), TimeSoftmaxWithLoss()
    assert by_label.forward(xs, ts) == pytest.approx(by_one_hot.forward(xs, np.eye(3)[ts]))
    np.testing.assert_allclose(by_label.backward(), by_one_hot.backward())


def test_softmax_loss_all_ignored_is_zero_not_nan() -> None:
    layer = TimeSoftmaxWithLoss()
    loss = layer.forward(np.ones((2, 3, 4)), np.full((2, 3), -1))
    assert loss == 0.0 and not np.signbit(loss)
    dx = layer.backward()
    assert np.all(dx == 0) and dx.shape == (2, 3, 4)


def test_softmax_loss_is_stable_and_keeps_float32() -> None:
    layer = TimeSoftmaxWithLoss()
    xs = np.array([[[1e4, -1e4, 0.0]]], dtype=F32)
    loss = layer.forward(xs, np.array([[1]]))
    assert loss.dtype == F32 and loss == pytest.approx(2e4)
    dx = layer.backward(F32(2.0))
    assert dx.dtype == F32 and np.all(np.isfinite(dx))
    np.testing.assert_allclose(dx, [[[2.0, -2.0, 0.0]]], atol=1e-6)


def test_softmax_loss_errors() -> None:
    layer = TimeSoftmaxWithLoss()
    with pytest.raises(BackwardBeforeForwardError):
        layer.backward()
    with pytest.raises(ValueError, match=r"xs of shape \(2, 3\)"):
        layer.forward(np.ones((2, 3)), np.zeros((2,), int))
    with pytest.raises(ValueError, match=r"ts of shape \(2, 2\)"):
        layer.forward(np.ones((2, 3, 4)), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match=r"holds 4"):
        layer.forward(np.ones((1, 1, 4)), np.array([[4]]))
    with pytest.raises(ValueError, match=r"holds -2"):
        layer.forward(np.ones((1, 1, 4)), np.array([[-2]]))
    layer.forward(np.ones((1, 1, 4)), np.array([[0]]))
    with pytest.raises(ValueError, match=r"dout of shape \(2,\)"):
        layer.backward(np.ones(2))


# ==== TimeSigmoidWithLoss =================================================================================


def test_sigmoid_loss_values() -> None:
    xs = np.array([[0.0, 2.0], [-1.0, 3.0]])
    ts = np.array([[1, 0], [0, 1]])
    layer = TimeSigmoidWithLoss()
    loss = layer.forward(xs, ts)
    y = 1 / (1 + np.exp(-xs))
    expected = -np.mean(ts * np.log(y) + (1 - ts) * np.log(1 - y))
    assert loss == pytest.approx(expected)
    np.testing.assert_allclose(layer.backward(3.0), 3.0 * (y - ts) / 4)


def test_sigmoid_loss_is_stable_and_keeps_float32() -> None:
    layer = TimeSigmoidWithLoss()
    xs = np.array([[1e4, -1e4]], dtype=F32)
    loss = layer.forward(xs, np.array([[0, 1]]))
    assert loss.dtype == F32 and loss == pytest.approx(1e4)
    dx = layer.backward()
    assert dx.dtype == F32
    np.testing.assert_allclose(dx, [[0.5, -0.5]])


def test_sigmoid_loss_errors() -> None:
    layer = TimeSigmoidWithLoss()
    with pytest.raises(BackwardBeforeForwardError):
        layer.backward()
    with pytest.raises(ValueError, match=r"TimeSigmoidWithLoss\.forward: xs of shape \(2, 2\) and ts"):
        layer.forward(np.ones((2, 2)), np.ones((2, 3)))


# ==== TimeDropout =========================================================================================


def test_dropout_is_inverted_and_keeps_its_mask() -> None:
    layer = TimeDropout(0.75, rng=0)
    assert layer.params == [] and layer.grads == [] and layer.train_flg is True
    xs = np.ones((4, 5, 6))
    out = layer.forward(xs)
    assert layer.mask is not None
    assert set(np.unique(layer.mask)) <= {0.0, 4.0}
    np.testing.assert_array_equal(out, xs * layer.mask)
    assert 0 < np.count_nonzero(out) < out.size
    dout = np.full(xs.shape, 2.0)
    np.testing.assert_array_equal(layer.backward(dout), dout * layer.mask)


def test_dropout_rng_makes_masks_reproducible_and_global_seed_works() -> None:
    xs = np.ones((3, 4, 5))
    a, b = TimeDropout(rng=7).forward(xs), TimeDropout(rng=7).forward(xs)
    np.testing.assert_array_equal(a, b)
    np.random.seed(3)
    c = TimeDropout().forward(xs)
    np.random.seed(3)
    np.testing.assert_array_equal(c, TimeDropout().forward(xs))


def test_dropout_expected_value_is_the_input() -> None:
    out = TimeDropout(0.5, rng=1).forward(np.ones((100, 10, 10)))
    assert out.mean() == pytest.approx(1.0, abs=0.05)


def test_dropout_test_mode_is_identity() -> None:
    layer = TimeDropout(0.5, rng=0)
    layer.train_flg = False
    xs = np.arange(6.0).reshape(1, 2, 3)
    out = layer.forward(xs)
    np.testing.assert_array_equal(out, xs)
    assert out is not xs
    dout = np.ones_like(xs)
    np.testing.assert_array_equal(layer.backward(dout), dout)


def test_dropout_keeps_float32() -> None:
    layer = TimeDropout(0.2, rng=0)
    out = layer.forward(np.ones((2, 3, 4), dtype=F32))
    assert out.dtype == F32 and layer.mask is not None and layer.mask.dtype == F32
    assert layer.backward(np.ones((2, 3, 4), dtype=F32)).dtype == F32


def test_dropout_errors() -> None:
    with pytest.raises(ValueError, match=r"TimeDropout\.__init__: dropout_ratio"):
        TimeDropout(1.0)
    layer = TimeDropout()
    with pytest.raises(BackwardBeforeForwardError):
        layer.backward(np.ones((1, 1, 1)))
    layer.forward(np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match=r"TimeDropout\.backward: dout of shape"):
        layer.backward(np.ones((1, 2)))


# ==== the row's meaning of extreme: logits far apart ======================================================


class _LogOfSoftmax:
    """TimeSoftmaxWithLoss as book 2 writes it: the softmax of each step (max subtracted), then np.log of
    the label's probability with no epsilon, which is -inf once that probability underflows to 0."""

    def __init__(self) -> None:
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        self.cache: tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]] | None = None

    def forward(self, xs: np.ndarray, ts: np.ndarray) -> float:
        n, t, v = xs.shape
        labels = (ts.argmax(axis=2) if ts.ndim == 3 else ts).reshape(n * t)
        kept = labels != -1
        e = np.exp(xs.reshape(n * t, v) - xs.reshape(n * t, v).max(axis=1, keepdims=True))
        ys = e / e.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = -np.sum(np.log(ys[np.arange(n * t), labels]) * kept) / kept.sum()
        self.cache = (labels, ys, kept, xs.shape)
        return float(loss)

    def backward(self, dout: float = 1) -> np.ndarray:
        assert self.cache is not None
        labels, ys, kept, shape = self.cache
        dx = ys.copy()
        dx[np.arange(len(labels)), labels] -= 1
        dx *= dout / kept.sum()
        dx *= kept[:, None]
        return dx.reshape(shape).astype(ys.dtype)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_log_of_softmax_is_right_without_extreme_logits(dtype: str) -> None:
    """The book's np.log(softmax) fails only where one step's logits are far apart: the scope search says
    so in the row's own words, and ``--without extreme`` (logits less than 80 apart) passes it."""
    from backprop.verify import verify

    report = verify(_LogOfSoftmax, "time_softmax_with_loss", max_examples=60, dtype=dtype, max_failures=1)
    assert not report.passed
    assert report.passes_without == ("extreme",)
    assert "right on logits less than 80 apart" in report.scope_sentence()
    within = verify(
        _LogOfSoftmax, "time_softmax_with_loss", max_examples=60, dtype=dtype, without=["extreme"]
    )
    assert within.passed, within.failure.render() if within.failure else within.error


def test_without_extreme_draws_logits_less_than_the_gap_apart_below_1e3() -> None:
    from hypothesis import given, settings

    from backprop.verify.registry import get_row
    from backprop.verify.specs.nlp.layers import LOGIT_GAP
    from backprop.verify.vocabulary import Feature

    row = get_row("time_softmax_with_loss")
    arg = next(a for a in row.args if a.name == "xs")
    spreads = []

    @settings(max_examples=60, database=None, deadline=None)
    @given(arg.strategy({"xs": (3, 2, 5), "ts": (3, 2)}, np.dtype("float32"), frozenset({Feature.EXTREME})))
    def draw(xs: np.ndarray) -> None:
        assert xs.dtype == np.float32
        assert np.max(np.abs(xs)) < 1e3
        spreads.append(float(np.max(np.ptp(xs.astype(np.float64), axis=-1))))
        assert Feature.EXTREME not in row.features_of({"xs": xs, "ts": np.zeros((3, 2), dtype=np.int64)})

    draw()
    assert max(spreads) < LOGIT_GAP
    far = np.array([[[0.0, LOGIT_GAP]]])
    assert Feature.EXTREME in row.features_of({"xs": far, "ts": np.zeros((1, 1), dtype=np.int64)})
