"""Book 2's training utilities: ``clip_grads``, ``remove_duplicate``, ``Trainer``, ``RnnlmTrainer``,
``eval_perplexity`` and ``eval_seq2seq`` (``common/trainer.py`` and ``common/util.py``), NumPy only.

A model is anything with ``forward(x, t) -> loss``, ``backward()`` and the lists ``params``/``grads``;
the optimizers of ``backprop`` (``SGD``, ``Adam``, ...) take those lists as they are. A weight shared by
several layers appears once per layer in ``params``: ``remove_duplicate`` keeps it once and sums its
gradients, also when a layer holds it transposed (``TimeAffine(embed_W.T, b)``, BetterRnnlm's tie).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "RnnlmTrainer",
    "Trainer",
    "clip_grads",
    "eval_perplexity",
    "eval_seq2seq",
    "remove_duplicate",
]

Array = NDArray[Any]


class Model(Protocol):
    params: list[Array]
    grads: list[Array]

    def forward(self, x: Any, t: Any) -> Any: ...

    def backward(self, dout: float = 1) -> Any: ...


class Optimizer(Protocol):
    def update(self, params: Any, grads: Any) -> None: ...


def clip_grads(grads: Sequence[Array], max_norm: float) -> None:
    """Scale every gradient in place by max_norm / (||g|| + 1e-6) when that rate is below 1, where ||g||
    is the L2 norm of all the gradients together (gradient clipping, section 5.5.3)."""
    total_norm = np.sqrt(sum(float(np.sum(np.square(g))) for g in grads))
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for grad in grads:
            grad *= rate


def _transposed_view(a: Array, b: Array) -> bool:
    """``b`` is ``a.T``: the same memory, read transposed (a tie through ``.T``, not equal values)."""
    return (
        a.ndim == 2
        and b.ndim == 2
        and b.shape == a.shape[::-1]
        and b.strides == a.strides[::-1]
        and b.__array_interface__["data"][0] == a.__array_interface__["data"][0]
    )


def remove_duplicate(params: Sequence[Array], grads: Sequence[Array]) -> tuple[list[Array], list[Array]]:
    """Each shared weight once, with the sum of its gradients (book 2's ``remove_duplicate``).

    An array listed again (``params[j] is params[i]``) adds ``grads[j]``; one listed as a transposed view
    of another (``params[j]`` is ``params[i].T``) adds ``grads[j].T``. Ties are found by identity and
    memory, never by equal values, so that two weights that merely start equal stay apart. The first
    entry's gradient array receives the sum in place, as in the book.
    """
    if len(params) != len(grads):
        raise ValueError(f"remove_duplicate: params has {len(params)} entries but grads has {len(grads)}")
    kept_p: list[Array] = []
    kept_g: list[Array] = []
    for p, g in zip(params, grads, strict=True):
        for q, h in zip(kept_p, kept_g, strict=True):
            if p is q:
                h += g
                break
            if _transposed_view(q, p):
                h += g.T
                break
        else:
            kept_p.append(p)
            kept_g.append(g)
    return kept_p, kept_g


def _say(line: str) -> None:
    print(line, flush=True)


class Trainer:
    """Mini-batch training of a model on (x, t), shuffled every epoch (``common.trainer.Trainer``)."""

    def __init__(self, model: Model, optimizer: Optimizer) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_list: list[float] = []
        self.eval_interval: int | None = None
        self.current_epoch = 0

    def fit(
        self,
        x: Array,
        t: Array,
        max_epoch: int = 10,
        batch_size: int = 32,
        max_grad: float | None = None,
        eval_interval: int | None = 20,
        log: Callable[[str], None] | None = _say,
    ) -> None:
        """``max_epoch`` passes over the data in batches of ``batch_size`` (a last partial batch is
        dropped, as in the book); every ``eval_interval`` iterations the mean loss since the last report
        is appended to ``loss_list`` (and logged unless ``log`` is None)."""
        data_size = len(x)
        max_iters = data_size // batch_size
        if max_iters == 0:
            raise ValueError(f"Trainer.fit: {data_size} samples make no batch of {batch_size}")
        self.eval_interval = eval_interval
        model, optimizer = self.model, self.optimizer
        total_loss, loss_count = 0.0, 0
        start = time.time()
        for _ in range(max_epoch):
            idx = np.random.permutation(data_size)
            x, t = x[idx], t[idx]
            for iters in range(max_iters):
                batch_x = x[iters * batch_size : (iters + 1) * batch_size]
                batch_t = t[iters * batch_size : (iters + 1) * batch_size]
                total_loss += train_step(model, optimizer, batch_x, batch_t, max_grad)
                loss_count += 1
                if eval_interval is not None and iters % eval_interval == 0:
                    avg_loss = total_loss / loss_count
                    if log is not None:
                        log(
                            f"| epoch {self.current_epoch + 1} |  iter {iters + 1} / {max_iters} | "
                            f"time {time.time() - start:.0f}[s] | loss {avg_loss:.2f}"
                        )
                    self.loss_list.append(avg_loss)
                    total_loss, loss_count = 0.0, 0
            self.current_epoch += 1

    def plot(self, ylim: tuple[float, float] | None = None, path: str | None = None) -> None:
        """The loss curve (matplotlib); saved to ``path`` when given, shown otherwise."""
        _plot(self.loss_list, "loss", self.eval_interval, ylim, path)


def train_step(model: Any, optimizer: Any, batch_x: Any, batch_t: Any, max_grad: float | None) -> float:
    """One optimizer step, as both trainers take it: forward, backward, tied gradients summed
    (``remove_duplicate``), clipped to ``max_grad`` when given, then the update; the batch's loss."""
    loss = model.forward(batch_x, batch_t)
    model.backward()
    params, grads = remove_duplicate(model.params, model.grads)
    if max_grad is not None:
        clip_grads(grads, max_grad)
    optimizer.update(params, grads)
    return float(loss)


class RnnlmTrainer:
    """Truncated-BPTT training of a language model on one long sequence (``RnnlmTrainer``): the batch's
    rows read the corpus from ``batch_size`` evenly spaced offsets, each call continuing where the last
    stopped, so that a stateful model carries its hidden state across batches."""

    def __init__(self, model: Model, optimizer: Optimizer) -> None:
        self.model = model
        self.optimizer = optimizer
        self.time_idx = 0
        self.ppl_list: list[float] = []
        self.eval_interval: int | None = None
        self.current_epoch = 0

    def get_batch(self, x: Array, t: Array, batch_size: int, time_size: int) -> tuple[Array, Array]:
        data_size = len(x)
        jump = data_size // batch_size
        offsets = np.arange(batch_size) * jump
        positions = (offsets[:, None] + self.time_idx + np.arange(time_size)[None, :]) % data_size
        self.time_idx += time_size
        return np.asarray(x)[positions].astype(np.int32), np.asarray(t)[positions].astype(np.int32)

    def fit(
        self,
        xs: Array,
        ts: Array,
        max_epoch: int = 10,
        batch_size: int = 20,
        time_size: int = 35,
        max_grad: float | None = None,
        eval_interval: int | None = 20,
        log: Callable[[str], None] | None = _say,
    ) -> None:
        """``max_epoch`` passes of len(xs) // (batch_size * time_size) iterations; every
        ``eval_interval`` iterations the perplexity exp(mean loss) is appended to ``ppl_list``."""
        data_size = len(xs)
        max_iters = data_size // (batch_size * time_size)
        if max_iters == 0:
            raise ValueError(
                f"RnnlmTrainer.fit: a corpus of {data_size} makes no batch of {batch_size} x {time_size}"
            )
        self.time_idx = 0
        self.ppl_list = []
        self.eval_interval = eval_interval
        model, optimizer = self.model, self.optimizer
        total_loss, loss_count = 0.0, 0
        start = time.time()
        for _ in range(max_epoch):
            for iters in range(max_iters):
                batch_x, batch_t = self.get_batch(xs, ts, batch_size, time_size)
                total_loss += train_step(model, optimizer, batch_x, batch_t, max_grad)
                loss_count += 1
                if eval_interval is not None and iters % eval_interval == 0:
                    ppl = float(np.exp(total_loss / loss_count))
                    if log is not None:
                        log(
                            f"| epoch {self.current_epoch + 1} |  iter {iters + 1} / {max_iters} | "
                            f"time {time.time() - start:.0f}[s] | perplexity {ppl:.2f}"
                        )
                    self.ppl_list.append(ppl)
                    total_loss, loss_count = 0.0, 0
            self.current_epoch += 1

    def plot(self, ylim: tuple[float, float] | None = None, path: str | None = None) -> None:
        """The perplexity curve (matplotlib); saved to ``path`` when given, shown otherwise."""
        _plot(self.ppl_list, "perplexity", self.eval_interval, ylim, path)


def _plot(
    values: list[float], label: str, interval: int | None, ylim: tuple[float, float] | None, path: str | None
) -> None:
    import matplotlib.pyplot as plt  # only for plotting: the library itself needs NumPy alone

    fig, ax = plt.subplots()
    ax.plot(np.arange(len(values)), values, label="train")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(f"iterations (x{interval})")
    ax.set_ylabel(label)
    if path is None:
        plt.show()
    else:
        fig.savefig(path)
    plt.close(fig)


def eval_perplexity(
    model: Any, corpus: Array, batch_size: int = 10, time_size: int = 35, verbose: bool = False
) -> float:
    """exp of the mean loss over the corpus read as the trainer reads it (a model whose ``forward``
    takes ``train_flg`` is run with ``train_flg=False``)."""
    corpus_size = len(corpus)
    max_iters = (corpus_size - 1) // (batch_size * time_size)
    if max_iters == 0:
        raise ValueError(
            f"eval_perplexity: a corpus of {corpus_size} makes no batch of {batch_size} x {time_size}"
        )
    jump = (corpus_size - 1) // batch_size
    corpus = np.asarray(corpus)
    total_loss = 0.0
    for iters in range(max_iters):
        offsets = iters * time_size + np.arange(batch_size) * jump
        positions = offsets[:, None] + np.arange(time_size)[None, :]
        xs = corpus[positions % corpus_size].astype(np.int32)
        ts = corpus[(positions + 1) % corpus_size].astype(np.int32)
        try:
            loss = model.forward(xs, ts, train_flg=False)
        except TypeError:
            loss = model.forward(xs, ts)
        total_loss += float(loss)
        if verbose:
            sys.stdout.write(f"\r{iters + 1} / {max_iters}")
            sys.stdout.flush()
    if verbose:
        print()
    return float(np.exp(total_loss / max_iters))


def eval_seq2seq(
    model: Any,
    question: Array,
    correct: Array,
    id_to_char: dict[int, str],
    verbos: bool = False,
    is_reverse: bool = False,
) -> int:
    """1 when ``model.generate`` answers ``question`` exactly (``correct``'s first id is the start
    symbol), else 0; ``verbos`` (the book's spelling) prints the question, the answer and the guess."""
    flat = np.asarray(correct).flatten()
    start_id, answer = int(flat[0]), flat[1:]
    guess = model.generate(question, start_id, len(answer))
    q = "".join(id_to_char[int(c)] for c in np.asarray(question).flatten())
    want = "".join(id_to_char[int(c)] for c in answer)
    got = "".join(id_to_char[int(c)] for c in guess)
    if verbos:
        print("Q", q[::-1] if is_reverse else q)
        print("T", want)
        print(("O " if got == want else "X ") + got)
        print("---")
    return 1 if got == want else 0
