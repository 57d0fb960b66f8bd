"""Language models of book 2, chapters 5 and 6: ``SimpleRnnlm``, ``Rnnlm`` and ``BetterRnnlm``.

Each is a stack of time layers ending in ``TimeSoftmaxWithLoss``: ``forward(xs, ts) -> loss`` (word ids
of shape (N, T)), ``backward(dout=1)``, ``params``/``grads`` lists, ``reset_state()``. Their recurrent
layers are stateful, as truncated BPTT needs: each ``forward`` continues from the last one's hidden state
until ``reset_state()``. ``BetterRnnlm`` ties its output weight to the embedding (``TimeAffine(embed_W.T,
b)``, a view): ``params`` lists ``embed_W`` and its transpose, and the embedding's gradient is
``grads[0] + grads[-2].T`` (``remove_duplicate`` does that sum). ``Rnnlm`` and ``BetterRnnlm`` also have
chapter 7's ``generate``. Weights are drawn as the book draws them, in ``dtype`` (``'f'`` by default).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from backprop.nlp.base_model import BaseModel, float_dtype
from backprop.nlp.recurrent import TimeLSTM, TimeRNN
from backprop.nlp.time_layers import TimeAffine, TimeDropout, TimeEmbedding, TimeSoftmaxWithLoss

__all__ = ["BetterRnnlm", "Rnnlm", "SimpleRnnlm"]

Array = NDArray[Any]


def _softmax(x: Array) -> Array:
    e = np.exp(x - np.max(x))
    return np.asarray(e / np.sum(e))


def _lstm_weights(D: int, H: int, dt: np.dtype[Any]) -> tuple[Array, Array, Array]:
    rn = np.random.randn
    return (
        (rn(D, 4 * H) / np.sqrt(D)).astype(dt),
        (rn(H, 4 * H) / np.sqrt(H)).astype(dt),
        np.zeros(4 * H, dtype=dt),
    )


class _Stack(BaseModel):
    """A list of time layers, then the loss; ``params`` and ``grads`` gathered from the layers."""

    layers: list[Any]
    loss_layer: Any

    def _gather(self) -> None:
        self._collect(*self.layers)

    def predict(self, xs: Array) -> Any:
        for layer in self.layers:
            xs = layer.forward(xs)
        return xs

    def forward(self, xs: Array, ts: Array) -> Any:
        score = self.predict(xs)
        return self.loss_layer.forward(score, ts)

    def backward(self, dout: Any = 1) -> Any:
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def generate(
        self, start_id: int, skip_ids: Iterable[int] | None = None, sample_size: int = 100
    ) -> list[int]:
        """``sample_size`` word ids starting with ``start_id``, each next one drawn from the softmax of
        the model's score (``np.random``), never one of ``skip_ids``; the state carries on from the last
        call (``reset_state()`` first for a fresh start)."""
        skip = set(skip_ids or ())
        word_ids = [int(start_id)]
        x = int(start_id)
        while len(word_ids) < sample_size:
            score = self.predict(np.array(x, dtype=np.int32).reshape(1, 1))
            p = _softmax(np.asarray(score, dtype=np.float64).flatten())
            sampled = int(np.random.choice(len(p), p=p))
            if sampled not in skip:
                x = sampled
                word_ids.append(x)
        return word_ids


class SimpleRnnlm(_Stack):
    """TimeEmbedding, TimeRNN (stateful), TimeAffine, TimeSoftmaxWithLoss (section 5.5)."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, dtype: DTypeLike = "f") -> None:
        V, D, H = vocab_size, wordvec_size, hidden_size
        dt = float_dtype(dtype, "SimpleRnnlm")
        rn = np.random.randn
        embed_W = (rn(V, D) / 100).astype(dt)
        rnn_Wx = (rn(D, H) / np.sqrt(D)).astype(dt)
        rnn_Wh = (rn(H, H) / np.sqrt(H)).astype(dt)
        rnn_b = np.zeros(H, dtype=dt)
        affine_W = (rn(H, V) / np.sqrt(H)).astype(dt)
        affine_b = np.zeros(V, dtype=dt)
        self.layers = [
            TimeEmbedding(embed_W),
            TimeRNN(rnn_Wx, rnn_Wh, rnn_b, stateful=True),
            TimeAffine(affine_W, affine_b),
        ]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.rnn_layer = self.layers[1]
        self._gather()

    def reset_state(self) -> None:
        self.rnn_layer.reset_state()


