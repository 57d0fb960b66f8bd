"""Sequence-to-sequence models of book 2, chapters 7 and 8: ``Encoder``, ``Decoder``, ``Seq2seq``,
``PeekyDecoder``, ``PeekySeq2seq``, ``AttentionEncoder``, ``AttentionDecoder`` and ``AttentionSeq2seq``.

``forward(xs, ts) -> loss``: the encoder reads ``xs`` (N, T_in); the decoder is fed ``ts[:, :-1]`` and
scored against ``ts[:, 1:]`` (teacher forcing; ``ts[:, 0]`` is the start symbol). ``backward(dout=1)``,
``params``/``grads`` lists (the encoder's, then the decoder's) and ``generate(xs, start_id,
sample_size)`` (greedy decoding of one sample) as in the book. Weights are drawn as the book draws them,
in ``dtype`` (``'f'`` by default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from backprop._errors import not_ready
from backprop.nlp.attention import TimeAttention
from backprop.nlp.base_model import BaseModel, Layer, float_dtype
from backprop.nlp.recurrent import TimeLSTM
from backprop.nlp.time_layers import TimeAffine, TimeEmbedding, TimeSoftmaxWithLoss

__all__ = [
    "AttentionDecoder",
    "AttentionEncoder",
    "AttentionSeq2seq",
    "Decoder",
    "Encoder",
    "PeekyDecoder",
    "PeekySeq2seq",
    "Seq2seq",
]

Array = NDArray[Any]


def _weights(V: int, D: int, H: int, dt: np.dtype[Any], lstm_in: int, affine_in: int) -> list[Array]:
    """embed_W, lstm Wx, Wh, b, affine W, b, drawn as the book draws them."""
    rn = np.random.randn
    return [
        (rn(V, D) / 100).astype(dt),
        (rn(lstm_in, 4 * H) / np.sqrt(lstm_in)).astype(dt),
        (rn(H, 4 * H) / np.sqrt(H)).astype(dt),
        np.zeros(4 * H, dtype=dt),
        (rn(affine_in, V) / np.sqrt(affine_in)).astype(dt),
        np.zeros(V, dtype=dt),
    ]


def _greedy(step: Callable[[int], Array], start_id: int, sample_size: int) -> list[int]:
    """The books' greedy decoding: sample_size ids, each the argmax of the scores ``step`` gives for the
    one before (the first from start_id)."""
    sampled: list[int] = []
    sample_id = start_id
    for _ in range(sample_size):
        sample_id = int(np.argmax(step(sample_id).flatten()))
        sampled.append(sample_id)
    return sampled


def _ids(x: Any) -> Array:
    return np.array(x, dtype=np.int32).reshape(1, 1)


class Encoder(Layer):
    """TimeEmbedding then a stateless TimeLSTM; ``forward`` returns the last hidden state (N, H)."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: DTypeLike = "f") -> None:
        V, D, H = vocab_size, wordvec_size, hidden_size
        dt = float_dtype(dtype, type(self).__name__)
        embed_W, Wx, Wh, b, _, _ = _weights(V, D, H, dt, D, H)
        self.embed = TimeEmbedding(embed_W)
        self.lstm = TimeLSTM(Wx, Wh, b, stateful=False)
        self._collect(self.embed, self.lstm)
        self.hs: Array | None = None

    def forward(self, xs: Array) -> Any:
        xs = self.embed.forward(xs)
        hs = self.lstm.forward(xs)
        self.hs = hs
        return hs[:, -1, :]

    def backward(self, dh: Array) -> Any:
        if self.hs is None:
            raise not_ready(type(self).__name__)
        dhs = np.zeros_like(self.hs)
        dhs[:, -1, :] = dh  # only the last step's state reached the decoder
        dout = self.lstm.backward(dhs)
        return self.embed.backward(dout)


