"""Train book 2's Rnnlm, character by character, on the docstrings of Python's own standard library.

The corpus is read from this Python's installation (nothing is downloaded): the module docstring of every
top-level ``.py`` file of the standard library, parsed with ``ast`` (no module is imported), in name
order. Characters outside printable ASCII become ``?``. The last 10% of the text is held out. The model
learns with the book's ``RnnlmTrainer`` (truncated BPTT, gradient clipping); the script reports the
held-out perplexity before and after training, seconds per epoch, a sample of generated text, and saves
the training perplexity curve::

    python examples/train_rnnlm.py --epochs 3 --plot docs/rnnlm.png
"""

from __future__ import annotations

import argparse
import ast
import string
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

try:
    import backprop
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import backprop

from backprop.nlp.rnnlm import Rnnlm
from backprop.nlp.trainer import RnnlmTrainer, eval_perplexity

KEPT = set(string.printable) - set("\t\r\x0b\x0c")


def docstrings(limit: int | None = None) -> str:
    """The module docstrings of the standard library's top-level modules, each followed by a blank line;
    at most ``limit`` characters."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    size = 0
    for path in sorted(root.glob("*.py")):
        try:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        if not doc:
            continue
        text = "".join(c if c in KEPT else "?" for c in doc) + "\n\n"
        parts.append(text)
        size += len(text)
        if limit is not None and size >= limit:
            break
    return "".join(parts)[:limit]


def encode(text: str) -> tuple[np.ndarray, dict[str, int], dict[int, str]]:
    chars = sorted(set(text))
    char_to_id = {c: i for i, c in enumerate(chars)}
    return np.array([char_to_id[c] for c in text], dtype=np.int32), char_to_id, dict(enumerate(chars))


def train(
    model: Rnnlm,
    corpus: np.ndarray,
    epochs: int,
    batch_size: int = 20,
    time_size: int = 35,
    lr: float = 0.01,
    max_grad: float = 5.0,
) -> tuple[RnnlmTrainer, list[float]]:
    """The book's RnnlmTrainer with Adam; the seconds each epoch took."""
    trainer = RnnlmTrainer(model, backprop.Adam(lr=lr))
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        ppl = list(trainer.ppl_list)
        trainer.fit(corpus[:-1], corpus[1:], 1, batch_size, time_size, max_grad, eval_interval=20, log=None)
        trainer.ppl_list = ppl + trainer.ppl_list  # fit starts a new list each call
        seconds.append(time.perf_counter() - start)
    return trainer, seconds


def plot(ppl: list[float], interval: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(len(ppl)) * interval, ppl)
    ax.set(xlabel="iteration", ylabel="training perplexity", title="character Rnnlm on stdlib docstrings")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=200000, help="characters of docstrings read at most")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--time-size", type=int, default=35)
    parser.add_argument("--wordvec", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--plot", type=Path, default=Path("rnnlm.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    np.random.seed(args.seed)
    text = docstrings(args.chars)
    corpus, char_to_id, id_to_char = encode(text)
    cut = int(len(corpus) * 0.9)
    train_ids, test_ids = corpus[:cut], corpus[cut:]
    model = Rnnlm(len(char_to_id), args.wordvec, args.hidden)
    before = eval_perplexity(model, test_ids, args.batch_size, args.time_size)
    model.reset_state()
    trainer, seconds = train(model, train_ids, args.epochs, args.batch_size, args.time_size)
    model.reset_state()
    after = eval_perplexity(model, test_ids, args.batch_size, args.time_size)
    plot(trainer.ppl_list, 20, args.plot)
    model.reset_state()
    start = char_to_id.get("T", 0)
    sample = "".join(id_to_char[i] for i in model.generate(start, sample_size=300))
    print(f"corpus: {len(text)} characters of docstrings, {len(char_to_id)} distinct")
    print(f"sample:\n{sample}\n")
    print(
        f"Rnnlm: held-out perplexity {before:.1f} before, {after:.2f} after {args.epochs} epochs "
        f"(uniform would be {len(char_to_id)}), {np.mean(seconds):.1f} s per epoch"
    )
    print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
