"""Catalogue for book 2's chapter-4 rows: embedding_dot and negative_sampling_loss.

The book-style NegativeSamplingLoss keeps the book's structure (``embed_dot_layers``, ``loss_layers``, no
attribute for the negative words, which the row then reads from each EmbeddingDot's Embedding); the
vectorized one scores all words at once, lists W once in ``params`` and keeps ``self.negative_sample``.
Both draw their negatives with the library's UnigramSampler, whose own tests are in
``tests/test_nlp_negative_sampling.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.nlp import UnigramSampler
from tests.catalogue import Array, caught, passes, stable_sigmoid
from tests.catalogue.nlp.layers import (
    BookEmbedding,
    BookSigmoidWithLoss,
    EmbeddingNotZeroed,
    EmbeddingOverwrites,
    SigmoidLossLogaddexp,
)

# ==== EmbeddingDot ========================================================================================


@passes(against="embedding_dot", why="the book's, through a book Embedding")
class BookEmbeddingDot:
    """The book's EmbeddingDot: an inner Embedding whose params and grads lists it shares."""

    embedding: type = BookEmbedding

    def __init__(self, W: Array) -> None:
        self.embed = self.embedding(W)
        self.params = self.embed.params
        self.grads = self.embed.grads
        self.cache: tuple[Array, Array] | None = None

    def forward(self, h: Array, idx: Array) -> Array:
        target_W = self.embed.forward(idx)
        self.cache = (h, target_W)
        return np.sum(target_W * h, axis=1)

    def backward(self, dout: Array) -> Array:
        assert self.cache is not None
        h, target_W = self.cache
        dout = dout.reshape(dout.shape[0], 1)
        self.embed.backward(dout * h)
        return dout * target_W


@passes(against="embedding_dot", why="einsum, np.add.at into grads[0]")
class EmbeddingDotEinsum:
    """einsum for the scores and both gradients; the rows of dW added with np.add.at into grads[0]."""

    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.h: Array | None = None
        self.idx: Array | None = None

    def forward(self, h: Array, idx: Array) -> Array:
        self.h, self.idx = h, idx
        return np.einsum("nd,nd->n", self.params[0][idx], h)

    def backward(self, dout: Array) -> Array:
        assert self.h is not None and self.idx is not None
        dW = self.grads[0]
        dW[...] = 0
        np.add.at(dW, self.idx, np.einsum("n,nd->nd", dout, self.h))
        return np.einsum("n,nd->nd", dout, self.params[0][self.idx])


@caught(
    against="embedding_dot",
    check="dh",
    kinds={"value", "shape"},
    diagnosis="other",
    why="dh = dout * h instead of dout * W[idx]",
)
class EmbeddingDotDhFromH(BookEmbeddingDot):
    """dh = dout * h: the dW line copied for dh, with h where the target rows of W belong."""

    def backward(self, dout: Array) -> Array:
        assert self.cache is not None
        h, _ = self.cache
        dout = dout.reshape(dout.shape[0], 1)
        self.embed.backward(dout * h)
        return dout * h  # BUG


@caught(
    against="embedding_dot",
    check="grads[0]",
    kinds={"value"},
    diagnosis="other",
    why="the inner Embedding's dW[idx] = dout",
)
class EmbeddingDotOverwrites(BookEmbeddingDot):
    """The inner Embedding overwrites (``dW[idx] = dout``): a word scored twice gets one sample's row."""

    embedding = EmbeddingOverwrites


# ==== NegativeSamplingLoss ================================================================================


@passes(
    against="negative_sampling_loss",
    why="the book's structure (negatives read from embed_dot_layers), a stable SigmoidWithLoss",
)
class BookNegativeSamplingLoss:
    """The book's structure: one EmbeddingDot and one SigmoidWithLoss for the target and each negative,
    int32 labels, dh summed over them; the negatives are not kept as an attribute."""

    sigmoid_loss: type = SigmoidLossLogaddexp
    label_dtype: Any = np.int32
    sampler_class: type = UnigramSampler

    def __init__(self, W: Array, corpus: Array, power: float = 0.75, sample_size: int = 5) -> None:
        self.sample_size = sample_size
        self.sampler = self.sampler_class(corpus, power, sample_size)
        self.loss_layers = [self.sigmoid_loss() for _ in range(sample_size + 1)]
        self.embed_dot_layers = [BookEmbeddingDot(W) for _ in range(sample_size + 1)]
        self.params: list[Array] = []
        self.grads: list[Array] = []
        for layer in self.embed_dot_layers:
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, h: Array, target: Array) -> Any:
        batch_size = target.shape[0]
        negative_sample = self.sampler.get_negative_sample(target)
        score = self.embed_dot_layers[0].forward(h, target)
        loss = self.loss_layers[0].forward(score, np.ones(batch_size, dtype=self.label_dtype))
        negative_label = np.zeros(batch_size, dtype=self.label_dtype)
        for i in range(self.sample_size):
            score = self.embed_dot_layers[1 + i].forward(h, negative_sample[:, i])
            loss += self.loss_layers[1 + i].forward(score, negative_label)
        return loss

    def backward(self, dout: float = 1) -> Array:
        dh: Any = 0
        for l0, l1 in zip(self.loss_layers, self.embed_dot_layers, strict=True):
            dh += l1.backward(l0.backward(dout))
        return np.asarray(dh)