class Decoder(Layer):
    """TimeEmbedding, a TimeLSTM started from the encoder's h, TimeAffine; ``backward`` returns dh."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: DTypeLike = "f") -> None:
        V, D, H = vocab_size, wordvec_size, hidden_size
        dt = float_dtype(dtype, "Decoder")
        embed_W, Wx, Wh, b, affine_W, affine_b = _weights(V, D, H, dt, D, H)
        self.embed = TimeEmbedding(embed_W)
        self.lstm = TimeLSTM(Wx, Wh, b, stateful=True)
        self.affine = TimeAffine(affine_W, affine_b)
        self._collect(self.embed, self.lstm, self.affine)

    def forward(self, xs: Array, h: Array) -> Any:
        self.lstm.set_state(h)
        out = self.embed.forward(xs)
        out = self.lstm.forward(out)
        return self.affine.forward(out)

    def backward(self, dscore: Array) -> Any:
        dout = self.affine.backward(dscore)
        dout = self.lstm.backward(dout)
        self.embed.backward(dout)
        return self.lstm.dh

    def generate(self, h: Array, start_id: int, sample_size: int) -> list[int]:
        self.lstm.set_state(h)

        def step(sample_id: int) -> Array:
            return self.affine.forward(self.lstm.forward(self.embed.forward(_ids(sample_id))))

        return _greedy(step, start_id, sample_size)


class Seq2seq(BaseModel):
    """Encoder, Decoder and TimeSoftmaxWithLoss (section 7.2)."""

    encoder: Any
    decoder: Any

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: DTypeLike = "f") -> None:
        self._build(Encoder, Decoder, vocab_size, wordvec_size, hidden_size, dtype)

    def _build(self, encoder: type, decoder: type, V: int, D: int, H: int, dtype: DTypeLike) -> None:
        self.encoder = encoder(V, D, H, dtype=dtype)
        self.decoder = decoder(V, D, H, dtype=dtype)
        self.softmax = TimeSoftmaxWithLoss()
        self._collect(self.encoder, self.decoder)

    def forward(self, xs: Array, ts: Array) -> Any:
        ts = np.asarray(ts)
        if ts.ndim != 2 or ts.shape[1] < 2:
            raise ValueError(
                f"{type(self).__name__}.forward: ts of shape {ts.shape}; expected (N, T) with T >= 2 "
                "(a start symbol, then the answer)"
            )
        decoder_xs, decoder_ts = ts[:, :-1], ts[:, 1:]
        h = self.encoder.forward(xs)
        score = self.decoder.forward(decoder_xs, h)
        return self.softmax.forward(score, decoder_ts)

    def backward(self, dout: Any = 1) -> Any:
        dout = self.softmax.backward(dout)
        dh = self.decoder.backward(dout)
        return self.encoder.backward(dh)

    def generate(self, xs: Array, start_id: int, sample_size: int) -> list[int]:
        """Greedy decoding: ``sample_size`` ids after ``start_id``, each the argmax of the last score."""
        h = self.encoder.forward(xs)
        sampled: list[int] = self.decoder.generate(h, start_id, sample_size)
        return sampled


class PeekyDecoder(Decoder):
    """The decoder that sees the encoder's h at every step (section 7.4): h is concatenated before the
    embedding into the LSTM and before the LSTM's output into the affine layer, so the LSTM takes H + D
    inputs and the affine 2H. Its dh sums the LSTM's dh and every step's peeks."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: DTypeLike = "f") -> None:
        V, D, H = vocab_size, wordvec_size, hidden_size
        dt = float_dtype(dtype, "PeekyDecoder")
        embed_W, Wx, Wh, b, affine_W, affine_b = _weights(V, D, H, dt, H + D, H + H)
        self.embed = TimeEmbedding(embed_W)
        self.lstm = TimeLSTM(Wx, Wh, b, stateful=True)
        self.affine = TimeAffine(affine_W, affine_b)
        self._collect(self.embed, self.lstm, self.affine)
        self.cache: int | None = None

    def forward(self, xs: Array, h: Array) -> Any:
        N, T = xs.shape
        N, H = h.shape
        self.lstm.set_state(h)
        out = self.embed.forward(xs)
        hs = np.repeat(h, T, axis=0).reshape(N, T, H)
        out = np.concatenate((hs, out), axis=2)
        out = self.lstm.forward(out)
        out = np.concatenate((hs, out), axis=2)
        self.cache = H
        return self.affine.forward(out)

    def backward(self, dscore: Array) -> Any:
        H = self.cache
        if H is None:
            raise not_ready("PeekyDecoder")
        dout = self.affine.backward(dscore)
        dout, dhs0 = dout[:, :, H:], dout[:, :, :H]
        dout = self.lstm.backward(dout)
        dembed, dhs1 = dout[:, :, H:], dout[:, :, :H]
        self.embed.backward(dembed)
        return self.lstm.dh + np.sum(dhs0 + dhs1, axis=1)

    def generate(self, h: Array, start_id: int, sample_size: int) -> list[int]:
        self.lstm.set_state(h)
        peeky_h = h.reshape(1, 1, h.shape[1])

        def step(char_id: int) -> Array:
            out = np.concatenate((peeky_h, self.embed.forward(_ids(char_id))), axis=2)
            out = np.concatenate((peeky_h, self.lstm.forward(out)), axis=2)
            return self.affine.forward(out)

        return _greedy(step, start_id, sample_size)


