"""Rows for the word2vec models of ``backprop.nlp.cbow`` against ``reference.nlp.cbow``: each model's
``grads`` after ``forward(contexts, target)`` and ``backward()`` against ``jax.vjp`` of its loss. W_in is
shared by every context layer (W_out by every negative-sampling layer): the gradient read is the sum of
its ``grads`` entries. The negative samples the model drew are captured and given to the reference.
The book's three models compute their loss as ``-log(y + 1e-7)`` (its ``cross_entropy_error``), with
right gradients: each row's ``--allow epsilon`` accepts that loss."""

from __future__ import annotations

import numpy as np

from backprop.nlp.cbow import CBOW, SimpleCBOW, SkipGram
from backprop.verify.lazy import lazy
from backprop.verify.model import negative_samples
from backprop.verify.row import Arg, ShapeDict, Shapes
from backprop.verify.specs.nlp._models import DTYPE, data, entry, model_row, one_hot, params, size

SECTION = (2, 4, 3)


def _simple(n: int, v: int, h: int) -> ShapeDict:
    return entry(
        {"W_in": (v, h), "W_out": (h, v)},
        {"contexts": (n, 2, v), "target": (n, v)},
        vocab_size=v,
        hidden_size=h,
    )


def _sampled(n: int, v: int, h: int, window: int) -> ShapeDict:
    """V >= 6: the book's sampler draws 5 negatives without replacement, never the target."""
    return entry(
        {"W_in": (v, h), "W_out": (v, h)},
        {"contexts": (n, 2 * window), "target": (n,)},
        vocab_size=v,
        hidden_size=h,
        window_size=window,
    )


def corpus(shapes: Shapes) -> np.ndarray:
    """Every word of the vocabulary, the first half twice: the sampler's distribution is not uniform."""
    v = int(shapes["vocab_size"][0])
    return np.concatenate([np.arange(v), np.arange(v // 2)]).astype(np.int32)


SAMPLED_POOL = (_sampled(1, 6, 1, 1), _sampled(3, 7, 2, 1), _sampled(2, 8, 4, 2), _sampled(5, 6, 3, 1))
_SAMPLED_ARGS = (
    size("vocab_size"),
    size("hidden_size"),
    size("window_size"),
    Arg(name="corpus", to="init_kw", fixed=corpus),
    DTYPE,
    *params("W_in", "W_out"),
    *data("contexts", "target"),
)

ROWS = (
    model_row(
        "cbow",
        "simple_cbow",
        SimpleCBOW,
        "SimpleCBOW(vocab_size, hidden_size).forward(contexts (N, 2, V) one-hot, target (N, V) one-hot) -> loss",
        (
            size("vocab_size"),
            size("hidden_size"),
            DTYPE,
            *params("W_in", "W_out"),
            Arg(name="contexts", values=one_hot("contexts"), batch=True),
            Arg(name="target", values=one_hot("target"), batch=True),
        ),
        (_simple(1, 2, 1), _simple(3, 5, 2), _simple(4, 8, 4), _simple(6, 7, 3)),
        epsilon=True,
    ),
    model_row(
        "cbow",
        "cbow",
        CBOW,
        "CBOW(vocab_size, hidden_size, window_size, corpus).forward(contexts (N, 2w), target (N,)) -> loss",
        _SAMPLED_ARGS,
        SAMPLED_POOL,
        capture=negative_samples,
        epsilon=True,
        graph=lazy("reference.nlp.cbow", "cbow_graph"),
    ),
    model_row(
        "cbow",
        "skip_gram",
        SkipGram,
        "SkipGram(vocab_size, hidden_size, window_size, corpus).forward(contexts (N, 2w), target (N,)) -> loss",
        _SAMPLED_ARGS,
        SAMPLED_POOL,
        capture=negative_samples,
        epsilon=True,
        graph=lazy("reference.nlp.cbow", "skip_gram_graph"),
    ),
)