@passes(against="negative_sampling_loss", why="the book's structure with dtype='f' label buffers")
class NegativeSamplingFloatLabels(BookNegativeSamplingLoss):
    """Labels allocated as ``dtype='f'`` buffers: float32 0.0 / 1.0, which promote to float64 in a
    float64 run and stay float32 in a float32 one."""

    label_dtype = "f"


class BookNegativeSamplingEpsilon(BookNegativeSamplingLoss):
    """Exactly the book's: its SigmoidWithLoss computes -log(p + 1e-7). Not in ``CORRECT``: it is right only
    under ``--allow epsilon`` (``tests/test_nlp_negative_sampling.py``)."""

    sigmoid_loss = BookSigmoidWithLoss


@passes(
    against="negative_sampling_loss",
    why="einsum over all words at once, W listed once in params, one np.add.at",
)
class NegativeSamplingVectorized:
    """All 1 + sample_size words scored at once with einsum; W listed once in params, its gradient from
    one np.add.at; the loss as a softplus of the signed scores."""

    sampler_class: type = UnigramSampler

    def __init__(self, W: Array, corpus: Array, power: float = 0.75, sample_size: int = 5) -> None:
        self.sampler = self.sampler_class(corpus, power, sample_size)
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.negative_sample: Array | None = None
        self.cache: tuple[Array, Array, Array, Array] | None = None

    def forward(self, h: Array, target: Array) -> Any:
        self.negative_sample = self.sampler.get_negative_sample(target)
        words = np.concatenate([target[:, None], self.negative_sample], axis=1)
        sign = np.where(np.arange(words.shape[1]) == 0, 1, -1).astype(h.dtype)
        rows = self.params[0][words]  # (N, 1 + k, D)
        score = np.einsum("nkd,nd->nk", rows, h)
        self.cache = (h, words, rows, sign)
        return np.sum(np.logaddexp(0, -sign * score)) / h.shape[0]

    def backward(self, dout: float = 1) -> Array:
        assert self.cache is not None
        h, words, rows, sign = self.cache
        score = np.einsum("nkd,nd->nk", rows, h)
        # d softplus(-s x) / dx = -s sigmoid(-s x): sigmoid(x) - 1 for the target, sigmoid(x) for negatives
        dscore = -sign * stable_sigmoid(-sign * score) * (dout / h.shape[0])
        dW = self.grads[0]
        dW[...] = 0
        np.add.at(dW, words, np.einsum("nk,nd->nkd", dscore, h))
        return np.einsum("nk,nkd->nd", dscore, rows)


@caught(
    against="negative_sampling_loss",
    # W's gradient (tied: the sum of the grads entries): shrinking ends on one negative (grads[0] and
    # grads[1]), where W's negative row is 0 and dh is right but dW is not
    check="grads[0]+grads[1]",
    kinds={"value"},
    diagnosis="other",
    why="backward uses only the positive example's gradient",
)
class NegativeSamplingPositiveOnly(BookNegativeSamplingLoss):
    """backward runs only the target's layers: the negative words' gradients are left out."""

    def backward(self, dout: float = 1) -> Array:
        dscore = self.loss_layers[0].backward(dout)
        return np.asarray(self.embed_dot_layers[0].backward(dscore))


@caught(
    against="negative_sampling_loss",
    check="dh",
    kinds={"value"},
    diagnosis="other",
    why="dh = instead of dh += over the sample_size + 1 layers",
)
class NegativeSamplingLastOnly(BookNegativeSamplingLoss):
    """``dh = l1.backward(dscore)`` instead of ``+=``: dh keeps only the last negative's gradient."""

    def backward(self, dout: float = 1) -> Array:
        dh: Any = 0
        for l0, l1 in zip(self.loss_layers, self.embed_dot_layers, strict=True):
            dh = l1.backward(l0.backward(dout))  # BUG
        return np.asarray(dh)