class Rnnlm(_Stack):
    """TimeEmbedding, TimeLSTM (stateful), TimeAffine, TimeSoftmaxWithLoss (section 6.4)."""

    def __init__(
        self, vocab_size: int = 10000, wordvec_size: int = 100, hidden_size: int = 100, dtype: DTypeLike = "f"
    ) -> None:
        V, D, H = vocab_size, wordvec_size, hidden_size
        dt = float_dtype(dtype, "Rnnlm")
        rn = np.random.randn
        embed_W = (rn(V, D) / 100).astype(dt)
        affine_W = (rn(H, V) / np.sqrt(H)).astype(dt)
        affine_b = np.zeros(V, dtype=dt)
        self.layers = [
            TimeEmbedding(embed_W),
            TimeLSTM(*_lstm_weights(D, H, dt), stateful=True),
            TimeAffine(affine_W, affine_b),
        ]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.lstm_layer = self.layers[1]
        self._gather()

    def reset_state(self) -> None:
        self.lstm_layer.reset_state()

    def get_state(self) -> tuple[Any, Any]:
        return self.lstm_layer.h, self.lstm_layer.c

    def set_state(self, state: tuple[Any, Any]) -> None:
        self.lstm_layer.set_state(*state)


class BetterRnnlm(_Stack):
    """Two stateful LSTM layers with inverted dropout before, between and after them, and the output
    weight tied to the embedding (section 6.5): TimeEmbedding, TimeDropout, TimeLSTM, TimeDropout,
    TimeLSTM, TimeDropout, TimeAffine(embed_W.T, b), TimeSoftmaxWithLoss. The tie needs
    wordvec_size == hidden_size."""

    def __init__(
        self,
        vocab_size: int = 10000,
        wordvec_size: int = 650,
        hidden_size: int = 650,
        dropout_ratio: float = 0.5,
        dtype: DTypeLike = "f",
    ) -> None:
        V, D, H = vocab_size, wordvec_size, hidden_size
        if D != H:
            raise ValueError(
                f"BetterRnnlm: wordvec_size {D} != hidden_size {H}; the tied output weight embed_W.T of "
                f"shape ({D}, {V}) multiplies hidden states of size {H}"
            )
        dt = float_dtype(dtype, "BetterRnnlm")
        embed_W = (np.random.randn(V, D) / 100).astype(dt)
        affine_b = np.zeros(V, dtype=dt)
        self.layers = [
            TimeEmbedding(embed_W),
            TimeDropout(dropout_ratio),
            TimeLSTM(*_lstm_weights(D, H, dt), stateful=True),
            TimeDropout(dropout_ratio),
            TimeLSTM(*_lstm_weights(H, H, dt), stateful=True),
            TimeDropout(dropout_ratio),
            TimeAffine(embed_W.T, affine_b),  # weight tying: a view, so one update reaches both
        ]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.lstm_layers = [self.layers[2], self.layers[4]]
        self.drop_layers = [self.layers[1], self.layers[3], self.layers[5]]
        self._gather()

    def predict(self, xs: Array, train_flg: bool = False) -> Any:
        for layer in self.drop_layers:
            layer.train_flg = train_flg
        return super().predict(xs)

    def forward(self, xs: Array, ts: Array, train_flg: bool = True) -> Any:
        score = self.predict(xs, train_flg)
        return self.loss_layer.forward(score, ts)

    def reset_state(self) -> None:
        for layer in self.lstm_layers:
            layer.reset_state()

    def get_state(self) -> list[tuple[Any, Any]]:
        return [(layer.h, layer.c) for layer in self.lstm_layers]

    def set_state(self, states: list[tuple[Any, Any]]) -> None:
        for layer, state in zip(self.lstm_layers, states, strict=True):
            layer.set_state(*state)
