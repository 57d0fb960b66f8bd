"""The book's shopping examples must print exactly the seed notebook's numbers."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import backprop

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "buy_apple.py": "200\n220.00000000000003\n2.2 110.00000000000001 200\n",
    "buy_apple_orange.py": "715.0000000000001\n110.00000000000001 2.2 3.3000000000000003 165.0 650\n",
}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_prints_the_books_numbers(script: str, tmp_path: Path) -> None:
    # Run from an unrelated directory: the script must find backprop either installed
    # or through its own checkout fallback.
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED[script]
    assert result.stderr == ""


def _train_digits() -> Any:
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLES / "train_digits.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_digits"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["TwoLayerNet", "SimpleConvNet"])
def test_one_short_epoch_on_real_digits_lowers_the_loss(name: str, tmp_path: Path) -> None:
    """Smoke test of examples/train_digits.py: one epoch on 300 of the bundled digits."""
    digits = _train_digits()
    np.random.seed(0)
    x_train, t_train, x_test, t_test = digits.load_digits(seed=0)
    data = (x_train[:300], t_train[:300], x_test[:100], t_test[:100])
    network = digits.networks()[name]
    shape = (-1, 64) if name == "TwoLayerNet" else (-1, 1, 8, 8)
    before = network.loss(data[0].reshape(shape), data[1])
    history = digits.train(name, network, data, backprop.Adam(lr=0.003), epochs=1, batch_size=30)
    after = network.loss(data[0].reshape(shape), data[1])
    assert after < before, (before, after)
    assert len(history.loss) == len(history.test_acc) == 1 and 0.0 <= history.test_acc[0] <= 1.0
    digits.plot([history], tmp_path / "digits.png")
    assert (tmp_path / "digits.png").read_bytes().startswith(b"\x89PNG")
