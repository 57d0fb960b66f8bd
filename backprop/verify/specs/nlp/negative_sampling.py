"""Rows for ``backprop.nlp.negative_sampling`` (EmbeddingDot, NegativeSamplingLoss) against
``reference.nlp.negative_sampling``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import numpy as np

from backprop.nlp import negative_sampling
from backprop.verify.draw import Without
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row, ShapeDict, Shapes
from backprop.verify.specs.nlp.layers import INT_BITS, word_ids
from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st

SECTION = (2, 4, 2)  # 4.2: EmbeddingDot, UnigramSampler, NegativeSamplingLoss

_FEATURES = (Feature.BATCH, Feature.LARGE, Feature.EXTREME, Feature.NEGATIVE_ZERO)

# ==== EmbeddingDot ========================================================================================


def _dot(n: int, d: int, vocab: int, bits: int = 64) -> ShapeDict:
    return {"h": (n, d), "W": (vocab, d), "idx": (n,), "out": (n,), INT_BITS: (bits,)}


EMBEDDING_DOT_POOL: tuple[ShapeDict, ...] = (
    _dot(1, 1, 1),  # the smallest
    _dot(2, 2, 1, 32),  # one word: every index repeats
    _dot(3, 2, 2),
    _dot(4, 3, 2, 32),
    _dot(2, 3, 5),
    _dot(5, 2, 3, 32),
    _dot(3, 3, 3),  # square
    _dot(8, 4, 3),
    _dot(32, 3, 5, 32),  # a large batch
    _dot(4, 32, 3),  # a large dimension
    _dot(6, 2, 40),  # a large vocabulary: repeats are rare
)
"""h (N, D), W (V, D), idx (N,), out (N,): vocabularies smaller than the batch in most entries."""

EMBEDDING_DOT = Row(
    name="embedding_dot",
    layer=negative_sampling.EmbeddingDot,
    reference=lazy("reference.nlp.negative_sampling", "embedding_dot"),
    graph=lazy("reference.nlp.negative_sampling", "embedding_dot_graph"),
    signature="EmbeddingDot(W[V,D]).forward(h[N,D], idx[N] of ints in [0, V)) -> [N]   (backward -> dh; grads[0] = dW)",
    args=(
        Arg(name="W", to="init", grad="dW", domain=(-1e3, 1e3)),
        Arg(name="h", grad="dh", domain=(-1e3, 1e3), batch=True),
        Arg(name="idx", values=word_ids("idx"), batch=True),
    ),
    shapes=EMBEDDING_DOT_POOL,
    features=_FEATURES,
)

# ==== NegativeSamplingLoss ================================================================================

NEGATIVES = "negative_sample"
"""The captured negative words, (N, sample_size): the entry's shape for them fixes ``sample_size``."""


def _loss(n: int, d: int, vocab: int, sample_size: int, corpus: int, bits: int = 64) -> ShapeDict:
    return {
        "h": (n, d),
        "W": (vocab, d),
        "target": (n,),
        "corpus": (corpus,),
        NEGATIVES: (n, sample_size),
        "loss": (),
        INT_BITS: (bits,),
    }


NEGATIVE_SAMPLING_POOL: tuple[ShapeDict, ...] = (
    _loss(1, 1, 2, 1, 2),  # the smallest: one negative, the only other word
    _loss(2, 2, 3, 1, 5, 32),
    _loss(3, 2, 4, 2, 6),
    _loss(4, 3, 3, 2, 7, 32),  # every other word is a negative
    _loss(2, 3, 6, 5, 10),  # the book's sample_size
    _loss(5, 2, 7, 5, 12, 32),
    _loss(8, 4, 6, 3, 9),
    _loss(1, 5, 8, 5, 16, 32),  # a batch of one
    _loss(32, 4, 10, 5, 20),  # a large batch
    _loss(3, 32, 7, 2, 8, 32),  # a large dimension
    _loss(4, 2, 40, 5, 60),  # a large vocabulary
)
"""h (N, D), W (V, D), target (N,), a corpus of every word 0 .. V-1 and more, sample_size negatives per
sample (V > sample_size: they are distinct and exclude the target). Targets and negatives repeat across
the batch, and a target of one sample is a negative of another."""


