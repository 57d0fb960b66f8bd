"""Train the book's TwoLayerNet and SimpleConvNet on real handwritten digits.

The data is scikit-learn's bundled 8x8 digits (1,797 images, installed with the package: nothing is
downloaded). Both networks learn with the book's optimizers; the script shows a progress bar per epoch,
saves a plot of the loss and of the train and test accuracy, and ends with each network's test accuracy
and seconds per epoch::

    pip install -e ".[examples]"
    python examples/train_digits.py --epochs 20 --optimizer adam --plot digits.png
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import backprop
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import backprop

from backprop.optimizers import SGD, AdaGrad, Adam, Momentum

OPTIMIZERS = {
    "sgd": (SGD, 0.1),
    "momentum": (Momentum, 0.05),
    "adagrad": (AdaGrad, 0.05),
    "adam": (Adam, 0.003),
}


@dataclass
class History:
    """Per epoch: the mean training loss, the train and test accuracy, and the seconds it took."""

    name: str
    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def load_digits(seed: int = 0, test_share: float = 0.2) -> tuple[np.ndarray, ...]:
    """(x_train, t_train, x_test, t_test): images (N, 1, 8, 8) scaled to [0, 1], integer labels."""
    from sklearn.datasets import load_digits as bundled

    digits = bundled()
    x = (digits.images / 16.0).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * (1 - test_share))
    train, test = order[:cut], order[cut:]
    return x[train], digits.target[train], x[test], digits.target[test]


def networks() -> dict[str, Any]:
    return {
        "TwoLayerNet": backprop.TwoLayerNet(
            input_size=64, hidden_size=50, output_size=10, weight_init_std=0.1
        ),
        "SimpleConvNet": backprop.SimpleConvNet(
            input_dim=(1, 8, 8),
            conv_param={"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
            hidden_size=50,
            output_size=10,
            weight_init_std=0.1,
        ),
    }


def train(
    name: str,
    network: Any,
    data: tuple[np.ndarray, ...],
    optimizer: Any,
    epochs: int,
    batch_size: int = 50,
    seed: int = 0,
    progress: Any = None,
) -> History:
    """Mini-batch training: each epoch visits every training sample once, in a fresh random order."""
    x_train, t_train, x_test, t_test = data
    flat = name == "TwoLayerNet"  # an affine network takes the 64 pixels as one vector
    shape = (-1, 64) if flat else (-1, 1, 8, 8)
    history, rng = History(name), np.random.default_rng(seed)
    for _ in range(epochs):
        start, losses = time.perf_counter(), []
        order = rng.permutation(len(x_train))
        task = (
            progress.add_task(f"{name} epoch {len(history.loss) + 1}", total=len(order)) if progress else None
        )
        for at in range(0, len(order), batch_size):
            batch = order[at : at + batch_size]
            x, t = x_train[batch].reshape(shape), t_train[batch]
            optimizer.update(network.params, network.gradient(x, t))
            losses.append(network.loss(x, t))
            if progress is not None:
                progress.update(task, advance=len(batch))
        history.seconds.append(time.perf_counter() - start)
        history.loss.append(float(np.mean(losses)))
        history.train_acc.append(network.accuracy(x_train.reshape(shape), t_train))
        history.test_acc.append(network.accuracy(x_test.reshape(shape), t_test))
    return history


def plot(histories: list[History], path: Path) -> None:
    """The loss and the train/test accuracy of every network, per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for h in histories:
        epochs = range(1, len(h.loss) + 1)
        left.plot(epochs, h.loss, label=h.name)
        right.plot(epochs, h.train_acc, label=f"{h.name} train")
        right.plot(epochs, h.test_acc, "--", label=f"{h.name} test")
    left.set(xlabel="epoch", ylabel="mean training loss", title="loss")
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy on 8x8 digits", ylim=(0, 1))
    left.legend()
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    parser.add_argument("--plot", type=Path, default=Path("digits.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from rich.progress import Progress

    np.random.seed(args.seed)  # the networks draw their initial weights from NumPy's global generator
    data = load_digits(args.seed)
    cls, lr = OPTIMIZERS[args.optimizer]
    histories = []
    with Progress(transient=True) as progress:
        for name, network in networks().items():
            histories.append(
                train(name, network, data, cls(lr=lr), args.epochs, seed=args.seed, progress=progress)
            )
    plot(histories, args.plot)
    for h in histories:
        print(
            f"{h.name}: test accuracy {h.test_acc[-1]:.3f} after {len(h.loss)} epochs "
            f"({args.optimizer}), {np.mean(h.seconds):.3f} s per epoch"
        )
    print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
