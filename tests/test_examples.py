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


@pytest.mark.slow
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


def _example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_few_steps_of_seq2seq_on_generated_dates_lower_the_loss(tmp_path: Path) -> None:
    """Smoke test of examples/train_seq2seq.py: eight batches of a small AttentionSeq2seq."""
    s2s = _example("train_seq2seq")
    data = s2s.make_dates(600, seed=0)
    assert data.t_train.shape[1] == 11 and data.id_to_char[int(data.t_train[0, 0])] == "_"
    answer = "".join(data.id_to_char[int(c)] for c in data.t_train[0, 1:])
    assert len(answer) == 10 and answer[4] == answer[7] == "-"
    np.random.seed(0)
    model = s2s.AttentionSeq2seq(len(data.char_to_id), 8, 16)
    x, t = data.x_train[:64], data.t_train[:64]
    before = model.forward(x, t)
    history = s2s.train(model, data, backprop.Adam(lr=0.01), epochs=1, batch_size=32, max_iters=8)
    after = model.forward(x, t)
    assert after < before, (before, after)
    assert len(history.loss) == len(history.test_acc) == 1 and 0.0 <= history.test_acc[0] <= 1.0
    s2s.plot(history, tmp_path / "seq2seq.png")
    s2s.plot_attention(s2s.attention_maps(model, data, [0, 1]), tmp_path / "attention.png")
    for png in ("seq2seq.png", "attention.png"):
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_an_epoch_of_the_character_rnnlm_on_stdlib_docstrings_lowers_the_perplexity(tmp_path: Path) -> None:
    """Smoke test of examples/train_rnnlm.py: one epoch over 6000 characters of docstrings."""
    lm = _example("train_rnnlm")
    text = lm.docstrings(limit=6000)
    assert len(text) == 6000 and set(text) <= lm.KEPT | {"?"}
    corpus, char_to_id, _ = lm.encode(text)
    np.random.seed(0)
    model = lm.Rnnlm(len(char_to_id), 8, 16)
    before = lm.eval_perplexity(model, corpus, 10, 20)
    model.reset_state()
    trainer, seconds = lm.train(model, corpus, epochs=1, batch_size=10, time_size=20, lr=0.05)
    model.reset_state()
    after = lm.eval_perplexity(model, corpus, 10, 20)
    assert after < before, (before, after)
    assert len(seconds) == 1 and trainer.ppl_list
    lm.plot(trainer.ppl_list, 20, tmp_path / "rnnlm.png")
    assert (tmp_path / "rnnlm.png").read_bytes().startswith(b"\x89PNG")