@caught(
    against="negative_sampling_loss",
    check="state",
    kinds={"missing"},
    diagnosis="other",
    why="negative_sample[:, 0] scored for every negative: the negatives repeat",
)
class NegativeSamplingOneColumn(BookNegativeSamplingLoss):
    """``negative_sample[:, 0]`` for every negative: the same word scored sample_size times (the reference,
    given the words the layer used, agreed with it until the row checked that they are distinct)."""

    def forward(self, h: Array, target: Array) -> Any:
        batch_size = target.shape[0]
        negative_sample = self.sampler.get_negative_sample(target)
        score = self.embed_dot_layers[0].forward(h, target)
        loss = self.loss_layers[0].forward(score, np.ones(batch_size, dtype=self.label_dtype))
        negative_label = np.zeros(batch_size, dtype=self.label_dtype)
        for i in range(self.sample_size):
            score = self.embed_dot_layers[1 + i].forward(h, negative_sample[:, 0])  # BUG
            loss += self.loss_layers[1 + i].forward(score, negative_label)
        return loss


@caught(
    against="negative_sampling_loss",
    check="state",
    kinds={"stale"},
    diagnosis="stale",
    why="the negatives drawn once and reused by every later forward",
)
class NegativeSamplingDrawnOnce(BookNegativeSamplingLoss):
    """The negatives drawn on the first forward and kept on self: every later batch trains on the same
    words (its gradients match those very words, so only the row's redraw check sees it)."""

    kept: Array | None = None

    def forward(self, h: Array, target: Array) -> Any:
        if self.kept is None or self.kept.shape[0] != target.shape[0]:  # BUG
            self.kept = self.sampler.get_negative_sample(target)
        batch_size = target.shape[0]
        score = self.embed_dot_layers[0].forward(h, target)
        loss = self.loss_layers[0].forward(score, np.ones(batch_size, dtype=self.label_dtype))
        negative_label = np.zeros(batch_size, dtype=self.label_dtype)
        for i in range(self.sample_size):
            score = self.embed_dot_layers[1 + i].forward(h, self.kept[:, i])
            loss += self.loss_layers[1 + i].forward(score, negative_label)
        return loss


class _EmbeddingDotNotZeroed(BookEmbeddingDot):
    embedding = EmbeddingNotZeroed


@caught(
    against="negative_sampling_loss",
    # W's gradient (tied): shrinking ends on one negative, grads[0] and grads[1]
    check="grads[0]+grads[1]",
    kinds={"value"},
    diagnosis="other",
    why="the book's epsilon loss, allowed, over Embeddings whose dW is never zeroed",
    options={"allow": ("epsilon",)},
)
class NegativeSamplingEpsilonNotZeroed(BookNegativeSamplingLoss):
    """The book's loss (-log(p + 1e-7)), allowed by --allow epsilon, over Embeddings that add into dW
    without zeroing it: each backward adds to the last one's gradient (the allowed loss once stopped the
    later stages, so that this passed)."""

    sigmoid_loss = BookSigmoidWithLoss

    def __init__(self, W: Array, corpus: Array, power: float = 0.75, sample_size: int = 5) -> None:
        super().__init__(W, corpus, power, sample_size)
        self.embed_dot_layers = [_EmbeddingDotNotZeroed(W) for _ in range(sample_size + 1)]
        self.params, self.grads = [], []
        for layer in self.embed_dot_layers:
            self.params += layer.params
            self.grads += layer.grads


# ---- samplers: the law of the negatives ------------------------------------------------------------------


class BookSampler:
    """The book's UnigramSampler (its CPU path): word_p = counts ** power normalized; each sample's
    negatives drawn by np.random.choice without replacement, the target's probability set to 0."""

    def __init__(self, corpus: Array, power: float, sample_size: int) -> None:
        counts = np.bincount(np.asarray(corpus))
        self.vocab_size = counts.shape[0]
        self.sample_size = sample_size
        self.word_p = self.weights(counts.astype(np.float64), power)

    def weights(self, counts: Array, power: float) -> Array:
        p = counts**power
        return np.asarray(p / p.sum())

    def get_negative_sample(self, target: Array) -> Array:
        out = np.zeros((target.shape[0], self.sample_size), dtype=np.int32)
        for i, word in enumerate(target):
            p = self.word_p.copy()
            p[word] = 0
            p /= p.sum()
            out[i] = np.random.choice(self.vocab_size, size=self.sample_size, replace=False, p=p)
        return out


