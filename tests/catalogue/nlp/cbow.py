"""Catalogue of the word2vec models (``backprop.nlp.cbow``): each broken model has one realistic mistake
in how it wires the book's layers together, named in its docstring; the correct ones wire them another
valid way."""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.nlp.cbow import CBOW, SimpleCBOW, SkipGram
from backprop.nlp.layers import Embedding
from tests.catalogue import caught, passes


@caught(
    against="simple_cbow",
    check="grads[0]+grads[1]",
    kinds={"value"},
    diagnosis="scale",  # shrunk to equal contexts, the sum is exactly half
    why="the shared W_in's second grads entry is never written",
)
class SimpleCBOWDropsSecondContext(SimpleCBOW):
    """Backpropagates into the first context's MatMul only: the shared W_in's second gradient entry
    (grads[1]) is never written, so the sum misses the second context word."""

    def backward(self, dout: Any = 1) -> None:
        ds = self.loss_layer.backward(dout)
        da = self.out_layer.backward(ds) * 0.5
        self.in_layer0.backward(da)
        return None


@caught(
    against="simple_cbow",
    check="grads[0]+grads[1]",
    kinds={"value"},
    diagnosis="scale",
    why="da not halved for the mean of two contexts",
)
class SimpleCBOWNoHalf(SimpleCBOW):
    """Forgets that h is the mean of the two context vectors: each MatMul receives the whole da."""

    def backward(self, dout: Any = 1) -> None:
        ds = self.loss_layer.backward(dout)
        da = self.out_layer.backward(ds)  # BUG
        self.in_layer1.backward(da)
        self.in_layer0.backward(da)
        return None


@caught(
    against="skip_gram",
    check="grads[0]",
    kinds={"value"},
    diagnosis="scale",  # shrunk to equal contexts, every loss layer's dh is the same
    why="dh = instead of dh += over the loss layers",
)
class SkipGramLastContextOnly(SkipGram):
    """Overwrites dh with each loss layer's gradient instead of summing them: the embedding only hears
    from the last context word."""

    def backward(self, dout: Any = 1) -> None:
        dh = 0
        for layer in self.loss_layers:
            dh = layer.backward(dout)  # BUG
        self.in_layer.backward(dh)
        return None


@caught(
    against="cbow",
    check="grads[0]+grads[1]",
    kinds={"value"},
    diagnosis="scale",
    why="dh not divided by the 2 * window_size context words",
)
class CBOWNoMean(CBOW):
    """Forgets that h is the mean of the context embeddings: each Embedding receives the whole dh."""

    def backward(self, dout: Any = 1) -> None:
        dh = self.ns_loss.backward(dout)  # BUG
        for layer in self.in_layers:
            layer.backward(dh)
        return None


@passes(against="cbow", why="one Embedding over all context ids, W_in listed once, einsum mean")
class CBOWOneEmbedding(CBOW):
    """One Embedding looks up every context word at once (ids of shape (N, 2w)), so W_in is listed once;
    the mean over the window is taken with einsum."""

    def __init__(
        self, vocab_size: int, hidden_size: int, window_size: int, corpus: Any, dtype: Any = "f"
    ) -> None:
        super().__init__(vocab_size, hidden_size, window_size, corpus, dtype=dtype)
        self.window = 2 * window_size
        self.embed = Embedding(self.word_vecs)
        self.params = self.embed.params + self.ns_loss.params
        self.grads = self.embed.grads + self.ns_loss.grads

    def forward(self, contexts: Any, target: Any) -> Any:
        vectors = self.embed.forward(np.asarray(contexts))
        h = np.einsum("nch->nh", vectors) / self.window
        return self.ns_loss.forward(h, target)

    def backward(self, dout: Any = 1) -> None:
        dh = self.ns_loss.backward(dout) / self.window
        self.embed.backward(np.repeat(dh[:, None, :], self.window, axis=1))
        return None