class PeekySeq2seq(Seq2seq):
    """Encoder, PeekyDecoder and TimeSoftmaxWithLoss."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: DTypeLike = "f") -> None:
        self._build(Encoder, PeekyDecoder, vocab_size, wordvec_size, hidden_size, dtype)


class AttentionEncoder(Encoder):
    """The encoder that returns every hidden state hs (N, T, H), for the attention to read."""

    def forward(self, xs: Array) -> Any:
        xs = self.embed.forward(xs)
        return self.lstm.forward(xs)

    def backward(self, dhs: Array) -> Any:
        dout = self.lstm.backward(dhs)
        return self.embed.backward(dout)


class AttentionDecoder(Layer):
    """TimeEmbedding, a TimeLSTM started from the encoder's last state, TimeAttention over the encoder's
    hs, and TimeAffine of [context, decoder state] (2H inputs) (section 8.2). ``backward`` returns dhs of
    the encoder: the attention's, plus the LSTM's dh at the last step."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: DTypeLike = "f") -> None:
        V, D, H = vocab_size, wordvec_size, hidden_size
        dt = float_dtype(dtype, "AttentionDecoder")
        embed_W, Wx, Wh, b, affine_W, affine_b = _weights(V, D, H, dt, D, 2 * H)
        self.embed = TimeEmbedding(embed_W)
        self.lstm = TimeLSTM(Wx, Wh, b, stateful=True)
        self.attention = TimeAttention()
        self.affine = TimeAffine(affine_W, affine_b)
        self._collect(self.embed, self.lstm, self.attention, self.affine)

    def forward(self, xs: Array, enc_hs: Array) -> Any:
        h = enc_hs[:, -1]
        self.lstm.set_state(h)
        out = self.embed.forward(xs)
        dec_hs = self.lstm.forward(out)
        c = self.attention.forward(enc_hs, dec_hs)
        out = np.concatenate((c, dec_hs), axis=2)
        return self.affine.forward(out)

    def backward(self, dscore: Array) -> Any:
        dout = self.affine.backward(dscore)
        H = dout.shape[2] // 2
        dc, ddec_hs0 = dout[:, :, :H], dout[:, :, H:]
        denc_hs, ddec_hs1 = self.attention.backward(dc)
        ddec_hs = ddec_hs0 + ddec_hs1
        dout = self.lstm.backward(ddec_hs)
        denc_hs = np.array(denc_hs)  # a copy: the attention may hand back an array it still holds
        denc_hs[:, -1] += self.lstm.dh
        self.embed.backward(dout)
        return denc_hs

    def generate(self, enc_hs: Array, start_id: int, sample_size: int) -> list[int]:
        self.lstm.set_state(enc_hs[:, -1])

        def step(sample_id: int) -> Array:
            dec_hs = self.lstm.forward(self.embed.forward(_ids(sample_id)))
            c = self.attention.forward(enc_hs, dec_hs)
            return self.affine.forward(np.concatenate((c, dec_hs), axis=2))

        return _greedy(step, start_id, sample_size)


class AttentionSeq2seq(Seq2seq):
    """AttentionEncoder, AttentionDecoder and TimeSoftmaxWithLoss."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: DTypeLike = "f") -> None:
        self._build(AttentionEncoder, AttentionDecoder, vocab_size, wordvec_size, hidden_size, dtype)
