"""``backprop.nlp.negative_sampling``: the UnigramSampler on its own (its distribution, the target never
among its negatives, reproducibility, errors), and the API of EmbeddingDot and NegativeSamplingLoss
(params/grads kept in place, the tied W, dtypes, errors); the rows check the gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backprop import BackwardBeforeForwardError
from backprop.nlp import EmbeddingDot, NegativeSamplingLoss, UnigramSampler
from backprop.verify import verify
from tests.catalogue.nlp.negative_sampling import BookEmbeddingDot, BookNegativeSamplingEpsilon

F32 = np.float32
CORPUS = np.repeat(np.arange(5), [1, 3, 9, 27, 60])  # word w occurs 3**w times (w = 4: 60)
COUNTS = np.array([1, 3, 9, 27, 60], dtype=float)


def _expected(power: float, target: int) -> Any:
    """P(word | target) for one negative: count ** power, the target's share removed, renormalized."""
    p = COUNTS**power
    p[target] = 0
    return p / p.sum()


# ==== UnigramSampler =======================================================================================


@pytest.mark.parametrize("power", [0.75, 1.0, 0.5, 0.0])
def test_word_p_is_counts_to_the_power(power: float) -> None:
    sampler = UnigramSampler(CORPUS, power, 2)
    np.testing.assert_allclose(sampler.word_p, COUNTS**power / np.sum(COUNTS**power), rtol=1e-15)
    assert sampler.vocab_size == 5


@pytest.mark.slow
@pytest.mark.parametrize(("power", "target"), [(0.75, 4), (0.75, 0), (1.0, 2), (0.5, 3), (0.0, 1)])
def test_draws_follow_the_counts_to_the_power(power: float, target: int) -> None:
    """20000 single negatives for one target: each word's frequency within 4 standard errors of its
    probability, and the target never drawn."""
    n = 20_000
    drawn = UnigramSampler(CORPUS, power, 1, rng=1).get_negative_sample(np.full(n, target))
    freq = np.bincount(drawn[:, 0], minlength=5) / n
    p = _expected(power, target)
    assert freq[target] == 0
    np.testing.assert_array_less(np.abs(freq - p), 4 * np.sqrt(p * (1 - p) / n) + 1e-12)


@pytest.mark.slow
def test_the_power_flattens_the_distribution() -> None:
    """power < 1 raises rare words' share (the point of 0.75): the rarest word is drawn more often."""
    n = 20_000
    rare = [
        np.mean(UnigramSampler(CORPUS, power, 1, rng=2).get_negative_sample(np.full(n, 4)) == 0)
        for power in (1.0, 0.75, 0.5)
    ]
    assert rare[0] < rare[1] < rare[2]


@pytest.mark.parametrize("sample_size", [1, 3, 4])
def test_the_target_is_never_among_its_negatives_and_they_are_distinct(sample_size: int) -> None:
    target = np.tile(np.arange(5), 400)
    drawn = UnigramSampler(CORPUS, 0.75, sample_size, rng=3).get_negative_sample(target)
    assert drawn.shape == (2000, sample_size) and drawn.dtype == np.int32
    assert not np.any(drawn == target[:, None])
    assert all(len(set(row)) == sample_size for row in drawn.tolist())
    if sample_size == 4:  # every other word: each row is exactly the vocabulary without its target
        assert all(set(row) == set(range(5)) - {t} for row, t in zip(drawn.tolist(), target, strict=True))


def test_a_word_absent_from_the_corpus_is_never_drawn() -> None:
    sampler = UnigramSampler(np.array([0, 0, 2, 3, 3]), 0.75, 1, rng=4)
    assert sampler.vocab_size == 4 and sampler.word_p[1] == 0
    assert not np.any(sampler.get_negative_sample(np.zeros(500, dtype=int)) == 1)


