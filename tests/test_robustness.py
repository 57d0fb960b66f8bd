"""The oracle cannot be fooled or crashed: odd return values, hangs, exits, leaked global state, bad
arguments, unbounded caches; and the scope, hint and headline rules of a verdict."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from backprop import Relu
from backprop.verify import ROWS, Feature, examples, get_row, verify, verify_all
from backprop.verify import runner as runner_module
from backprop.verify.cli import main
from backprop.verify.mismatch import Mismatch
from backprop.verify.report import Failure
from backprop.verify.search import _own_constants
from backprop.verify.tolerances import TOLERANCES, compare
from tests.catalogue.learner import SoftmaxWithLossInPlace
from tests.processes import start_cli

ROOT = Path(__file__).resolve().parents[1]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- layers that return odd things, hang, or change global state -------------------------------------------


class HugeGradient(Relu):
    def backward(self, dout: Any) -> Any:
        return np.array(10**400)  # OverflowError inside backward


class _BadArray:
    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise RuntimeError("no array for you")


class ArrayRaises(Relu):
    def backward(self, dout: Any) -> Any:
        return _BadArray()


class Hangs(Relu):
    def backward(self, dout: Any) -> Any:
        while True:
            time.sleep(0.01)


class SetsErrorState(Relu):
    def forward(self, x: Any) -> Any:
        np.seterr(all="ignore")
        return super().forward(x)


class ForwardWrongShape(Relu):
    def forward(self, x: Any) -> Any:
        return np.atleast_1d(super().forward(x))[None]


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("layer", "code"),
    [(HugeGradient, "other"), (ArrayRaises, "other"), (ForwardWrongShape, "shape")],
)
def test_odd_values_fail_with_a_diagnosis_not_a_traceback(layer: type, code: str) -> None:
    report = verify(layer, "relu", max_examples=10, max_failures=1, scope=False)
    assert report.failure is not None
    assert report.failure.mismatches[0].diagnosis == code, report.failure.render()


@pytest.mark.oracle
def test_a_wrong_forward_shape_gets_forward_words() -> None:
    failure = verify(ForwardWrongShape, "relu", max_examples=10, max_failures=1, scope=False).failure
    assert failure is not None
    first = failure.mismatches[0]
    assert first.check == "out" and "forward() returned out of shape" in first.explanation
    assert "Sum the gradient" not in first.hint


@pytest.mark.oracle
def test_a_hang_fails_with_timeout_naming_the_call() -> None:
    start = time.perf_counter()
    report = verify(Hangs, "relu", max_examples=3, timeout=0.3, max_failures=1, scope=False)
    assert report.failure is not None and report.verdict == "timeout"
    assert time.perf_counter() - start < 60
    mismatch = report.failure.mismatches[0]
    assert mismatch.diagnosis == "timeout" and mismatch.message == "backward() did not return within 0.3 s"


@pytest.mark.oracle
def test_a_hang_while_shrinking_ends_the_check_and_keeps_the_failure_found() -> None:
    calls: list[int] = []

    class WrongThenHangs(Relu):
        def backward(self, dout: Any) -> Any:
            calls.append(1)
            if len(calls) > 1:  # the first example fails; Hypothesis calls again to shrink it
                while True:
                    time.sleep(0.01)
            return super().backward(dout) + 1

    report = verify(WrongThenHangs, "relu", max_examples=20, timeout=0.3)
    assert len(calls) == 2  # no call after the one that hung: no more shrinking, searching or diagnosing
    assert report.verdict == "timeout" and report.timed_out and not report.passed
    wrong, hang = report.failures
    assert [m.kind for m in wrong.mismatches] == ["value"] and not wrong.shrunk
    assert [m.diagnosis for m in hang.mismatches] == ["timeout"] and not hang.shrunk
    assert report.passes_without == ()
    assert "failing example as drawn (not shrunk" in hang.render()


@pytest.mark.oracle
def test_a_layers_error_state_does_not_leak_to_the_caller() -> None:
    before = np.geterr()
    assert verify(SetsErrorState, "relu", max_examples=5).passed
    assert np.geterr() == before


@pytest.mark.oracle
def test_the_api_validates_like_the_cli() -> None:
    assert verify(Relu, "relu", max_examples=np.int64(5)).examples == 5
    with pytest.raises(ValueError, match="dtype must be one of float64, float32; got 'bogus'"):
        verify(Relu, "relu", dtype="bogus")
    with pytest.raises(ValueError, match=r"names must be a list of layer names, e.g. \['relu'\]"):
        verify_all("relu")
    with pytest.raises(ValueError, match="unknown feature 'nope'"):
        verify(Relu, "relu", without=("nope",))
    assert verify(Relu, get_row("relu"), max_examples=3).passed  # a Row where a name is expected


@pytest.mark.oracle
def test_the_compiled_reference_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "CACHE_SIZE", 4)
    monkeypatch.setattr(runner_module, "_compiled", OrderedDict())  # as if nothing were compiled yet
    verify(Relu, "relu", max_examples=30)
    assert runner_module.compiled_count() <= 4


# ---- the command line --------------------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--examples", "1e30"], "expected a positive integer, got '1e30'"),
        (["--examples", "2000000"], "at most 1,000,000 examples per layer"),
        (["--json", ""], "--json needs a file path"),
        (["--without", "colour"], "invalid choice: 'colour'"),
        (["--grad-names", "dW"], "expected NAME=ATTRIBUTE pairs"),
        (["--timeout", "0"], "expected a positive number of seconds"),
        (["--jobs", "0"], "expected a positive integer, got '0'"),
        (["--jobs", "1000"], "at most 256 jobs"),
        (["--shard", "0/2"], "expected K/N with 1 <= K <= N, such as 2/4; got '0/2'"),
        (["--shard", "3/2"], "expected K/N with 1 <= K <= N"),
        (["--shard", "half"], "expected K/N with 1 <= K <= N"),
    ],
)
def test_bad_arguments_fail_before_the_run_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = _cli(capsys, "relu", *argv)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.oracle
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this platform")
def test_a_json_path_that_refuses_data_fails_before_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "relu", "--json", "/dev/full")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "backprop-verify: error: --json /dev/full: cannot write: No space left on device"
    ]


@pytest.mark.oracle
def test_without_narrows_the_run_and_the_report_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    layer = "tests/catalogue/learner.py:MulLayer"
    path = tmp_path / "r.json"
    code, out, _ = _cli(
        capsys, "--layer", layer, "--against", "mul", "--dtype", "float64", "--json", str(path)
    )
    assert code == 1
    assert "scope: right on same-shape inputs; wrong when the inputs broadcast" in out
    entry = json.loads(path.read_text())["layers"][0]
    assert entry["passes_without"] == ["broadcast"] and entry["failure"]["diagnosis"] == "unbroadcast"
    argv = (
        "--layer",
        layer,
        "--against",
        "mul",
        "--dtype",
        "float64",
        "--without",
        "broadcast",
        "--examples",
        "20",  # the scope search above already ran it without broadcast: here the flag and the report
        "--json",
        str(path),
    )
    code, out, _ = _cli(capsys, *argv)
    assert code == 0 and "checked without broadcast" in out
    assert json.loads(path.read_text())["layers"][0]["scope"] == ["broadcast"]


@pytest.mark.oracle
def test_a_row_of_your_own_from_the_command_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    code, out, _ = _cli(
        capsys,
        "--layer",
        "examples/swish_row.py:Swish",
        "--against",
        "examples/swish_row.py:SWISH",
        "--examples",
        "20",
    )
    assert code == 0 and "swish_row.Swish vs swish" in out
    code, _, err = _cli(
        capsys, "--layer", "examples/swish_row.py:Swish", "--against", "examples/swish_row.py:Swish"
    )
    assert code == 2 and "is a type, not a backprop.verify.Row" in err


@pytest.mark.oracle
def test_a_real_ctrl_c_stops_the_run_with_130(tmp_path: Path) -> None:
    slow = tmp_path / "slow.py"
    slow.write_text(
        "import time\nfrom backprop import Relu\n\nclass Slow(Relu):\n"
        "    def forward(self, x):\n        time.sleep(0.05)\n        return super().forward(x)\n"
    )
    proc = start_cli("--layer", f"{slow}:Slow", "--against", "relu", "--examples", "100000")
    assert proc.stderr is not None
    assert "checking" in proc.stderr.readline()  # the run has started
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


# ---- verdict rules -----------------------------------------------------------------------------------------


def test_one_extreme_sample_cannot_hide_a_one_percent_error_in_another() -> None:
    for dtype in ("float64", "float32"):
        tol = TOLERANCES[dtype]
        expected = np.array([[1e4, -1e4, 3.0], [0.5, -0.25, 0.75]])
        actual = expected.copy()
        actual[1] *= 1.01
        assert not compare(expected, actual, tol, batched=True).ok
        assert compare(expected, expected.astype(dtype).astype(np.float64), tol, batched=True).ok


def test_a_small_element_with_its_sign_flipped_is_caught() -> None:
    expected = np.array([1.0, 1e-6, 3.0])
    actual = expected * np.array([1.0, -1.0, 1.0])
    assert not compare(expected, actual, TOLERANCES["float64"], terms=np.abs(expected)).ok


@pytest.mark.oracle
def test_hints_speak_of_the_layer_at_hand() -> None:
    failure = verify(
        SoftmaxWithLossInPlace, "softmax_with_loss", max_examples=50, max_failures=1, scope=False
    ).failure
    assert failure is not None
    hints = " ".join(m.hint for m in failure.mismatches)
    assert "in_place" in {m.diagnosis for m in failure.mismatches}
    assert "mask" not in hints and "x = x.copy()" in hints


def test_the_headline_diagnosis_is_the_most_specific() -> None:
    mismatches = [
        Mismatch(check="dx", primal="dx", kind="value", message="", diagnosis="other"),
        Mismatch(check="x", primal="x", kind="mutated", message="", diagnosis="in_place"),
        Mismatch(check="dx", primal="dx", kind="value", message="", diagnosis="ignores_dout"),
    ]
    failure = Failure("m.L", "relu", None, {}, mismatches)  # type: ignore[arg-type]
    assert failure.diagnosis == "ignores_dout"


# ---- rare shapes -------------------------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_every_row_reaches_its_rare_features_in_a_default_run(row: Any) -> None:
    """Large sizes, rank 4 and -0.0 show up within 100 examples of the default seed's kind of run."""
    seen: set[Feature] = set()

    @settings(max_examples=100, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(examples(row))
    def draw(example: Any) -> None:
        seen.update(row.features_of(example.values))

    with _own_constants():  # as the oracle draws: from the row's domains only
        draw()
    wanted = {Feature.LARGE, Feature.RANK4, Feature.NEGATIVE_ZERO, Feature.EXTREME} & set(row.features)
    assert wanted <= seen, f"{row.name}: never drew {sorted(wanted - seen)}"


@pytest.mark.oracle
def test_the_scope_search_skips_a_feature_whose_absence_leaves_no_shapes() -> None:
    from tests.catalogue.broken import SoftmaxLossNoBatchDivide

    report = verify(SoftmaxLossNoBatchDivide, "softmax_with_loss", without=["one_hot"], max_examples=30)
    assert report.failure is not None and report.error is None
    assert "labels" not in report.passes_without  # without one-hot targets, labels cannot be turned off


@pytest.mark.oracle
def test_what_an_isolated_layer_prints_stays_out_of_the_json_on_stdout(tmp_path: Path) -> None:
    loud = tmp_path / "loud.py"
    loud.write_text(
        "from backprop import Relu\n\nclass Loud(Relu):\n    def backward(self, dout):\n"
        "        print('debugging', dout.shape)\n        return super().backward(dout)\n"
    )
    argv = ["--layer", f"{loud}:Loud", "--against", "relu", "--dtype", "float64", "--examples", "3"]
    command = [sys.executable, "-m", "backprop.verify.cli", *argv, "--isolate", "--json", "-"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["passed"] is True
    assert "debugging" in done.stderr


@pytest.mark.oracle
def test_isolate_turns_even_os_exit_into_a_failure(tmp_path: Path) -> None:
    dies = tmp_path / "dies.py"
    dies.write_text(
        "import os\nfrom backprop import Relu\n\nclass Dies(Relu):\n    def backward(self, dout):\n        os._exit(0)\n"
    )
    argv = ["--layer", f"{dies}:Dies", "--against", "relu", "--dtype", "float64", "--examples", "5"]
    command = [sys.executable, "-m", "backprop.verify.cli", *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    unguarded = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert unguarded.returncode == 0  # what --isolate is for: os._exit ends the process in-process
    isolated = subprocess.run([*command, "--isolate"], capture_output=True, text=True, env=env, timeout=120)
    assert isolated.returncode == 1, isolated.stdout + isolated.stderr
    assert "the process ended with exit code 0 during the check (os._exit?)" in isolated.stdout
    assert "--isolate" in isolated.stdout  # the reproduce line keeps the option


class Book2AffineShortGrads:
    """Book 2 style, but ``grads`` lists only dW."""

    def __init__(self, W: Any, b: Any) -> None:
        self.params = [W, b]
        self.grads = [np.zeros_like(W)]
        self.x: Any = None

    def forward(self, x: Any) -> Any:
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.params[0] + self.params[1]

    def backward(self, dout: Any) -> Any:
        self.grads[0][...] = self.x.T @ dout
        return (dout @ self.params[0].T).reshape(self.x.shape[0], -1)


@pytest.mark.oracle
def test_a_grads_list_of_the_wrong_length_is_named() -> None:
    failure = verify(Book2AffineShortGrads, "affine", max_examples=20, max_failures=1, scope=False).failure
    assert failure is not None
    messages = [m.message for m in failure.mismatches]
    assert "grads has 1 entries but the layer has 2 parameters (W, b)" in messages, failure.render()


class ZeroForward(Relu):
    def forward(self, x: Any) -> Any:
        super().forward(x)
        return np.zeros_like(x)


@pytest.mark.oracle
def test_an_all_zero_output_gets_forward_words() -> None:
    failure = verify(ZeroForward, "relu", max_examples=30, max_failures=1, scope=False).failure
    assert failure is not None
    first = failure.mismatches[0]
    # an array reads "all zeros"; a scalar names its value and the correct one
    assert first.check == "out" and (
        first.explanation == "forward() returned all zeros for out."
        or first.explanation.startswith("forward() returned out = 0 where the correct value is")
    ), first.explanation
    assert "a 2 from a square" not in first.hint


@pytest.mark.oracle
def test_a_class_made_inside_a_function_gets_a_valid_program() -> None:
    class LocalRelu(Relu):
        def backward(self, dout: Any) -> Any:
            return 2 * super().backward(dout)

    failure = verify(LocalRelu, "relu", max_examples=20, max_failures=1, scope=False).failure
    assert failure is not None
    compile(failure.program, "<program>", "exec")  # valid Python, though the class must be pasted in
    assert "LocalRelu is defined in a function of" in failure.program
    assert "<locals>" not in failure.program
