"""Catalogue of the sequence-to-sequence models (``backprop.nlp.seq2seq``): one realistic wiring mistake
per broken model, named in its docstring."""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.nlp.seq2seq import (
    AttentionDecoder,
    AttentionEncoder,
    AttentionSeq2seq,
    Decoder,
    Encoder,
    PeekyDecoder,
    PeekySeq2seq,
    Seq2seq,
)
from tests.catalogue import caught


class EveryStepEncoder(Encoder):
    """Hands the decoder's dh to every encoder step (dhs[:] = dh), though only the last state reached
    the decoder."""

    def backward(self, dh: Any) -> Any:
        dhs = np.zeros_like(self.hs)
        dhs[:] = dh[:, None, :]
        return self.embed.backward(self.lstm.backward(dhs))


@caught(
    against="seq2seq",
    check="grads[3]",
    kinds={"value"},
    diagnosis="other",
    why="the decoder's dh sent to every encoder step",
)
class Seq2seqEveryStepEncoder(Seq2seq):
    """Seq2seq with ``EveryStepEncoder``."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: Any = "f") -> None:
        self._build(EveryStepEncoder, Decoder, vocab_size, wordvec_size, hidden_size, dtype)


class PeekyDecoderNoPeekGradient(PeekyDecoder):
    """Returns only the LSTM's dh: forgets that the encoder's h was also concatenated into every step's
    LSTM and affine inputs."""

    def backward(self, dscore: Any) -> Any:
        super().backward(dscore)
        return self.lstm.dh


@caught(
    against="peeky_seq2seq",
    check="grads[3]",
    kinds={"value"},
    diagnosis="other",
    why="the peeked h's gradient is dropped",
)
class PeekySeq2seqNoPeekGradient(PeekySeq2seq):
    """PeekySeq2seq with ``PeekyDecoderNoPeekGradient``."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: Any = "f") -> None:
        self._build(Encoder, PeekyDecoderNoPeekGradient, vocab_size, wordvec_size, hidden_size, dtype)


class AttentionDecoderNoStateGradient(AttentionDecoder):
    """Drops ``denc_hs[:, -1] += dh``: the LSTM's initial state (the encoder's last state) gets no
    gradient, only the attention's."""

    def backward(self, dscore: Any) -> Any:
        dout = self.affine.backward(dscore)
        H = dout.shape[2] // 2
        dc, ddec_hs0 = dout[:, :, :H], dout[:, :, H:]
        denc_hs, ddec_hs1 = self.attention.backward(dc)
        dout = self.lstm.backward(ddec_hs0 + ddec_hs1)
        self.embed.backward(dout)
        return denc_hs


@caught(
    against="attention_seq2seq",
    check="grads[3]",
    kinds={"value"},
    diagnosis="other",
    why="the decoder LSTM's dh never reaches the encoder's last state",
)
class AttentionSeq2seqNoStateGradient(AttentionSeq2seq):
    """AttentionSeq2seq with ``AttentionDecoderNoStateGradient``."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: Any = "f") -> None:
        self._build(
            AttentionEncoder, AttentionDecoderNoStateGradient, vocab_size, wordvec_size, hidden_size, dtype
        )
