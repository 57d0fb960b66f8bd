"""word2vec models of book 2, chapters 3 and 4: ``SimpleCBOW``, ``CBOW`` and ``SkipGram``.

The book's constructors and API: ``forward(contexts, target) -> loss``, ``backward(dout=1)``, and
``params``/``grads`` lists in which the shared input weight ``W_in`` (and, with negative sampling, the
output weight ``W_out``) is listed once per layer that holds it; its gradient is the sum of those entries
(``remove_duplicate``). ``word_vecs`` is ``W_in``. Weights are drawn as the book draws them, in ``dtype``
(the book's ``'f'`` by default).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from backprop.nlp.base_model import BaseModel, float_dtype
from backprop.nlp.layers import Embedding, MatMul, SoftmaxWithLoss
from backprop.nlp.negative_sampling import NegativeSamplingLoss

__all__ = ["CBOW", "SimpleCBOW", "SkipGram"]

Array = NDArray[Any]


def _weights(model: str, V: int, H: int, dtype: DTypeLike) -> tuple[Array, Array]:
    """W_in and W_out (both (V, H)), drawn as the book draws them, in ``dtype``."""
    dt = float_dtype(dtype, model)
    return (0.01 * np.random.randn(V, H)).astype(dt), (0.01 * np.random.randn(V, H)).astype(dt)


def _contexts(model: str, contexts: Any, width: int, rank: int) -> Array:
    arr: Array = np.asarray(contexts)
    if arr.ndim != rank or arr.shape[1] != width:
        axes = "(N, 2 * window_size, V) one-hot" if rank == 3 else "(N, 2 * window_size) word ids"
        raise ValueError(
            f"{model}.forward: contexts of shape {arr.shape}, expected {axes} with 2 * window_size = {width}"
        )
    return arr


class SimpleCBOW(BaseModel):
    """CBOW with a full softmax (section 3.2): h = (c0 W_in + c1 W_in) / 2, loss = softmax cross entropy
    of h W_out. The two contexts and the target are one-hot, as ``convert_one_hot`` makes them."""

    def __init__(self, vocab_size: int, hidden_size: int, dtype: DTypeLike = "f") -> None:
        V, H = vocab_size, hidden_size
        dt = float_dtype(dtype, "SimpleCBOW")
        W_in = (0.01 * np.random.randn(V, H)).astype(dt)
        W_out = (0.01 * np.random.randn(H, V)).astype(dt)
        self.in_layer0 = MatMul(W_in)
        self.in_layer1 = MatMul(W_in)
        self.out_layer = MatMul(W_out)
        self.loss_layer = SoftmaxWithLoss()
        self._collect(self.in_layer0, self.in_layer1, self.out_layer)
        self.word_vecs = W_in

    def forward(self, contexts: Array, target: Array) -> Any:
        contexts = _contexts("SimpleCBOW", contexts, 2, 3)
        h0 = self.in_layer0.forward(contexts[:, 0])
        h1 = self.in_layer1.forward(contexts[:, 1])
        h = (h0 + h1) * 0.5
        score = self.out_layer.forward(h)
        return self.loss_layer.forward(score, target)

    def backward(self, dout: Any = 1) -> None:
        ds = self.loss_layer.backward(dout)
        da = self.out_layer.backward(ds)
        da = da * 0.5  # both context words receive half: h is their mean
        self.in_layer1.backward(da)
        self.in_layer0.backward(da)
        return None


class CBOW(BaseModel):
    """CBOW with embeddings and negative sampling (section 4.3): h is the mean of the 2 * window_size
    context embeddings, and the loss is ``NegativeSamplingLoss(W_out, corpus, power=0.75,
    sample_size=5)`` of h and the target. Contexts and target are word ids."""

    def __init__(
        self, vocab_size: int, hidden_size: int, window_size: int, corpus: Any, dtype: DTypeLike = "f"
    ) -> None:
        W_in, W_out = _weights("CBOW", vocab_size, hidden_size, dtype)
        self.in_layers = [Embedding(W_in) for _ in range(2 * window_size)]
        self.ns_loss = NegativeSamplingLoss(W_out, corpus, power=0.75, sample_size=5)
        self._collect(*self.in_layers, self.ns_loss)
        self.word_vecs = W_in

    def forward(self, contexts: Array, target: Array) -> Any:
        contexts = _contexts("CBOW", contexts, len(self.in_layers), 2)
        h: Any = 0
        for i, layer in enumerate(self.in_layers):
            h = h + layer.forward(contexts[:, i])
        h = h * (1 / len(self.in_layers))
        return self.ns_loss.forward(h, target)

    def backward(self, dout: Any = 1) -> None:
        dh = self.ns_loss.backward(dout)
        dh = dh * (1 / len(self.in_layers))
        for layer in self.in_layers:
            layer.backward(dh)
        return None


class SkipGram(BaseModel):
    """skip-gram with negative sampling (section 4.3): the target's embedding h predicts each of the
    2 * window_size context words through its own ``NegativeSamplingLoss`` (all sharing ``W_out``); the
    loss is their sum."""

    def __init__(
        self, vocab_size: int, hidden_size: int, window_size: int, corpus: Any, dtype: DTypeLike = "f"
    ) -> None:
        W_in, W_out = _weights("SkipGram", vocab_size, hidden_size, dtype)
        self.in_layer = Embedding(W_in)
        self.loss_layers = [
            NegativeSamplingLoss(W_out, corpus, power=0.75, sample_size=5) for _ in range(2 * window_size)
        ]
        self._collect(self.in_layer, *self.loss_layers)
        self.word_vecs = W_in

    def forward(self, contexts: Array, target: Array) -> Any:
        contexts = _contexts("SkipGram", contexts, len(self.loss_layers), 2)
        h = self.in_layer.forward(target)
        loss: Any = 0
        for i, layer in enumerate(self.loss_layers):
            loss = loss + layer.forward(h, contexts[:, i])
        return loss

    def backward(self, dout: Any = 1) -> None:
        dh: Any = 0
        for layer in self.loss_layers:
            dh = dh + layer.backward(dout)
        self.in_layer.backward(dh)
        return None
