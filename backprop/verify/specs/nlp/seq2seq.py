"""Rows for the models of ``backprop.nlp.seq2seq`` against ``reference.nlp.seq2seq``: each model's
``grads`` after ``forward(xs, ts)`` and ``backward()`` against ``jax.vjp`` of its loss. ``ts`` holds the
start symbol then the answer: the decoder reads ``ts[:, :-1]`` and is scored on ``ts[:, 1:]``."""

from __future__ import annotations

from backprop.nlp.seq2seq import AttentionSeq2seq, PeekySeq2seq, Seq2seq
from backprop.verify.row import ShapeDict
from backprop.verify.specs.nlp._models import DTYPE, data, entry, model_row, params, size

SECTION = (2, 8, 9)

ENCODER = ("enc_embed_W", "enc_lstm_Wx", "enc_lstm_Wh", "enc_lstm_b")
DECODER = ("dec_embed_W", "dec_lstm_Wx", "dec_lstm_Wh", "dec_lstm_b", "dec_affine_W", "dec_affine_b")


def _entry(n: int, t_in: int, t_out: int, v: int, d: int, h: int, peek: int, context: int) -> ShapeDict:
    """``peek``: H more inputs to the decoder's LSTM and affine (PeekyDecoder); ``context``: H more to
    the affine (the attention's context)."""
    weights = {
        "enc_embed_W": (v, d),
        "enc_lstm_Wx": (d, 4 * h),
        "enc_lstm_Wh": (h, 4 * h),
        "enc_lstm_b": (4 * h,),
        "dec_embed_W": (v, d),
        "dec_lstm_Wx": (d + peek, 4 * h),
        "dec_lstm_Wh": (h, 4 * h),
        "dec_lstm_b": (4 * h,),
        "dec_affine_W": (h + peek + context, v),
        "dec_affine_b": (v,),
    }
    return entry(
        weights, {"xs": (n, t_in), "ts": (n, t_out + 1)}, vocab_size=v, wordvec_size=d, hidden_size=h
    )


# (N, T_in, T_out, V, D, H), smallest first
_SHAPES = ((1, 1, 1, 2, 1, 1), (2, 3, 2, 5, 2, 3), (3, 4, 3, 8, 3, 4), (4, 2, 4, 6, 4, 2))
_ARGS = (size("vocab_size"), size("wordvec_size"), size("hidden_size"), DTYPE, *params(*ENCODER, *DECODER))
_CALL = "(vocab_size, wordvec_size, hidden_size).forward(xs (N, T_in), ts (N, T_out + 1)) -> loss"

ROWS = (
    model_row(
        "seq2seq",
        "seq2seq",
        Seq2seq,
        f"Seq2seq{_CALL}",
        (*_ARGS, *data("xs", "ts")),
        tuple(_entry(*s, peek=0, context=0) for s in _SHAPES),
    ),
    model_row(
        "seq2seq",
        "peeky_seq2seq",
        PeekySeq2seq,
        f"PeekySeq2seq{_CALL}",
        (*_ARGS, *data("xs", "ts")),
        tuple(_entry(*s, peek=s[-1], context=0) for s in _SHAPES),
    ),
    model_row(
        "seq2seq",
        "attention_seq2seq",
        AttentionSeq2seq,
        f"AttentionSeq2seq{_CALL}",
        (*_ARGS, *data("xs", "ts")),
        tuple(_entry(*s, peek=0, context=s[-1]) for s in _SHAPES),
    ),
)
