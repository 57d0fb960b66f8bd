"""Book 2's models and training utilities: what their rows do not check (the book's defaults, dtype,
saving and loading, generation, clipping and tie handling, and that training lowers the loss)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backprop import SGD, Adam
from backprop.nlp.cbow import CBOW, SimpleCBOW, SkipGram
from backprop.nlp.rnnlm import BetterRnnlm, Rnnlm, SimpleRnnlm
from backprop.nlp.seq2seq import AttentionSeq2seq, PeekySeq2seq, Seq2seq
from backprop.nlp.trainer import (
    RnnlmTrainer,
    Trainer,
    clip_grads,
    eval_perplexity,
    eval_seq2seq,
    remove_duplicate,
)
from backprop.verify.model import distinct_params

V = 8
CORPUS = np.array([0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3], dtype=np.int32)


def _models() -> list[tuple[Any, tuple[Any, Any]]]:
    """Each model, small, with one batch of its inputs."""
    np.random.seed(0)
    rng = np.random.default_rng(0)
    ctx, tgt = rng.integers(0, V, (5, 2)), rng.integers(0, V, 5)
    xs, ts = rng.integers(0, V, (3, 4)), rng.integers(0, V, (3, 4))
    q, a = rng.integers(0, V, (3, 4)), rng.integers(0, V, (3, 5))
    eye = np.eye(V, dtype=np.int32)
    return [
        (SimpleCBOW(V, 3), (eye[ctx], eye[tgt])),
        (CBOW(V, 3, 1, CORPUS), (ctx, tgt)),
        (SkipGram(V, 3, 1, CORPUS), (ctx, tgt)),
        (SimpleRnnlm(V, 3, 4), (xs, ts)),
        (Rnnlm(V, 3, 4), (xs, ts)),
        (BetterRnnlm(V, 4, 4), (xs, ts)),
        (Seq2seq(V, 3, 4), (q, a)),
        (PeekySeq2seq(V, 3, 4), (q, a)),
        (AttentionSeq2seq(V, 3, 4), (q, a)),
    ]


NAMES = [type(m).__name__ for m, _ in _models()]


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_the_books_float32_weights_and_grads_in_place(index: int) -> None:
    model, (x, t) = _models()[index]
    assert all(p.dtype == np.float32 for p in model.params)  # the book's dtype='f'
    held = list(model.grads)
    loss = model.forward(x, t)
    assert np.isfinite(loss) and np.ndim(loss) == 0
    model.backward()
    assert all(g is h for g, h in zip(model.grads, held, strict=True))  # written in place
    assert all(
        g.dtype == np.float32 and g.shape == p.shape for g, p in zip(model.grads, model.params, strict=True)
    )
    assert any(np.any(g != 0) for g in model.grads)


@pytest.mark.parametrize("suffix", [".pkl", ".npz"])
def test_save_then_load_restores_every_parameter_in_place(tmp_path: Path, suffix: str) -> None:
    np.random.seed(1)
    model = BetterRnnlm(V, 4, 4)
    path = tmp_path / f"model{suffix}"
    model.save_params(path)
    saved = [p.copy() for p in model.params]
    other = BetterRnnlm(V, 4, 4)
    held = other.params[0]
    other.load_params(path)
    for p, q in zip(other.params, saved, strict=True):
        np.testing.assert_array_equal(p, q)
    assert other.params[0] is held
    assert np.shares_memory(other.params[0], other.layers[6].params[0])  # still tied


def test_save_params_defaults_to_the_books_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Rnnlm(V, 3, 4).save_params()
    assert (tmp_path / "Rnnlm.pkl").exists()
    Rnnlm(V, 3, 4).load_params()


def test_a_bad_parameter_file_is_one_clear_error(tmp_path: Path) -> None:
    model = Rnnlm(V, 3, 4)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"Rnnlm.load_params: .*junk.npz' is not a parameter file"):
        model.load_params(junk)
    other = tmp_path / "other.npz"
    Rnnlm(V, 3, 5).save_params(other)
    with pytest.raises(ValueError, match=r"params\[1\] has shape \(3, 20\) in the file but \(3, 16\) here"):
        model.load_params(other)
    fewer = tmp_path / "fewer.pkl"
    SimpleCBOW(V, 3).save_params(fewer)
    with pytest.raises(ValueError, match="holds 3 arrays but params has 6"):
        model.load_params(fewer)


def test_bad_constructor_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match=r"BetterRnnlm: wordvec_size 3 != hidden_size 4"):
        BetterRnnlm(V, 3, 4)
    with pytest.raises(ValueError, match="dtype must be a float dtype"):
        Rnnlm(V, 3, 4, dtype=np.int32)
    with pytest.raises(ValueError, match=r"contexts of shape \(5, 3\)"):
        CBOW(V, 3, 1, CORPUS).forward(np.zeros((5, 3), dtype=int), np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match=r"ts of shape \(3,\)"):
        Seq2seq(V, 3, 4).forward(np.zeros((3, 2), dtype=int), np.zeros(3, dtype=int))


def test_clip_grads_is_the_books_definition_in_place() -> None:
    grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    held = list(grads)
    clip_grads(grads, 1.0)
    rate = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(grads[0], [3.0 * rate, 0.0])
    np.testing.assert_allclose(grads[1], [[4.0 * rate]])
    assert all(g is h for g, h in zip(grads, held, strict=True))
    small = [np.array([0.3]), np.array([0.4])]
    clip_grads(small, 1.0)  # norm 0.5: rate 2 >= 1, nothing changes
    np.testing.assert_array_equal(np.concatenate(small), [0.3, 0.4])


def test_remove_duplicate_sums_shared_and_transposed_ties_but_not_equal_values() -> None:
    W = np.arange(6.0).reshape(2, 3)
    b = np.zeros(3)
    equal = W.copy()
    params = [W, b, W, W.T, equal]
    grads = [np.ones((2, 3)), np.ones(3), 2 * np.ones((2, 3)), np.arange(6.0).reshape(3, 2), np.ones((2, 3))]
    kept, summed = remove_duplicate(params, grads)
    assert len(kept) == 3 and kept[0] is W and kept[1] is b and kept[2] is equal
    np.testing.assert_array_equal(summed[0], 3 + np.arange(6.0).reshape(3, 2).T)
    np.testing.assert_array_equal(summed[2], np.ones((2, 3)))


def test_book_optimizers_update_the_tied_weight_once_through_remove_duplicate() -> None:
    np.random.seed(3)
    model, (xs, ts) = _models()[5]
    before = model.params[0].copy()
    model.forward(xs, ts)
    model.backward()
    params, grads = remove_duplicate(model.params, model.grads)
    assert len(params) == len(distinct_params(model.params)) == 8
    expected = before - 0.1 * grads[0]
    SGD(lr=0.1).update(params, grads)
    np.testing.assert_allclose(model.params[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(model.layers[6].params[0], model.params[0].T)  # the view moved too


def test_trainer_lowers_the_loss_of_cbow() -> None:
    np.random.seed(0)
    corpus = np.tile(np.arange(V, dtype=np.int32), 20)
    contexts = np.stack([corpus[:-2], corpus[2:]], axis=1)
    target = corpus[1:-1]
    model = CBOW(V, 5, 1, corpus)
    trainer = Trainer(model, Adam(lr=0.05))
    trainer.fit(contexts, target, max_epoch=5, batch_size=16, eval_interval=2, log=None)
    assert trainer.loss_list[-1] < trainer.loss_list[0]
    assert trainer.current_epoch == 5


def test_rnnlm_trainer_lowers_the_perplexity_and_eval_agrees() -> None:
    np.random.seed(0)
    corpus = np.tile(np.array([0, 1, 2, 3, 2, 1], dtype=np.int32), 60)
    model = Rnnlm(4, 6, 8)
    before = eval_perplexity(model, corpus, batch_size=4, time_size=5)
    model.reset_state()
    trainer = RnnlmTrainer(model, Adam(lr=0.05))
    trainer.fit(
        corpus[:-1],
        corpus[1:],
        max_epoch=6,
        batch_size=4,
        time_size=5,
        max_grad=5.0,
        eval_interval=5,
        log=None,
    )
    assert trainer.ppl_list[-1] < trainer.ppl_list[0]
    model.reset_state()
    after = eval_perplexity(model, corpus, batch_size=4, time_size=5)
    assert after < before and after < 2.0  # the pattern is nearly deterministic


def test_generate_gives_ids_of_the_vocabulary() -> None:
    np.random.seed(0)
    lm = Rnnlm(V, 3, 4)
    words = lm.generate(1, skip_ids=[2], sample_size=10)
    assert len(words) == 10 and words[0] == 1 and 2 not in words[1:]
    assert all(isinstance(w, int) and 0 <= w < V for w in words)
    for model in (Seq2seq(V, 3, 4), PeekySeq2seq(V, 3, 4), AttentionSeq2seq(V, 3, 4)):
        out = model.generate(np.array([[1, 2, 3]]), 0, 5)
        assert len(out) == 5 and all(isinstance(w, int) and 0 <= w < V for w in out)


def test_eval_seq2seq_scores_an_exact_answer() -> None:
    class Echo:
        def generate(self, xs: Any, start_id: int, size: int) -> list[int]:
            return [int(v) for v in np.asarray(xs).flatten()[:size]]

    chars = dict(enumerate("_abc"))
    assert eval_seq2seq(Echo(), np.array([[1, 2, 3]]), np.array([[0, 1, 2, 3]]), chars) == 1
    assert eval_seq2seq(Echo(), np.array([[1, 2, 3]]), np.array([[0, 3, 2, 1]]), chars) == 0


def test_the_model_row_reads_a_transposed_tie_and_refuses_a_copied_one() -> None:
    from backprop.verify import get_row

    row = get_row("better_rnnlm")
    rng = np.random.default_rng(0)
    values: dict[str, Any] = {"vocab_size": 5, "wordvec_size": 2, "hidden_size": 2, "dtype": "float64"}
    values["dropout_ratio"] = 0.5
    shapes = {a.name: a for a in row.placed("params")}
    sizes = {"embed_W": (5, 2), "affine_b": (5,)} | {
        f"lstm_{w}{i}": s for i in (1, 2) for w, s in (("Wx", (2, 8)), ("Wh", (2, 8)), ("b", (8,)))
    }
    values |= {name: rng.normal(size=sizes[name]) for name in shapes}
    values |= {
        "xs": rng.integers(0, 5, (2, 3)).astype(np.int32),
        "ts": rng.integers(0, 5, (2, 3)).astype(np.int32),
    }
    model = row.build(BetterRnnlm, values)
    assert model.params[0] is values["embed_W"]  # the drawn values now live in the model's own arrays
    row.call(model, values)
    reads = {r.arg.name: r for r in row.gradients(model, row.backward(model, (1.0,)), values)}
    assert reads["embed_W"].where == "grads[0]+grads[7].T"
    np.testing.assert_allclose(reads["embed_W"].value, model.grads[0] + model.grads[7].T)

    class CopiedTie(BetterRnnlm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.params[7] = self.params[7].copy()

    with pytest.raises(ValueError, match=r"holds 9 distinct arrays .* but the row names 8"):
        row.build(CopiedTie, dict(values))


@pytest.mark.oracle
def test_a_model_row_checks_the_books_float32_first_and_a_dtype_less_model_in_it_only() -> None:
    from backprop.verify import get_row, verify
    from tests.catalogue.learner import BookSimpleCBOW

    row = get_row("simple_cbow")
    assert row.dtypes_for(SimpleCBOW) == ("float32", "float64")  # the library's model takes a dtype
    assert row.dtypes_for(BookSimpleCBOW) == ("float32",)  # the book's allocates 'f'
    report = verify(BookSimpleCBOW, "simple_cbow", max_examples=3, allow=("epsilon",))
    assert (report.dtype, report.passed) == ("float32", True)
    with pytest.raises(
        ValueError, match="BookSimpleCBOW's constructor takes no dtype: it is checked in float32"
    ):
        verify(BookSimpleCBOW, "simple_cbow", dtype="float64")
    # the printed program builds the model as the book does, without the dtype it does not take
    values = {"vocab_size": 2, "hidden_size": 1, "dtype": "float32"}
    assert [a.name for a in row.constructor_keywords(BookSimpleCBOW)] == ["vocab_size", "hidden_size"]
    model = row.build(BookSimpleCBOW, values | {"W_in": np.ones((2, 1), "f"), "W_out": np.ones((1, 2), "f")})
    assert all(p.dtype == np.float32 and np.all(p == 1) for p in model.params)
