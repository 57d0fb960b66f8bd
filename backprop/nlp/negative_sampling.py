"""Negative sampling (book 2, chapter 4, ``ch04/negative_sampling_layer.py``): EmbeddingDot,
UnigramSampler and NegativeSamplingLoss.

NegativeSamplingLoss scores the target word and ``sample_size`` negative words drawn from the corpus's
unigram distribution raised to ``power``, each with its own EmbeddingDot and SigmoidWithLoss, as the book
does. Those EmbeddingDot layers share one W: ``params`` lists it once per layer, and W's gradient is the
sum of the matching ``grads`` entries (what the book's ``remove_duplicate`` adds up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from backprop._errors import check_dout, like, not_ready
from backprop.nlp.base_model import Layer
from backprop.nlp.layers import Embedding, SigmoidWithLoss

__all__ = ["EmbeddingDot", "NegativeSamplingLoss", "UnigramSampler"]

Array = NDArray[Any]
if TYPE_CHECKING:  # an annotation only: numpy.random takes 15 ms to import, and --list imports this module
    Rng = np.random.Generator | int | None


def _word_ids(layer: str, name: str, value: ArrayLike, n: int | None = None) -> Array:
    """A 1-D integer array (of length ``n`` when given), or a ValueError naming the layer and the shape."""
    ids = np.asarray(value)
    if ids.ndim != 1 or ids.dtype.kind not in "iu" or (n is not None and ids.shape[0] != n):
        length = "N" if n is None else str(n)
        raise ValueError(
            f"{layer}: {name} of shape {ids.shape} and dtype {ids.dtype} must be ({length},) integer word ids"
        )
    return ids


class EmbeddingDot(Layer):
    """out[n] = W[idx[n]] . h[n], for h (N, D), idx (N,) word ids and W (V, D): the score of each word.

    backward(dout (N,)): dh = dout[:, None] * W[idx] (returned); dW = the rows dout[:, None] * h added at
    idx (``grads[0]``, shared with the inner Embedding).
    """

    def __init__(self, W: ArrayLike) -> None:
        self.embed = Embedding(W)
        self.params, self.grads = self.embed.params, self.embed.grads  # the Embedding's own lists
        self.cache: tuple[Array, Array] | None = None

    def forward(self, h: ArrayLike, idx: ArrayLike) -> Array:
        (W,) = self.params
        ha = np.asarray(h)
        if ha.ndim != 2 or ha.shape[1] != W.shape[1]:
            raise ValueError(
                f"EmbeddingDot.forward: h of shape {ha.shape} does not match W of shape {W.shape}; "
                f"expected (N, {W.shape[1]})"
            )
        _word_ids("EmbeddingDot.forward", "idx", idx, ha.shape[0])
        target_W = self.embed.forward(idx)
        out: Array = np.sum(target_W * ha, axis=1)
        self.cache = (ha, target_W)
        return out

    def backward(self, dout: ArrayLike) -> Array:
        if self.cache is None:
            raise not_ready("EmbeddingDot")
        h, target_W = self.cache
        check_dout("EmbeddingDot", dout, (h.shape[0],))
        d = np.asarray(dout).reshape(-1, 1)
        self.embed.backward(d * h)
        dh: Array = d * target_W
        return like(dh, h, target_W)


class UnigramSampler:
    """Draws negative words with probability proportional to count(word) ** power in ``corpus``.

    ``get_negative_sample(target)`` returns (N, sample_size) int32 word ids: row n holds ``sample_size``
    distinct words, none of them ``target[n]`` (its probability is set to 0 and the rest renormalized, as
    the book's CPU path does). The vocabulary is 0 .. max(corpus); a word absent from the corpus is never
    drawn (the book's ``len(counts)`` assumes the ids 0 .. V-1 all occur, and then agrees).
    Randomness: ``np.random.choice``, as in the book (``np.random.seed`` reproduces its draws), or the
    ``rng=`` keyword (not in the book), a ``numpy.random.Generator`` or a seed for one.
    """

    def __init__(self, corpus: ArrayLike, power: float, sample_size: int, *, rng: Rng = None) -> None:
        words = _word_ids("UnigramSampler.__init__", "corpus", corpus)
        if words.size == 0 or words.min() < 0:
            raise ValueError(
                f"UnigramSampler.__init__: corpus of shape {words.shape} must hold word ids >= 0, at least one"
            )
        if not np.isfinite(power) or power < 0:
            raise ValueError(f"UnigramSampler.__init__: power must be finite and >= 0, got {power!r}")
        if int(sample_size) != sample_size or sample_size < 0:
            raise ValueError(
                f"UnigramSampler.__init__: sample_size must be an integer >= 0, got {sample_size!r}"
            )
        counts = np.bincount(words)
        present = int(np.count_nonzero(counts))
        if sample_size > present - 1:
            raise ValueError(
                f"UnigramSampler.__init__: sample_size {sample_size} needs at least {sample_size + 1} distinct "
                f"words in corpus (a target's negatives are distinct and exclude it), got {present}"
            )
        self.sample_size = int(sample_size)
        self.vocab_size = counts.shape[0]
        weights = np.where(counts > 0, counts.astype(np.float64) ** power, 0.0)
        self.word_p: NDArray[np.float64] = weights / weights.sum()
        self.rng = rng if rng is None or isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def get_negative_sample(self, target: ArrayLike) -> NDArray[np.int32]:
        ids = _word_ids("UnigramSampler.get_negative_sample", "target", target)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(
                f"UnigramSampler.get_negative_sample: target of shape {ids.shape} holds word ids outside "
                f"[0, {self.vocab_size}), the corpus's vocabulary"
            )
        negative_sample = np.zeros((ids.shape[0], self.sample_size), dtype=np.int32)
        choice = np.random.choice if self.rng is None else self.rng.choice
        for i, word in enumerate(ids):
            p = self.word_p.copy()
            p[word] = 0
            p /= p.sum()
            negative_sample[i, :] = choice(self.vocab_size, size=self.sample_size, replace=False, p=p)
        return negative_sample


class NegativeSamplingLoss(Layer):
    """loss = (1/N) sum_n [softplus(-W[target_n] . h_n) + sum_k softplus(W[neg_nk] . h_n)]: the binary
    cross entropy of the target word (label 1) and ``sample_size`` negative words (label 0) per sample.

    ``forward(h (N, D), target (N,))`` draws the negatives with a ``UnigramSampler`` and keeps them in
    ``self.negative_sample`` (N, sample_size). ``backward(dout=1)`` returns dh and writes one W gradient per
    EmbeddingDot into ``grads``; W's gradient is their sum (``params`` lists W sample_size + 1 times).
    ``rng=`` (keyword only, not in the book) is passed to the sampler.
    """

    def __init__(
        self, W: ArrayLike, corpus: ArrayLike, power: float = 0.75, sample_size: int = 5, *, rng: Rng = None
    ) -> None:
        self.sample_size = sample_size
        self.sampler = UnigramSampler(corpus, power, sample_size, rng=rng)
        self.loss_layers = [SigmoidWithLoss() for _ in range(sample_size + 1)]
        self.embed_dot_layers = [EmbeddingDot(W) for _ in range(sample_size + 1)]
        vocab = self.embed_dot_layers[0].params[0].shape[0]
        if self.sampler.vocab_size > vocab:
            raise ValueError(
                f"NegativeSamplingLoss.__init__: corpus holds word ids up to {self.sampler.vocab_size - 1} "
                f"but W of shape {self.embed_dot_layers[0].params[0].shape} has {vocab} rows"
            )
        self._collect(*self.embed_dot_layers)
        self.negative_sample: NDArray[np.int32] | None = None

    def forward(self, h: ArrayLike, target: ArrayLike) -> np.floating[Any]:
        ha = np.asarray(h)
        if ha.ndim != 2:
            raise ValueError(f"NegativeSamplingLoss.forward: h of shape {ha.shape} must be (N, D)")
        ids = _word_ids("NegativeSamplingLoss.forward", "target", target, ha.shape[0])
        batch_size = ids.shape[0]
        negative_sample = self.sampler.get_negative_sample(ids)
        score = self.embed_dot_layers[0].forward(ha, ids)
        loss = self.loss_layers[0].forward(score, np.ones(batch_size, dtype=np.int32))
        negative_label = np.zeros(batch_size, dtype=np.int32)
        for i in range(self.sample_size):
            score = self.embed_dot_layers[1 + i].forward(ha, negative_sample[:, i])
            loss += self.loss_layers[1 + i].forward(score, negative_label)
        self.negative_sample = negative_sample
        return loss

    def backward(self, dout: ArrayLike = 1) -> Array:
        if self.negative_sample is None:
            raise not_ready("NegativeSamplingLoss")
        check_dout("NegativeSamplingLoss", dout, ())
        dh = self.embed_dot_layers[0].backward(self.loss_layers[0].backward(dout))
        for loss_layer, embed_dot in zip(self.loss_layers[1:], self.embed_dot_layers[1:], strict=True):
            dh = dh + embed_dot.backward(loss_layer.backward(dout))
        return dh
