"""Both books' official code, class by class, gets its fair verdict: a pass, a real mistake named, or the
scope the book itself chose (the table is the README's "The books' own code").

The project ships none of the books' code. Point ``BACKPROP_BOOKS`` at a folder holding the two official
repositories as they are published (``deep-learning-from-scratch`` and ``deep-learning-from-scratch-2``,
from oreilly-japan) to run these tests; without it they are skipped, with that reason. Each class is run
through the command line as a learner runs it: a file of a chapter folder from inside that folder (the
books' ``sys.path.append(os.pardir)`` needs it), a ``common`` module from the repository's root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.oracle  # every test here runs the oracle

BOOKS = os.environ.get("BACKPROP_BOOKS", "")
REPOSITORIES = {1: "deep-learning-from-scratch", 2: "deep-learning-from-scratch-2"}

needs_books = pytest.mark.skipif(
    not BOOKS, reason="set BACKPROP_BOOKS to a folder holding both books' official repositories"
)


@dataclass(frozen=True)
class BookClass:
    """One class (or function) of a book, the row it is checked against, the flags of a fair check, and
    the verdict: ``pass``, or ``fail`` with the diagnosis that names the real mistake, and the features
    without which it is right (the scope the book chose)."""

    book: int
    spec: str
    row: str
    verdict: str
    why: str
    flags: tuple[str, ...] = ()
    diagnosis: str = ""
    passes_without: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        flags = " ".join(self.flags)
        return f"book{self.book}:{self.spec}->{self.row}" + (f" {flags}" if flags else "")


def _pass(book: int, spec: str, row: str, why: str, *flags: str) -> BookClass:
    return BookClass(book, spec, row, "pass", why, flags)


def _fail(book: int, spec: str, row: str, why: str, diagnosis: str, *without: str) -> BookClass:
    return BookClass(book, spec, row, "fail", why, diagnosis=diagnosis, passes_without=without)


F32 = ("--dtype", "float32")
EPSILON = ("--allow", "epsilon")

TABLE: tuple[BookClass, ...] = (
    # book 1, chapters 5 to 8
    _fail(
        1,
        "ch05/layer_naive.py:MulLayer",
        "mul",
        "no sum back over broadcast axes",
        "unbroadcast",
        "broadcast",
    ),
    _fail(
        1,
        "ch05/layer_naive.py:AddLayer",
        "add",
        "no sum back over broadcast axes",
        "unbroadcast",
        "broadcast",
    ),
    _fail(1, "common.layers:Relu", "relu", "backward writes into the caller's dout", "in_place"),
    _pass(1, "common.layers:Sigmoid", "sigmoid", "right"),
    _pass(1, "common.layers:Affine", "affine", "right"),
    _fail(1, "common.layers:SoftmaxWithLoss", "softmax_with_loss", "ignores dout", "ignores_dout"),
    _pass(1, "common.layers:Dropout", "dropout", "no test-mode backward: a note"),
    _pass(1, "common.layers:BatchNormalization", "batch_normalization", "no test-mode backward: a note"),
    _pass(1, "common.util:im2col", "im2col", "the function; float64 buffers: a note"),
    _pass(1, "common.util:col2im", "col2im", "the function; float64 buffers: a note"),
    _pass(1, "common.layers:Convolution", "convolution", "float64 buffers: a note"),
    _fail(
        1, "common.layers:Pooling", "pooling", "pads with 0 and sizes without the pad", "exception", "padding"
    ),
    _pass(1, "ch05/two_layer_net.py:TwoLayerNet", "two_layer_net", "-log(y + 1e-7)", *EPSILON),
    _pass(1, "common.multi_layer_net:MultiLayerNet", "multi_layer_net", "-log(y + 1e-7)", *EPSILON),
    _pass(
        1,
        "common.multi_layer_net_extend:MultiLayerNetExtend",
        "multi_layer_net_extend",
        "-log(y + 1e-7)",
        *EPSILON,
    ),
    _pass(1, "ch07/simple_convnet.py:SimpleConvNet", "simple_conv_net", "-log(y + 1e-7)", *EPSILON),
    _pass(1, "ch08/deep_convnet.py:DeepConvNet", "deep_conv_net", "1x28x28 only, -log(y + 1e-7)", *EPSILON),
    # book 2
    _pass(2, "common.layers:MatMul", "matmul", "right"),
    _fail(2, "common.layers:Affine", "affine", "2-D input only", "exception", "nd"),
    _pass(2, "common.layers:Softmax", "softmax", "right"),
    _pass(2, "common.layers:SoftmaxWithLoss", "softmax_with_loss", "-log(y + 1e-7)", *EPSILON),
    _pass(2, "common.layers:Sigmoid", "sigmoid", "right"),
    _pass(2, "common.layers:SigmoidWithLoss", "sigmoid_with_loss", "-log(y + 1e-7)", *EPSILON),
    _pass(2, "common.layers:Dropout", "dropout", "no test-mode backward: a note"),
    _pass(2, "common.layers:Embedding", "embedding", "right"),
    _pass(2, "ch04/negative_sampling_layer.py:EmbeddingDot", "embedding_dot", "right"),
    _pass(
        2,
        "ch04/negative_sampling_layer.py:NegativeSamplingLoss",
        "negative_sampling_loss",
        "-log(y + 1e-7)",
        *EPSILON,
        "--dtype",
        "float64",
    ),
    _pass(2, "common.time_layers:RNN", "rnn", "right"),
    _pass(2, "common.time_layers:LSTM", "lstm", "right"),
    _pass(2, "common.time_layers:GRU", "gru", "right"),
    _pass(2, "common.time_layers:TimeRNN", "time_rnn", "dtype='f' buffers: float32 only", *F32),
    _pass(2, "common.time_layers:TimeLSTM", "time_lstm", "dtype='f' buffers: float32 only", *F32),
    _pass(2, "common.time_layers:TimeGRU", "time_gru", "dtype='f' buffers: float32 only", *F32),
    _pass(2, "common.time_layers:TimeBiLSTM", "time_bilstm", "dtype='f' buffers: float32 only", *F32),
    _pass(2, "common.time_layers:TimeEmbedding", "time_embedding", "dtype='f' buffers: float32 only", *F32),
    _pass(2, "common.time_layers:TimeAffine", "time_affine", "right"),
    _fail(
        2,
        "common.time_layers:Simple_TimeAffine",
        "time_affine",
        "reads dW of an Affine that has grads",
        "exception",
    ),
    _fail(
        2,
        "common.time_layers:TimeSoftmaxWithLoss",
        "time_softmax_with_loss",
        "np.log of a softmax that underflows",
        "overflow",
        "extreme",
    ),
    BookClass(
        2,
        "common.time_layers:Simple_TimeSoftmaxWithLoss",
        "time_softmax_with_loss",
        "fail",
        "never ignores label -1 (and -log(y + 1e-7))",
        EPSILON,
        "other",
        ("ignored",),
    ),
    _pass(
        2,
        "common.time_layers:TimeSigmoidWithLoss",
        "time_sigmoid_with_loss",
        "-log(y + 1e-7)",
        *EPSILON,
        *F32,
    ),
    _pass(2, "common.time_layers:TimeDropout", "time_dropout", "right"),
    _pass(2, "ch08/attention_layer.py:WeightSum", "weight_sum", "right"),
    _pass(2, "ch08/attention_layer.py:AttentionWeight", "attention_weight", "right"),
    _pass(2, "ch08/attention_layer.py:Attention", "attention", "right"),
    _pass(2, "ch08/attention_layer.py:TimeAttention", "time_attention", "right"),
    _pass(2, "ch03/simple_cbow.py:SimpleCBOW", "simple_cbow", "-log(y + 1e-7)", *EPSILON),
    _pass(2, "ch04/cbow.py:CBOW", "cbow", "-log(y + 1e-7)", *EPSILON),
    _pass(2, "ch04/skip_gram.py:SkipGram", "skip_gram", "-log(y + 1e-7)", *EPSILON),
    _pass(2, "ch05/simple_rnnlm.py:SimpleRnnlm", "simple_rnnlm", "float32, as the book's parameters"),
    _pass(2, "ch06/rnnlm.py:Rnnlm", "rnnlm", "float32, as the book's parameters"),
    _pass(2, "ch06/better_rnnlm.py:BetterRnnlm", "better_rnnlm", "float32, as the book's parameters"),
    _pass(2, "ch07/seq2seq.py:Seq2seq", "seq2seq", "float32, as the book's parameters"),
    _pass(2, "ch07/peeky_seq2seq.py:PeekySeq2seq", "peeky_seq2seq", "float32, as the book's parameters"),
    _pass(
        2,
        "ch08/attention_seq2seq.py:AttentionSeq2seq",
        "attention_seq2seq",
        "float32, as the book's parameters",
    ),
)


def run_book_class(case: BookClass, json_path: Path) -> subprocess.CompletedProcess[str]:
    """``backprop-verify --layer SPEC --against ROW FLAGS --json PATH`` where a learner would run it."""
    root = Path(BOOKS) / REPOSITORIES[case.book]
    folder, spec = root, case.spec
    if spec.startswith("ch") and "/" in spec.split(":")[0]:
        chapter, spec = spec.split("/", 1)
        folder = root / chapter
    argv = ["--layer", spec, "--against", case.row, *case.flags, "--json", str(json_path), "--quiet"]
    command = "import sys; from backprop.verify.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", command, *argv], cwd=folder, capture_output=True, text=True, timeout=1800
    )


NOT_IN_THE_BOOKS = {"channel_batch_normalization": "the library's own per-channel variant of chapter 6"}


def test_the_table_covers_every_row_the_books_have() -> None:
    from backprop.verify.registry import names

    missing = set(names()) - {c.row for c in TABLE} - set(NOT_IN_THE_BOOKS)
    assert not missing, sorted(missing)


@needs_books
@pytest.mark.parametrize("case", TABLE, ids=lambda c: c.id)
def test_book_class_gets_its_fair_verdict(case: BookClass, tmp_path: Path) -> None:
    done = run_book_class(case, tmp_path / "report.json")
    assert done.returncode in (0, 1), f"{case.id}: exit {done.returncode}\n{done.stderr}"
    report = json.loads((tmp_path / "report.json").read_text())
    layers = report["layers"]
    if case.verdict == "pass":
        failed = [
            f"{layer['dtype']}: {layer.get('failure', {}).get('diagnosis')}"
            for layer in layers
            if layer["verdict"] != "pass"
        ]
        assert report["passed"] and done.returncode == 0, (
            f"{case.id} ({case.why}) must pass: {failed}\n{done.stdout[-3000:]}"
        )
        return
    assert not report["passed"] and done.returncode == 1, f"{case.id} ({case.why}) must fail"
    diagnoses = {f["diagnosis"] for layer in layers for f in layer.get("failures", [])}
    assert case.diagnosis in diagnoses, f"{case.id}: expected {case.diagnosis}, got {diagnoses}"
    scoped = {w for layer in layers for w in layer.get("passes_without", [])}
    assert set(case.passes_without) <= scoped, (
        f"{case.id}: expected the scope {case.passes_without}, got {scoped}"
    )
