"""Train book 2's AttentionSeq2seq to rewrite dates written by people as ISO dates (YYYY-MM-DD).

The data is generated here (nothing is downloaded): random dates between 1950 and 2049 rendered with
``datetime`` in many human formats ("september 27, 1994", "SAT, AUG 12, 1978", "9/27/94", "27.09.1994",
...), as in the book's chapter 8. Numbers with slashes are month first, with dots day first; two-digit
years mean 1950-2049. The input is padded with spaces and reversed (the book's trick); the target is ``_``
then the ISO date. The script shows a progress bar per epoch, saves a plot of the loss and the test
accuracy and an attention heat map for a few test dates, and ends with the test accuracy and seconds per
epoch::

    python examples/train_seq2seq.py --epochs 4 --plot docs/seq2seq.png --attention docs/attention.png
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import backprop
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import backprop

from backprop.nlp.seq2seq import AttentionSeq2seq
from backprop.nlp.trainer import train_step

START = "_"
FIRST_DAY, DAYS = dt.date(1950, 1, 1).toordinal(), 100 * 365 + 24  # 1950-01-01 .. 2049-12-31


def _day(d: dt.date) -> str:
    return str(d.day)


FORMATS: tuple[Callable[[dt.date], str], ...] = (
    lambda d: d.strftime("%B ") + _day(d) + d.strftime(", %Y"),  # September 27, 1994
    lambda d: d.strftime("%b ") + _day(d) + d.strftime(", %Y"),  # Sep 27, 1994
    lambda d: d.strftime("%B %d, %Y"),  # September 07, 1994
    lambda d: _day(d) + d.strftime(" %B %Y"),  # 27 September 1994
    lambda d: d.strftime("%d %b %Y"),  # 27 Sep 1994
    lambda d: d.strftime("%A, %B ") + _day(d) + d.strftime(", %Y"),  # Tuesday, September 27, 1994
    lambda d: d.strftime("%a, %b ") + _day(d) + d.strftime(", %Y"),  # Tue, Sep 27, 1994
    lambda d: f"{d.month}/{d.day}/{d.year}",  # 9/27/1994
    lambda d: d.strftime("%m/%d/%y"),  # 09/27/94
    lambda d: f"{d.month}/{d.day}/{d.strftime('%y')}",  # 9/27/94
    lambda d: d.strftime("%d.%m.%Y"),  # 27.09.1994
    lambda d: d.strftime("%Y.%m.%d"),  # 1994.09.27
    lambda d: d.strftime("%b %Y ") + _day(d),  # Sep 1994 27
)
CASES: tuple[Callable[[str], str], ...] = (str, str.lower, str.upper)


@dataclass
class Dates:
    """Questions (N, T_in) reversed and padded, answers (N, 11) starting with ``_``, and the alphabet."""

    x_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    char_to_id: dict[str, int]
    id_to_char: dict[int, str]


def render(date: dt.date, rng: np.random.Generator) -> str:
    """``date`` in one of the human formats, in one of three cases."""
    text = FORMATS[rng.integers(len(FORMATS))](date)
    return CASES[rng.integers(len(CASES))](text)


def make_dates(samples: int = 20000, test_share: float = 0.1, seed: int = 0) -> Dates:
    rng = np.random.default_rng(seed)
    dates = [dt.date.fromordinal(FIRST_DAY + int(k)) for k in rng.integers(0, DAYS, samples)]
    questions = [render(d, rng) for d in dates]
    answers = [START + d.isoformat() for d in dates]
    chars = sorted(set("".join(questions) + "".join(answers) + " "))
    char_to_id = {c: i for i, c in enumerate(chars)}
    width = max(len(q) for q in questions)
    x = np.array([[char_to_id[c] for c in q.ljust(width)[::-1]] for q in questions], dtype=np.int32)
    t = np.array([[char_to_id[c] for c in a] for a in answers], dtype=np.int32)
    cut = int(samples * (1 - test_share))
    return Dates(x[:cut], t[:cut], x[cut:], t[cut:], char_to_id, {i: c for c, i in char_to_id.items()})


def question(data: Dates, x: np.ndarray) -> str:
    return "".join(data.id_to_char[int(i)] for i in x[::-1]).rstrip()


def decode(model: AttentionSeq2seq, xs: np.ndarray, start_id: int, length: int) -> np.ndarray:
    """Greedy decoding of a whole batch at once (the book's ``generate`` takes one question)."""
    decoder = model.decoder
    enc_hs = model.encoder.forward(xs)
    decoder.lstm.set_state(enc_hs[:, -1])
    ids = np.full((len(xs), 1), start_id, dtype=np.int32)
    out = []
    for _ in range(length):
        dec_hs = decoder.lstm.forward(decoder.embed.forward(ids))
        c = decoder.attention.forward(enc_hs, dec_hs)
        score = decoder.affine.forward(np.concatenate((c, dec_hs), axis=2))
        ids = np.argmax(score, axis=2).astype(np.int32)
        out.append(ids[:, 0])
    return np.stack(out, axis=1)


def accuracy(model: AttentionSeq2seq, xs: np.ndarray, ts: np.ndarray, batch_size: int = 500) -> float:
    """The share of questions whose whole answer is right."""
    right = 0
    for at in range(0, len(xs), batch_size):
        guess = decode(model, xs[at : at + batch_size], int(ts[0, 0]), ts.shape[1] - 1)
        right += int(np.sum(np.all(guess == ts[at : at + batch_size, 1:], axis=1)))
    return right / len(xs)


@dataclass
class History:
    loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def train(
    model: AttentionSeq2seq,
    data: Dates,
    optimizer: Any,
    epochs: int,
    batch_size: int = 128,
    max_grad: float = 5.0,
    max_iters: int | None = None,
    progress: Any = None,
    seed: int = 0,
) -> History:
    """The book's training step (forward, backward, ``remove_duplicate``, ``clip_grads``, update) over
    shuffled batches; after each epoch the mean loss and the test accuracy."""
    history, rng = History(), np.random.default_rng(seed)
    for epoch in range(epochs):
        start, losses = time.perf_counter(), []
        order = rng.permutation(len(data.x_train))
        batches = [order[at : at + batch_size] for at in range(0, len(order) - batch_size + 1, batch_size)]
        batches = batches[:max_iters] if max_iters else batches
        task = progress.add_task(f"epoch {epoch + 1}", total=len(batches)) if progress else None
        for batch in batches:
            losses.append(train_step(model, optimizer, data.x_train[batch], data.t_train[batch], max_grad))
            if progress is not None:
                progress.update(task, advance=1, description=f"epoch {epoch + 1} loss {losses[-1]:.3f}")
        history.seconds.append(time.perf_counter() - start)
        history.loss.append(float(np.mean(losses)))
        history.test_acc.append(accuracy(model, data.x_test, data.t_test))
    return history


def plot(history: History, path: Path) -> None:
    """The mean training loss and the test accuracy per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history.loss) + 1)
    left.plot(epochs, history.loss, marker="o")
    right.plot(epochs, history.test_acc, marker="o")
    left.set(xlabel="epoch", ylabel="mean training loss", title="AttentionSeq2seq on dates")
    right.set(xlabel="epoch", ylabel="exact-match accuracy", title="test accuracy", ylim=(0, 1.02))
    for ax in (left, right):
        ax.set_xticks(list(epochs))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def attention_maps(
    model: AttentionSeq2seq, data: Dates, rows: list[int]
) -> list[tuple[str, str, np.ndarray]]:
    """For each test row: its question, its answer and the attention (answer step x question character),
    read from the decoder's TimeAttention after a teacher-forced forward, as the book's chapter 8 does."""
    maps = []
    for i in rows:
        x, t = data.x_test[i : i + 1], data.t_test[i : i + 1]
        model.forward(x, t)
        weights = np.array([np.asarray(w).reshape(-1) for w in model.decoder.attention.attention_weights])
        text = question(data, x[0])
        # the input was padded then reversed: put the columns back in reading order, dropping the padding
        columns = weights[:, ::-1][:, : len(text)]
        answer = "".join(data.id_to_char[int(c)] for c in t[0, 1:])
        maps.append((text, answer, columns))
    return maps


def plot_attention(maps: list[tuple[str, str, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(4.5 * len(maps), 4))
    for ax, (text, answer, weights) in zip(np.atleast_1d(axes), maps, strict=True):
        ax.imshow(weights, cmap="gray", vmin=0, vmax=max(float(weights.max()), 1e-9), aspect="auto")
        ax.set_xticks(range(len(text)), list(text), fontsize=8)
        ax.set_yticks(range(len(answer)), list(answer), fontsize=8)
        ax.set_xlabel("question")
        ax.set_ylabel("answer")
        ax.set_title(repr(text), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000, help="dates generated (10%% are the test set)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-iters", type=int, default=None, help="stop each epoch after this many batches")
    parser.add_argument("--wordvec", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--plot", type=Path, default=Path("seq2seq.png"))
    parser.add_argument("--attention", type=Path, default=Path("attention.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from rich.progress import Progress

    np.random.seed(args.seed)  # the model draws its initial weights from NumPy's global generator
    data = make_dates(args.samples, seed=args.seed)
    model = AttentionSeq2seq(len(data.char_to_id), args.wordvec, args.hidden)
    with Progress(transient=True) as progress:
        history = train(
            model,
            data,
            backprop.Adam(lr=0.005),
            args.epochs,
            args.batch_size,
            max_iters=args.max_iters,
            progress=progress,
            seed=args.seed,
        )
    plot(history, args.plot)
    plot_attention(attention_maps(model, data, [0, 1, 2]), args.attention)
    guesses = decode(model, data.x_test[:5], int(data.t_test[0, 0]), data.t_test.shape[1] - 1)
    for x, g in zip(data.x_test[:5], guesses, strict=True):
        print(f"{question(data, x):>32} -> {''.join(data.id_to_char[int(c)] for c in g)}")
    print(
        f"AttentionSeq2seq: test accuracy {history.test_acc[-1]:.3f} after {len(history.loss)} epochs "
        f"on {len(data.x_train)} dates, {np.mean(history.seconds):.1f} s per epoch"
    )
    print(f"plots: {args.plot}, {args.attention}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
