"""Rows for the language models of ``backprop.nlp.rnnlm`` against ``reference.nlp.rnnlm``: each model's
``grads`` after ``forward(xs, ts)`` (from a zero state: the row calls ``reset_state()`` first) and
``backward()`` against ``jax.vjp`` of its loss. BetterRnnlm's embedding is tied to its output layer
transposed: its gradient is ``grads[0] + grads[7].T``; its dropout masks are captured."""

from __future__ import annotations

from backprop.nlp.rnnlm import BetterRnnlm, Rnnlm, SimpleRnnlm
from backprop.verify.lazy import lazy
from backprop.verify.model import dropout_masks
from backprop.verify.row import ShapeDict
from backprop.verify.specs.nlp._models import DTYPE, constant, data, entry, model_row, params, size

SECTION = (2, 6, 5)

_SIZES = (size("vocab_size"), size("wordvec_size"), size("hidden_size"), DTYPE)
_DATA = data("xs", "ts")


def _entry(n: int, t: int, v: int, d: int, h: int, gates: int, **weights: tuple[int, ...]) -> ShapeDict:
    return entry(
        {**weights},
        {"xs": (n, t), "ts": (n, t)},
        vocab_size=v,
        wordvec_size=d,
        hidden_size=h,
    )


def _simple(n: int, t: int, v: int, d: int, h: int) -> ShapeDict:
    names = ("embed_W", "rnn_Wx", "rnn_Wh", "rnn_b", "affine_W", "affine_b")
    shapes = ((v, d), (d, h), (h, h), (h,), (h, v), (v,))
    return _entry(n, t, v, d, h, 1, **dict(zip(names, shapes, strict=True)))


def _lstm(n: int, t: int, v: int, d: int, h: int) -> ShapeDict:
    names = ("embed_W", "lstm_Wx", "lstm_Wh", "lstm_b", "affine_W", "affine_b")
    shapes = ((v, d), (d, 4 * h), (h, 4 * h), (4 * h,), (h, v), (v,))
    return _entry(n, t, v, d, h, 4, **dict(zip(names, shapes, strict=True)))


def _better(n: int, t: int, v: int, h: int) -> ShapeDict:
    weights = {"embed_W": (v, h), "affine_b": (v,)}
    for i in (1, 2):
        weights |= {f"lstm_Wx{i}": (h, 4 * h), f"lstm_Wh{i}": (h, 4 * h), f"lstm_b{i}": (4 * h,)}
    return _entry(n, t, v, h, h, 4, **weights)


# smallest first: T = 1, N = 1, H = 1 each appear
_SHAPES = ((1, 1, 2, 1, 1), (2, 3, 5, 2, 3), (3, 4, 8, 3, 4), (4, 2, 6, 4, 2), (1, 4, 3, 2, 1))

ROWS = (
    model_row(
        "rnnlm",
        "simple_rnnlm",
        SimpleRnnlm,
        "SimpleRnnlm(vocab_size, wordvec_size, hidden_size).forward(xs (N, T), ts (N, T)) -> loss",
        (*_SIZES, *params("embed_W", "rnn_Wx", "rnn_Wh", "rnn_b", "affine_W", "affine_b"), *_DATA),
        tuple(_simple(*s) for s in _SHAPES),
        graph=lazy("reference.nlp.rnnlm", "simple_rnnlm_graph"),
    ),
    model_row(
        "rnnlm",
        "rnnlm",
        Rnnlm,
        "Rnnlm(vocab_size, wordvec_size, hidden_size).forward(xs (N, T), ts (N, T)) -> loss",
        (*_SIZES, *params("embed_W", "lstm_Wx", "lstm_Wh", "lstm_b", "affine_W", "affine_b"), *_DATA),
        tuple(_lstm(*s) for s in _SHAPES),
        graph=lazy("reference.nlp.rnnlm", "rnnlm_graph"),
    ),
    model_row(
        "rnnlm",
        "better_rnnlm",
        BetterRnnlm,
        "BetterRnnlm(vocab_size, wordvec_size=hidden_size, hidden_size, dropout_ratio=0.5)"
        ".forward(xs (N, T), ts (N, T), train_flg=True) -> loss",
        (
            *_SIZES,
            constant("dropout_ratio", 0.5),
            *params(
                "embed_W", "lstm_Wx1", "lstm_Wh1", "lstm_b1", "lstm_Wx2", "lstm_Wh2", "lstm_b2", "affine_b"
            ),
            *_DATA,
        ),
        (
            _better(1, 1, 2, 1),
            _better(2, 3, 5, 2),
            _better(3, 4, 8, 4),
            _better(4, 2, 6, 3),
            _better(1, 4, 3, 1),
        ),
        capture=dropout_masks,
    ),
)