def test_draws_are_reproducible_with_a_seed_or_the_global_generator() -> None:
    target = np.array([0, 1, 2, 3, 4, 4])
    a = UnigramSampler(CORPUS, 0.75, 2, rng=5).get_negative_sample(target)
    np.testing.assert_array_equal(a, UnigramSampler(CORPUS, 0.75, 2, rng=5).get_negative_sample(target))
    book = UnigramSampler(CORPUS, 0.75, 2)  # no rng: np.random, as in the book
    np.random.seed(0)
    first = book.get_negative_sample(target)
    np.random.seed(0)
    np.testing.assert_array_equal(book.get_negative_sample(target), first)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((np.array([0, 1, 1]), 0.75, 2), r"sample_size 2 needs at least 3 distinct words in corpus .* got 2"),
        ((np.array([0.0, 1.0]), 0.75, 1), r"corpus of shape \(2,\) and dtype float64 must be \(N,\) integer"),
        ((np.array([[0, 1]]), 0.75, 1), r"corpus of shape \(1, 2\)"),
        ((np.array([0, -1, 1]), 0.75, 1), r"must hold word ids >= 0"),
        ((np.array([], dtype=int), 0.75, 1), r"at least one"),
        ((CORPUS, -1.0, 1), r"power must be finite and >= 0, got -1.0"),
        ((CORPUS, 0.75, 1.5), r"sample_size must be an integer >= 0, got 1.5"),
    ],
)
def test_sampler_construction_errors(args: tuple[Any, ...], pattern: str) -> None:
    with pytest.raises(ValueError, match=r"UnigramSampler.__init__: .*" + pattern):
        UnigramSampler(*args)


@pytest.mark.parametrize(
    ("target", "pattern"),
    [
        (np.array([0, 5]), r"target of shape \(2,\) holds word ids outside \[0, 5\)"),
        (np.array([[0, 1]]), r"target of shape \(1, 2\) and dtype int64 must be \(N,\) integer word ids"),
        (np.array([0.0]), r"target of shape \(1,\) and dtype float64"),
    ],
)
def test_sampler_rejects_bad_targets(target: Any, pattern: str) -> None:
    with pytest.raises(ValueError, match=r"UnigramSampler.get_negative_sample: " + pattern):
        UnigramSampler(CORPUS, 0.75, 1).get_negative_sample(target)


# ==== EmbeddingDot =========================================================================================


def test_embedding_dot_hand_example_and_shared_lists() -> None:
    W = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    layer = EmbeddingDot(W)
    assert layer.params is layer.embed.params and layer.grads is layer.embed.grads and layer.params[0] is W
    grads = list(layer.grads)
    h, idx = np.array([[1.0, 2.0], [3.0, 4.0], [-1.0, 1.0]]), np.array([2, 1, 2])
    np.testing.assert_array_equal(layer.forward(h, idx), [5.0, 8.0, -2.0])
    dout = np.array([1.0, 0.5, 2.0])
    np.testing.assert_array_equal(layer.backward(dout), dout[:, None] * W[idx])
    # word 2 is scored twice: its gradient is the sum of both samples' rows
    np.testing.assert_array_equal(layer.grads[0], [[0.0, 0.0], [1.5, 2.0], [-1.0, 4.0]])
    assert layer.grads[0] is grads[0]


def test_embedding_dot_keeps_float32() -> None:
    layer = EmbeddingDot(np.ones((3, 2), dtype=F32))
    out = layer.forward(np.ones((2, 2), dtype=F32), np.array([0, 2], dtype=np.int32))
    assert out.dtype == F32 and layer.backward(np.ones(2)).dtype == F32 and layer.grads[0].dtype == F32


@pytest.mark.parametrize(
    ("h", "idx", "pattern"),
    [
        (
            np.ones((2, 3)),
            np.array([0, 1]),
            r"EmbeddingDot.forward: h of shape \(2, 3\) does not match W of shape \(4, 2\)",
        ),
        (
            np.ones((2, 2)),
            np.array([0, 1, 2]),
            r"idx of shape \(3,\) and dtype int64 must be \(2,\) integer word ids",
        ),
        (np.ones((2, 2)), np.array([0, 4]), r"Embedding.forward: word id 4"),
    ],
)
def test_embedding_dot_rejects_bad_inputs(h: Any, idx: Any, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        EmbeddingDot(np.ones((4, 2))).forward(h, idx)


# ==== NegativeSamplingLoss =================================================================================


def _softplus(x: Any) -> Any:
    return np.logaddexp(0.0, x)


def test_the_loss_and_the_tied_w() -> None:
    rng = np.random.default_rng(6)
    W, h, target = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)), np.array([4, 4, 0, 2])
    layer = NegativeSamplingLoss(W, CORPUS, power=0.75, sample_size=3, rng=7)
    assert len(layer.params) == 4 and all(p is W for p in layer.params)
    assert len({id(g) for g in layer.grads}) == 4  # one gradient array per EmbeddingDot
    grads = list(layer.grads)
    loss = layer.forward(h, target)
    neg = layer.negative_sample
    assert neg is not None and neg.shape == (4, 3) and not np.any(neg == target[:, None])
    score = np.einsum("nd,nkd->nk", h, W[np.c_[target, neg]])
    expected = (np.sum(_softplus(-score[:, 0])) + np.sum(_softplus(score[:, 1:]))) / 4
    assert loss == pytest.approx(expected, rel=1e-13)
    dh = layer.backward(2.0)
    dscore = 2.0 * (1 / (1 + np.exp(-score)) - np.c_[np.ones(4), np.zeros((4, 3))]) / 4
    np.testing.assert_allclose(dh, np.einsum("nk,nkd->nd", dscore, W[np.c_[target, neg]]), rtol=1e-12)
    dW = np.zeros_like(W)
    np.add.at(dW, np.c_[target, neg], np.einsum("nk,nd->nkd", dscore, h))
    np.testing.assert_allclose(np.sum(layer.grads, axis=0), dW, rtol=1e-12, atol=1e-15)
    assert all(a is b for a, b in zip(layer.grads, grads, strict=True))


