"""Catalogue of the language models (``backprop.nlp.rnnlm``): one realistic wiring mistake per broken
model, named in its docstring; the correct ones wire the book's layers another valid way."""

from __future__ import annotations

from typing import Any

from backprop.nlp.rnnlm import BetterRnnlm, Rnnlm, SimpleRnnlm
from backprop.nlp.time_layers import TimeAffine
from tests.catalogue import caught, passes


@caught(
    against="better_rnnlm",
    check="constructor",
    kinds={"exception"},
    diagnosis="exception",
    why="the tie is a copy (embed_W.T.copy()), not a view",
)
class BetterRnnlmTiedByCopy(BetterRnnlm):
    """Ties the output weight with ``embed_W.T.copy()``: the two weights start equal but are separate
    arrays, so an update of one never reaches the other (and params holds one array more)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        embed_W = self.layers[0].params[0]
        self.layers[6] = TimeAffine(embed_W.T.copy(), self.layers[6].params[1])  # BUG
        self._gather()


@caught(
    against="better_rnnlm",
    check="grads[0]",
    kinds={"value"},
    diagnosis="other",
    why="the tied output weight left out of params: its gradient share is lost",
)
class BetterRnnlmTieListedOnce(BetterRnnlm):
    """Leaves the tied output weight out of ``params`` (it is "the same" as the embedding), so the
    embedding's gradient misses the output layer's share."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        affine = self.layers[6]
        self.params = [p for p in self.params if p is not affine.params[0]]
        self.grads = [g for g in self.grads if g is not affine.grads[0]]


@caught(
    against="simple_rnnlm",
    check="grads[0]",
    kinds={"value"},
    diagnosis="other",
    why="backward stops before the embedding",
)
class SimpleRnnlmSkipsEmbedding(SimpleRnnlm):
    """Stops backward before the embedding (it returns no gradient for the word ids, so why call it?):
    the embedding's grads entry is never written."""

    def backward(self, dout: Any = 1) -> Any:
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers[1:]):  # BUG
            dout = layer.backward(dout)
        return dout


@caught(
    against="rnnlm",
    check="grads[5]",  # the output bias: its gradient is never zero
    kinds={"value"},
    diagnosis="other",
    why="grads holds copies of the layers' gradient arrays",
)
class RnnlmCopiedGrads(Rnnlm):
    """Gathers copies of the layers' gradient arrays (``g.copy()``), so the model's ``grads`` never see
    what backward writes into the layers' own arrays."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grads = [g.copy() for g in self.grads]  # BUG


@passes(against="better_rnnlm", why="the tie listed once, its transposed gradient summed by the model itself")
class BetterRnnlmSumsItsOwnTie(BetterRnnlm):
    """Lists the tied weight once and does ``remove_duplicate``'s work itself: after backward the
    embedding's grads entry already holds its own gradient plus the output layer's, transposed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        affine = self.layers[6]
        self.params = [p for p in self.params if p is not affine.params[0]]
        self.grads = [g for g in self.grads if g is not affine.grads[0]]

    def backward(self, dout: Any = 1) -> Any:
        result = super().backward(dout)
        self.grads[0] += self.layers[6].grads[0].T
        return result