class UniformSampler(BookSampler):
    """Every word equally likely: ``np.ones`` where the powered counts belong."""

    def weights(self, counts: Array, power: float) -> Array:
        return np.full(counts.shape, 1.0 / counts.shape[0])


class CountsSampler(BookSampler):
    """``counts / counts.sum()``: the power is never applied."""

    def weights(self, counts: Array, power: float) -> Array:
        return np.asarray(counts / counts.sum())


class UnnormalizedSampler(BookSampler):
    """``counts ** power / counts.sum()``, drawn by inverse CDF: the powered counts are divided by the
    counts' sum, so p sums to less than 1 and the uniform draws beyond its CDF land on the last word
    (np.random.choice would have refused such a p)."""

    def weights(self, counts: Array, power: float) -> Array:
        return np.asarray(counts**power / counts.sum())

    def get_negative_sample(self, target: Array) -> Array:
        cdf = np.cumsum(self.word_p)
        out = np.zeros((target.shape[0], self.sample_size), dtype=np.int32)
        for i, word in enumerate(target):
            row: list[int] = []
            while len(row) < self.sample_size:
                w = min(int(np.searchsorted(cdf, np.random.rand(), side="right")), self.vocab_size - 1)
                if w != word and w not in row:
                    row.append(w)
            out[i] = row
        return out


class InverseCdfSampler(BookSampler):
    """Right, written otherwise: one uniform per draw through the normalized CDF, a draw that hits the
    target or a word already drawn rejected (the law of np.random.choice without replacement)."""

    def get_negative_sample(self, target: Array) -> Array:
        cdf = np.cumsum(self.word_p)
        out = np.zeros((target.shape[0], self.sample_size), dtype=np.int32)
        for i, word in enumerate(target):
            row: list[int] = []
            while len(row) < self.sample_size:
                w = int(np.searchsorted(cdf, np.random.rand() * cdf[-1], side="right"))
                if w < self.vocab_size and w != word and w not in row:
                    row.append(w)
            out[i] = row
        return out


class TargetKeptSampler(BookSampler):
    """The target's probability is never set to 0 (the book's GPU path, but still without replacement):
    a sample's target can be its own negative."""

    def get_negative_sample(self, target: Array) -> Array:
        out = np.zeros((target.shape[0], self.sample_size), dtype=np.int32)
        for i in range(target.shape[0]):
            out[i] = np.random.choice(self.vocab_size, size=self.sample_size, replace=False, p=self.word_p)
        return out


@caught(
    against="negative_sampling_loss",
    check="state",
    kinds={"missing"},
    diagnosis="other",
    why="negatives drawn uniformly: the unigram counts are ignored",
)
class NegativeSamplingUniform(BookNegativeSamplingLoss):
    """The negatives drawn uniformly from the vocabulary (the unigram counts ignored)."""

    sampler_class = UniformSampler


@caught(
    against="negative_sampling_loss",
    check="state",
    kinds={"missing"},
    diagnosis="other",
    why="negatives drawn with p = counts: power is ignored",
)
class NegativeSamplingNoPower(BookNegativeSamplingLoss):
    """The negatives drawn with p = counts / sum: ``power`` is ignored."""

    sampler_class = CountsSampler


@caught(
    against="negative_sampling_loss",
    check="state",
    kinds={"missing"},
    diagnosis="other",
    why="counts ** 0.75 not normalized to sum to 1 (divided by the counts' sum), drawn by inverse CDF",
)
class NegativeSamplingUnnormalized(BookNegativeSamplingLoss):
    """counts ** 0.75 divided by the counts' sum, not its own: the leftover mass lands on the last word."""

    sampler_class = UnnormalizedSampler


@caught(
    against="negative_sampling_loss",
    check="state",
    kinds={"missing"},
    diagnosis="other",
    why="the target's probability not set to 0, read through self.negative_sample",
)
class NegativeSamplingTargetKept(NegativeSamplingVectorized):
    """Keeps ``self.negative_sample`` (no book sub-layers to read the target from), drawn without setting
    the target's probability to 0: a target can be its own negative."""

    sampler_class = TargetKeptSampler


@passes(
    against="negative_sampling_loss",
    why="the vectorized loss over its own sampler: inverse CDF with rejection of the target and repeats",
)
class NegativeSamplingInverseCdf(NegativeSamplingVectorized):
    """Right: the vectorized loss over a sampler of its own (inverse CDF with rejection)."""

    sampler_class = InverseCdfSampler