def test_the_loss_keeps_float32_and_draws_reproducibly() -> None:
    W = np.linspace(-1, 1, 15, dtype=F32).reshape(5, 3)
    h, target = np.ones((2, 3), dtype=F32), np.array([1, 3])
    a = NegativeSamplingLoss(W, CORPUS, sample_size=2, rng=8)
    loss = a.forward(h, target)
    dh = a.backward()
    assert loss.dtype == F32 and dh.dtype == F32 and all(g.dtype == F32 for g in a.grads)
    b = NegativeSamplingLoss(W, CORPUS, sample_size=2, rng=8)
    assert b.forward(h, target) == loss
    np.testing.assert_array_equal(a.negative_sample, b.negative_sample)


def test_negative_sampling_errors() -> None:
    with pytest.raises(
        ValueError,
        match=r"NegativeSamplingLoss.__init__: corpus holds word ids up to 4 but W of shape \(3, 2\) has 3 rows",
    ):
        NegativeSamplingLoss(np.ones((3, 2)), CORPUS, sample_size=1)
    layer = NegativeSamplingLoss(np.ones((5, 2)), CORPUS, sample_size=1)
    with pytest.raises(
        BackwardBeforeForwardError, match=r"NegativeSamplingLoss.backward\(\) was called before"
    ):
        layer.backward()
    with pytest.raises(
        ValueError, match=r"NegativeSamplingLoss.forward: target of shape \(3,\) .* must be \(2,\)"
    ):
        layer.forward(np.ones((2, 2)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"NegativeSamplingLoss.forward: h of shape \(2,\) must be \(N, D\)"):
        layer.forward(np.ones(2), np.array([0, 1]))
    layer.forward(np.ones((2, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"NegativeSamplingLoss.backward: dout of shape \(2,\)"):
        layer.backward(np.ones(2))


# ==== the book's own code through the oracle ==============================================================


@pytest.mark.oracle
def test_the_books_negative_sampling_passes_with_the_epsilon_allowed() -> None:
    """Exactly the book's, SigmoidWithLoss's -log(p + 1e-7) included: the row reads its negatives from
    ``embed_dot_layers[1 + i].embed.idx``, and ``--allow epsilon`` matches its loss with those negatives."""
    report = verify(
        BookNegativeSamplingEpsilon, "negative_sampling_loss", max_examples=30, allow=("epsilon",)
    )
    assert report.passed, report.failure.render() if report.failure else report.error
    strict = verify(
        BookNegativeSamplingEpsilon, "negative_sampling_loss", max_examples=30, max_failures=1, scope=False
    )
    assert strict.failure is not None
    assert {m.check for m in strict.failure.mismatches} == {"loss"}


class EmbeddingDotFloat32(BookEmbeddingDot):
    """Book style with a dtype='f' buffer for the scores: right, but float32 whatever its input."""

    def forward(self, h: Any, idx: Any) -> Any:
        target_W = self.embed.forward(idx)
        out = np.empty(h.shape[0], dtype="f")
        out[...] = np.sum(target_W * h, axis=1)
        self.cache = (h, target_W)
        return out


@pytest.mark.oracle
def test_a_float32_only_layer_passes_in_float32_and_is_told_its_dtype_in_float64() -> None:
    assert verify(EmbeddingDotFloat32, "embedding_dot", max_examples=30, dtype="float32").passed
    report = verify(EmbeddingDotFloat32, "embedding_dot", max_examples=30, max_failures=1, scope=False)
    assert report.failure is not None
    assert [(m.check, m.diagnosis) for m in report.failure.mismatches] == [("out", "dtype")]