def corpus(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
    """Every word id 0 .. V-1 once (the book's sampler counts the vocabulary as the distinct ids), then
    more drawn ids: the unigram distribution differs from entry to entry."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    vocab, length = shapes["W"][0], shapes["corpus"][0]
    extra = hnp.arrays(np.int64, (length - vocab,), elements=st.integers(0, vocab - 1))
    return extra.map(lambda more: np.concatenate([np.arange(vocab, dtype=np.int64), more]))


def negative_samples(layer: Any) -> dict[str, Any]:
    """The negative words the layer drew in its last forward, (N, sample_size), for the reference.

    Read from ``layer.negative_sample`` (the name of the book's local variable), or else from the book's
    structure: the indices held by ``embed_dot_layers[1 + i].embed.idx``, one column per negative. Raises
    ``LookupError`` naming the layer's attributes when neither is there, and ``ValueError`` when the
    negatives cannot be right: they repeat or hold the target here, or the layer's class fails the
    sampler probe (``check_sampler``). The oracle reports either as the layer's failure.
    """
    words = _read_negatives(layer)
    _distinct(layer, words)
    check_sampler(type(layer))
    return {NEGATIVES: words.astype(np.int64)}


def _read_negatives(layer: Any) -> Any:
    """The negatives of the layer's last forward as an (N, sample_size) integer array (see
    ``negative_samples``)."""
    held = getattr(layer, NEGATIVES, None)
    if held is None:
        dots: Any = getattr(layer, "embed_dot_layers", None)
        try:
            held = np.stack([np.asarray(dot.embed.idx) for dot in dots[1:]], axis=1)
        except (AttributeError, IndexError, TypeError, ValueError):
            attrs = ", ".join(sorted(getattr(layer, "__dict__", {}))) or "none"
            raise LookupError(
                f"{type(layer).__name__} keeps no negative samples after forward(h, target): the row reads "
                f"self.negative_sample (N, sample_size), or the book's embed_dot_layers[1 + i].embed.idx "
                f"(attributes: {attrs})"
            ) from None
    words = np.asarray(held)
    if words.ndim != 2 or words.dtype.kind not in "iu":
        raise ValueError(
            f"{type(layer).__name__}.negative_sample of shape {words.shape} and dtype {words.dtype} is not "
            "(N, sample_size) integer word ids"
        )
    return words


def _distinct(layer: Any, words: Any) -> None:
    """The book's sampler draws each sample's negatives without replacement and never its target: negatives
    that repeat (one column used for every negative) or hold the target are the layer's mistake, which
    the reference, given those very words, would not see. The target is read from the book's
    ``embed_dot_layers[0].embed.idx`` when the layer has it."""
    for n, row in enumerate(words):
        if len(set(row.tolist())) < len(row):
            raise ValueError(
                f"the negative samples of sample {n} repeat a word ({row.tolist()}): each sample's "
                "sample_size negatives must be distinct words (the book draws them with replace=False)"
            )
    try:
        target = np.asarray(layer.embed_dot_layers[0].embed.idx).reshape(-1)
    except (AttributeError, IndexError, TypeError, ValueError):
        return
    if target.shape[0] == words.shape[0]:
        hit = np.nonzero(np.any(words == target[:, None], axis=1))[0]
        if hit.size:
            n = int(hit[0])
            raise ValueError(
                f"the negative samples of sample {n} ({words[n].tolist()}) hold its target word "
                f"{int(target[n])}: the book's sampler sets the target's probability to 0"
            )


# ---- the sampler probe: the law of the negatives ---------------------------------------------------------

PROBE_COUNTS = (16, 1, 16)
"""The probe's corpus counts words 0, 1 and 2 this many times. Against target 0 the one negative is word 2
with probability 16**0.75 / (1 + 16**0.75) = 8/9; 16/17 if the counts are not raised to the power, 1/2 for
a uniform draw. Word 0, the target, is as frequent as word 2: a sampler that leaves it in draws it about
half the time."""
PROBE_DRAWS = 3000
"""Samples of target 0 in the probe's one forward call: the count of word 2 has mean 2667 and sd 17 for a
right sampler, 2824 (sd 13) when the counts are not powered, and the 1e-9 threshold lies near 2770, 4 sd
short of the latter; a uniform draw (1500) is 70 sd away."""
PROBE_CYCLE = 300
"""Further samples whose targets cycle through 0, 1, 2, each of which must stay out of its negatives."""
SAMPLER_P = 1e-9
"""A count of word 2 this unlikely under p = 8/9 (either tail, exact binomial) is the layer's mistake."""
PROBE_SEED = 20160923
"""The global random state the probe runs under (restored afterwards): it never moves the run's draws,
and a layer drawing from np.random gives the same verdict on every run."""

_probed: WeakKeyDictionary[type, str] = WeakKeyDictionary()
"""The probe's finding per class ("" when none): it depends on the class alone, so it runs once per class
and process (about 0.1 s for the book's sampler, 3300 calls of np.random.choice)."""


def check_sampler(layer: type) -> None:
    """Raise ``ValueError`` when the class's own negatives, drawn on the probe's corpus, cannot follow
    count ** power with the target left out (see ``probe_sampler``)."""
    if layer not in _probed:
        _probed[layer] = probe_sampler(layer) or ""
    if _probed[layer]:
        raise ValueError(_probed[layer])


def probe_sampler(layer: type) -> str | None:
    """What is wrong with the negatives a fresh ``layer`` draws, built as the row builds it with
    sample_size = 1 on the corpus ``PROBE_COUNTS`` and called once on PROBE_DRAWS samples of target 0 and
    PROBE_CYCLE of targets 0, 1, 2; None when nothing is, or when the probe cannot run (the other stages
    judge such a layer). With one negative per sample its law is exact whatever way a right layer draws
    without replacement: count ** 0.75 over the words other than the target, renormalized."""
    from backprop.verify.specs.normalization import binomial_tails
    from backprop.verify.stages import other_random_state

    counts = np.asarray(PROBE_COUNTS)
    vocab = counts.shape[0]
    target = np.concatenate([np.zeros(PROBE_DRAWS, np.int64), np.arange(PROBE_CYCLE, dtype=np.int64) % vocab])
    values = {
        "W": np.linspace(-1.0, 1.0, 2 * vocab).reshape(vocab, 2),
        "corpus": np.repeat(np.arange(vocab, dtype=np.int64), counts),
        "power": 0.75,
        "sample_size": 1,
        "h": np.linspace(-1.0, 1.0, 2 * target.shape[0]).reshape(-1, 2),
        "target": target,
    }
    row = NEGATIVE_SAMPLING_LOSS
    try:
        with other_random_state(PROBE_SEED):
            instance = row.build(layer, values)
            row.call(instance, values)
        words = _read_negatives(instance)
    except Exception:
        return None
    if words.shape != (target.shape[0], 1) or words.min() < 0 or words.max() >= vocab:
        return None
    words = words[:, 0]
    name = f"{layer.__name__}(W, corpus, power=0.75, sample_size=1)"
    corpus = f"words 0, 1, 2 counted {', '.join(map(str, PROBE_COUNTS))} times"
    hit = np.nonzero(words == target)[0]
    if hit.size:
        n = int(hit[0])
        return (
            f"{name} drew its target as its own negative: sample {n}'s negative is its target word "
            f"{int(target[n])} ({hit.size} of {target.shape[0]} samples, on a corpus of {corpus}); the book's "
            "sampler sets the target's probability to 0"
        )
    weights = counts.astype(np.float64) ** 0.75
    p = float(weights[2] / (weights[1] + weights[2]))
    k = int(np.count_nonzero(words[:PROBE_DRAWS] == 2))
    if min(binomial_tails(k, PROBE_DRAWS, p)) >= SAMPLER_P:
        return None
    ratio = k / max(PROBE_DRAWS - k, 1)
    seems = math.log(ratio) / math.log(PROBE_COUNTS[2] / PROBE_COUNTS[1]) if k > 0 else -math.inf
    return (
        f"the negatives do not follow count ** power: {name} on a corpus of {corpus}, target 0, drew word 2 "
        f"for {k} of {PROBE_DRAWS} samples, where p(word) = count ** 0.75 / sum gives "
        f"{p * PROBE_DRAWS:.0f} ({p:.3f}) and a draw this far off has probability below {SAMPLER_P:g}; "
        f"the draws look like power = {seems:.2f} (0 is a uniform draw, 1 the counts themselves): raise the "
        "counts to the power, normalize them to sum to 1, then set the target's to 0 and renormalize"
    )


def _sample_size(shapes: Shapes) -> int:
    return int(shapes[NEGATIVES][1])


def _power(shapes: Shapes) -> float:
    return 0.75


NEGATIVE_SAMPLING_LOSS = Row(
    name="negative_sampling_loss",
    layer=negative_sampling.NegativeSamplingLoss,
    reference=lazy("reference.nlp.negative_sampling", "negative_sampling_loss"),
    graph=lazy("reference.nlp.negative_sampling", "negative_sampling_loss_graph"),
    signature=(
        "NegativeSamplingLoss(W[V,D], corpus, power=0.75, sample_size=k).forward(h[N,D], target[N]) -> "
        "loss of the target and k drawn negatives   (backward(dout=1) -> dh; W tied: sum of grads)"
    ),
    args=(
        Arg(name="W", to="init", grad="dW", domain=(-10.0, 10.0)),
        Arg(name="corpus", to="init", values=corpus),
        Arg(name="power", to="init_kw", fixed=_power),
        Arg(name="sample_size", to="init_kw", fixed=_sample_size),
        Arg(name="h", grad="dh", domain=(-10.0, 10.0), batch=True),
        Arg(name="target", values=word_ids("target"), batch=True),
    ),
    shapes=NEGATIVE_SAMPLING_POOL,
    outputs=("loss",),
    loss=True,
    features=(Feature.BATCH, Feature.LARGE, Feature.NEGATIVE_ZERO),
    conventions=(
        "the negative words are the layer's own draws, read after forward (self.negative_sample, or the "
        "book's embed_dot_layers[1 + i].embed.idx)",
        "W is listed once per EmbeddingDot in params: its gradient is the sum of those grads entries",
        "the loss is exact for any score; the book's SigmoidWithLoss (-log(p + 1e-7)) passes with --allow "
        "epsilon in float64",
    ),
    capture=negative_samples,
    epsilon=lazy("reference.nlp.negative_sampling", "negative_sampling_loss_epsilon"),
)

ROWS = (EMBEDDING_DOT, NEGATIVE_SAMPLING_LOSS)
