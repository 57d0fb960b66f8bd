"""The ``backprop-verify`` command line and the layer loader behind ``--layer``.

Most tests call ``main([...])`` in-process (JAX compilations are then shared between tests); one runs
the module as a subprocess, the way the console script runs it.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.console import Console

import backprop
from backprop.verify.cli import Target, build_parser, main, run_targets
from backprop.verify.loader import LoadError, load_class
from backprop.verify.registry import ROWS as ROWS_
from backprop.verify.registry import get_row, names

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = "tests/fixtures"
GOOD = f"{FIXTURES}/good_affine.py"
BAD = f"{FIXTURES}/bad_affine.py"
BOOK = f"{FIXTURES}/book_affine.py"
ROWS = names()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run from the repository root without forced colour; forget the user modules a test loaded."""
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    ours = (sys.prefix, sys.base_prefix, str(ROOT / "backprop"), str(ROOT / "reference"))
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None)
        if file is not None and not file.startswith(ours):
            del sys.modules[name]  # a module the test loaded from a fixture or tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def strict_json(text: str) -> Any:
    def reject(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def table_row(out: str, label: str) -> list[str]:
    """The cells of the table row whose first cell is ``label``."""
    for line in out.splitlines():
        cells = [c.strip() for c in re.split("[│┃]", line)[1:-1]]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no table row for {label!r} in:\n{out}")


def without(value: Any, *keys: str) -> Any:
    """``value`` with every ``keys`` entry dropped from every nested dict."""
    if isinstance(value, dict):
        return {k: without(v, *keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, *keys) for v in value]
    return value


# ---- listing and running registered layers ------------------------------------------------------------


@pytest.mark.oracle
def test_list_shows_every_registered_layer_with_its_signature(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--list")
    assert (code, err) == (0, "")
    listed = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert listed == list(ROWS)
    for name in ROWS:
        assert get_row(name).signature in out
    assert "convention: relu'(0) = 0" in out

    code, out, _ = run(capsys, "--list", "relu")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines() if not line.startswith(" ")] == ["relu"]


@pytest.mark.oracle
def test_named_layers_pass_and_fill_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "relu", "sigmoid", "--examples", "12", "--jobs", "1")
    assert code == 0
    header = table_row(out, "layer")
    assert header == [
        "layer",
        "dtype",
        "examples",
        "distinct shapes",
        "compiles",
        "max abs error",
        "max rel error",
        "verdict",
    ]
    for name in ("relu", "sigmoid"):
        cells = table_row(out, name)
        assert cells[1] == "float64"  # the first of the layer's two rows
        assert cells[7] == "pass"
        assert 0 < int(cells[2]) <= 12
        assert 0 < int(cells[3]) <= int(cells[2])
        assert int(cells[4].split()[0]) <= int(cells[3])  # one reference per shape, at most
        assert float(cells[5]) < 1e-9
    assert "affine" not in out
    assert "all 4 passed" in out
    assert "\x1b[" not in out + err  # no colour codes when not a terminal
    assert "…" not in out  # no truncated cells
    # stderr is not a terminal here: no live progress, a line before and a line after each layer instead
    runs = ["relu float64", "relu float32", "sigmoid float64", "sigmoid float32"]
    assert err.splitlines()[::2] == [f"checking {r} ..." for r in runs]
    assert [line.split(":")[0] for line in err.splitlines()[1::2]] == runs


@pytest.mark.oracle
def test_rows_checked_in_worker_processes_give_the_same_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reports = []
    for jobs in ("1", "2"):
        code, out, err = run(
            capsys, "relu", "mul", "--examples", "8", "--jobs", jobs, "--json", str(tmp_path / jobs)
        )
        assert code == 0, out + err
        reports.append(without(strict_json((tmp_path / jobs).read_text()), "seconds", "compiles"))
    assert reports[0] == reports[1]
    assert [(r["name"], r["dtype"]) for r in reports[1]["layers"]] == [
        ("relu", "float64"),
        ("relu", "float32"),
        ("mul", "float64"),
        ("mul", "float32"),
    ]
    # not a terminal: one line first, then a line as each run finishes, in the order they finish
    first, *done = err.splitlines()
    assert first == "checking relu, mul (4 runs) in 2 processes ..."
    assert sorted(line.split(":")[0] for line in done) == [
        "mul float32",
        "mul float64",
        "relu float32",
        "relu float64",
    ]


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("shard", "rows"),
    # the first, a middle and the last shard: a twelfth of the rows each, since every row it runs compiles
    [("1/12", ROWS[0::12]), ("6/12", ROWS[5::12]), ("12/12", ROWS[11::12])],
)
def test_a_shard_checks_its_share_of_the_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shard: str, rows: tuple[str, ...]
) -> None:
    path = tmp_path / "report.json"
    argv = ["--shard", shard, "--examples", "2", "--dtype", "float64", "--jobs", "1", "--json", str(path)]
    code, out, err = run(capsys, *argv)
    assert code == 0, out + err
    assert [layer["name"] for layer in strict_json(path.read_text())["layers"]] == list(rows)


@pytest.mark.oracle
def test_turning_off_every_shape_of_a_row_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "softmax_with_loss", "--without", "labels", "--without", "one_hot")
    assert (code, out) == (2, "")
    assert err.strip() == (
        "backprop-verify: error: softmax_with_loss: every shape in its pool uses a feature turned off "
        "(labels, one_hot)"
    )


@pytest.mark.oracle
def test_a_shard_of_one_layer_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--layer", f"{GOOD}:Affine", "--against", "affine", "--shard", "1/2")
    assert (code, out) == (2, "")
    assert "--shard splits the registry's rows; it cannot be combined with --layer" in err


@pytest.mark.oracle
def test_quiet_prints_nothing_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "relu", "--examples", "5", "--quiet")
    assert (code, err) == (0, "")
    assert table_row(out, "relu")[7] == "pass"


@pytest.mark.oracle
def test_json_report_to_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    code, out, _ = run(capsys, "relu", "sigmoid", "--examples", "10", "--json", str(path))
    assert code == 0
    data = strict_json(path.read_text())
    assert data["schema"] == "backprop-verify/1"
    assert data["passed"] is True
    assert (data["seed"], data["max_examples"]) == (0, 10)
    assert [(layer["name"], layer["dtype"]) for layer in data["layers"]] == [
        ("relu", "float64"),
        ("relu", "float32"),
        ("sigmoid", "float64"),
        ("sigmoid", "float32"),
    ]
    for layer in data["layers"]:
        assert layer["examples"] > 0
        assert layer["verdict"] == "pass"
        assert layer["failure"] is None
    assert table_row(out, "relu")[7] == "pass"  # the table still goes to stdout


@pytest.mark.oracle
def test_json_to_stdout_moves_the_table_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "relu", "--examples", "5", "--json", "-")
    assert code == 0
    data = strict_json(out)  # all of stdout is the JSON document
    assert [layer["name"] for layer in data["layers"]] == ["relu", "relu"]
    assert table_row(err, "relu")[7] == "pass"


@pytest.mark.oracle
def test_same_seed_gives_identical_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    reports = []
    for attempt in ("first", "second"):
        path = tmp_path / f"{attempt}.json"
        # five examples a dtype: what repeats is the run, however long
        code, _, _ = run(capsys, "relu", "affine", "--examples", "5", "--seed", "7", "--json", str(path))
        assert code == 0
        # the compile count depends on what this process compiled before: a cache figure, not a verdict
        reports.append(without(strict_json(path.read_text()), "seconds", "compiles"))
    assert reports[0] == reports[1]
    assert reports[0]["seed"] == 7
    path = tmp_path / "other.json"
    assert run(capsys, "relu", "affine", "--examples", "5", "--seed", "8", "--json", str(path))[0] == 0
    assert (
        without(strict_json(path.read_text()), "seconds", "seed", "compiles")["layers"]
        != reports[0]["layers"]
    )


@pytest.mark.oracle
def test_dtype_float32_is_passed_through_to_the_report_and_reproduce_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "relu", "--examples", "5", "--dtype", "float32", "--json", "-", "--quiet")
    assert code == 0
    assert strict_json(out)["layers"][0]["dtype"] == "float32"
    argv = ["--layer", f"{BAD}:Affine", "--against", "affine", "--examples", "10", "--dtype", "float32"]
    code, out, _ = run(capsys, *argv, "--quiet")
    assert code == 1
    assert "dtype: float32" in out
    reproduce = (
        f"backprop-verify --layer {BAD}:Affine --against affine --seed 0 --examples 10 --dtype float32"
    )
    assert f"reproduce: {reproduce}" in out


@pytest.mark.oracle
def test_live_progress_on_a_terminal_shows_each_layer_finishing() -> None:
    stream = io.StringIO()
    terminal = Console(file=stream, force_terminal=True, width=100)
    args = build_parser().parse_args(["relu", "sigmoid", "--examples", "6"])
    targets = [Target(get_row(n).layer, n, n, f"backprop-verify {n}") for n in ("relu", "sigmoid")]
    run_report = run_targets(targets, args, terminal)
    assert [r.name for r in run_report.layers] == ["relu", "sigmoid"]
    assert run_report.passed
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert re.search(r"relu\s.*6/6.*pass", shown)
    assert re.search(r"sigmoid\s.*6/6.*pass", shown)


# ---- the user's own layers -------------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("spec", "label"),
    [
        (f"{GOOD}:Affine", "good_affine.Affine vs affine"),
        (f"{GOOD}:Outer.Inner", "good_affine.Outer.Inner vs affine"),
        ("backprop.affine:Affine", "backprop.affine.Affine vs affine"),
    ],
)
def test_a_correct_user_layer_passes(capsys: pytest.CaptureFixture[str], spec: str, label: str) -> None:
    code, out, _ = run(capsys, "--layer", spec, "--against", "affine", "--examples", "15")
    assert code == 0
    cells = table_row(out, label)
    assert cells[7] == "pass"
    assert int(cells[2]) > 0


@pytest.mark.oracle
def test_a_wrong_layer_fails_with_the_full_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    code, out, _ = run(
        capsys, "--layer", f"{BAD}:Affine", "--against", "affine", "--examples", "20", "--json", str(path)
    )
    assert code == 1
    assert table_row(out, "bad_affine.Affine vs affine")[7] == "FAIL"
    assert "FAIL bad_affine.Affine (checked against 'affine'): db wrong" in out
    assert re.search(r"shapes: W \(\d+, \d+\), b \(\d+,\), x \(\d+(, \d+)+\), dout \(\d+, \d+\)", out)
    worst = re.search(r"worst element db\[\d+\]: expected (\S+), actual (\S+)", out)
    assert worst is not None
    reproduce = (
        f"backprop-verify --layer {BAD}:Affine --against affine --seed 0 --examples 20 --dtype float64"
    )
    assert f"reproduce: {reproduce}" in out
    assert "smallest failing example" in out

    data = strict_json(path.read_text())
    assert data["passed"] is False
    failure = data["layers"][0]["failure"]
    assert failure["checks"][0]["check"] == "db"
    assert failure["reproduce"] == reproduce
    # the bug averages instead of summing: the reference is N times the layer's value
    batch = failure["shapes"]["x"][0]
    assert batch > 1
    assert float(worst.group(1)) == pytest.approx(batch * float(worst.group(2)))


@pytest.mark.oracle
def test_the_reproduce_line_reproduces_the_same_failure(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    argv = ["--layer", f"{BAD}:Affine", "--against", "affine", "--examples", "15", "--seed", "3"]
    assert run(capsys, *argv, "--json", str(first))[0] == 1
    failure = strict_json(first.read_text())["layers"][0]["failure"]
    program, *rest = shlex.split(failure["reproduce"])
    assert program == "backprop-verify"
    assert run(capsys, *rest, "--json", str(second))[0] == 1
    # in one process the second load is a fresh module bad_affine_2, hence "layer" and "program" are ignored
    # the first run checked both dtypes; the reproduce line names the failing one
    again = without(strict_json(second.read_text()), "seconds", "layer", "program", "compiles")
    assert (
        again["layers"]
        == without(strict_json(first.read_text()), "seconds", "layer", "program", "compiles")["layers"][:1]
    )


@pytest.mark.oracle
def test_the_books_affine_without_the_batch_reshape_is_caught(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "--layer", f"{BOOK}:Affine", "--against", "affine", "--examples", "20", "--json", "-"
    )
    assert code == 1
    failure = strict_json(out)["layers"][0]["failure"]
    assert len(failure["shapes"]["x"]) >= 3  # only an x with several feature axes exposes the missing reshape
    assert "FAIL book_affine.Affine (checked against 'affine')" in err
    assert f"reproduce: backprop-verify --layer {BOOK}:Affine --against affine" in err


# ---- bad arguments ---------------------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--layer", f"{FIXTURES}/missing.py:Affine", "--against", "affine"],
            "no such file: tests/fixtures/missing.py",
        ),
        (["--layer", f"{GOOD}:Afine", "--against", "affine"], "no class 'Afine'; it defines: Affine, Outer"),
        (["--layer", f"{GOOD}:Outer.Nope", "--against", "affine"], "no class 'Nope'; it defines: Inner"),
        (["--layer", f"{GOOD}:not_a_layer", "--against", "affine"], "not_a_layer is a function, not a class"),
        (
            ["--layer", f"{FIXTURES}/no_backward.py:Affine", "--against", "affine"],
            "no_backward.py:Affine has no back",
        ),
        (
            ["--layer", f"{FIXTURES}/raises_on_import.py:Affine", "--against", "affine"],
            "raised NameError: name 'undef",
        ),
        (["--layer", GOOD, "--against", "affine"], f"expected FILE.py:CLASS or MODULE:CLASS, got '{GOOD}'"),
        (
            ["--layer", "no_such_pkg.layers:Affine", "--against", "affine"],
            "no such module: no_such_pkg.layers",
        ),
        (["--layer", f"{GOOD}:Affine"], f"--layer {GOOD}:Affine needs --against"),
        (["--against", "affine"], "--against affine needs --layer"),
        (["--layer", f"{GOOD}:Affine", "--against", "afine"], "unknown layer 'afine'; known: mul, add, relu"),
        (
            ["relu", "--layer", f"{GOOD}:Affine", "--against", "affine"],
            "layer names (relu) cannot be combined",
        ),
        (["relux"], "unknown layer 'relux'; known: mul, add, relu, sigmoid, affine, softmax_with_loss"),
        (["--list", "relux"], "unknown layer 'relux'"),
        (["--examples", "0"], "--examples: expected a positive integer, got '0'"),
        (["--examples", "-3"], "--examples: expected a positive integer, got '-3'"),
        (["--examples", "many"], "--examples: expected a positive integer, got 'many'"),
        (["--seed", "-1"], "--seed: expected a non-negative integer, got '-1'"),
        (["--dtype", "float16"], "invalid choice: 'float16'"),
        (["relu", "--json", "no/such/dir/report.json"], "--json no/such/dir/report.json: no such directory"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["relu", "--eps", "1e-7"], "--eps: the row 'relu' has no eps to set"),
        (["batch_normalization", "--eps", "-1"], "--eps: eps must be a number >= 0, got -1.0"),
        (["batch_normalization", "--eps", "small"], "--eps: invalid float value: 'small'"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("backprop-verify: error: ")
    assert "Traceback" not in err
    assert expected in err


@pytest.mark.oracle
def test_help_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--help")
    assert (code, err) == (0, "")
    assert out.startswith("usage: backprop-verify")
    for option in ("--layer", "--against", "--examples", "--seed", "--dtype", "--json", "--list", "--quiet"):
        assert option in out


# ---- the loader ------------------------------------------------------------------------------------------


def test_loading_a_file_twice_gives_two_fresh_readable_modules() -> None:
    first = load_class(f"{GOOD}:Affine")
    second = load_class(f"{GOOD}:Affine")
    assert first is not second
    assert first.__module__ == "good_affine"  # readable in reports
    assert second.__module__ == "good_affine_2"  # never replaces a module already loaded


def test_loading_a_module_uses_the_normal_import() -> None:
    assert load_class("backprop.affine:Affine") is backprop.Affine
    assert load_class("backprop:Affine") is backprop.Affine


def test_a_bare_file_name_is_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sibling_scale.py").write_text("SCALE = 3\n")
    (tmp_path / "my_layer.py").write_text(
        "from sibling_scale import SCALE\n\n"
        "class Scale:\n"
        "    def forward(self, x):\n"
        "        return SCALE * x\n\n"
        "    def backward(self, dout):\n"
        "        return SCALE * dout\n"
    )
    (tmp_path / "noisy.py").write_text("raise RuntimeError('first line\\nsecond line')\n")
    monkeypatch.chdir(tmp_path)
    cls = load_class("my_layer.py:Scale")
    assert cls().forward(2) == 6
    with pytest.raises(LoadError) as info:
        load_class("noisy.py:Anything")
    assert str(info.value) == "importing noisy.py raised RuntimeError: first line second line"
    assert isinstance(info.value, ValueError)


# ---- as an installed command -----------------------------------------------------------------------------


@pytest.mark.oracle
def test_the_module_runs_as_a_command_with_clean_piped_output() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "backprop.verify.cli", "--layer", f"{BAD}:Affine", "--against", "affine"]
    proc = subprocess.run(
        [*argv, "--examples", "10"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "FAIL bad_affine.Affine (checked against 'affine'): db wrong" in proc.stdout
    assert (
        f"reproduce: backprop-verify --layer {BAD}:Affine --against affine --seed 0 --examples 10"
        in proc.stdout
    )
    assert "\x1b[" not in proc.stdout + proc.stderr


# ---- a layer that hangs ----------------------------------------------------------------------------------

_HANGS = """\
import time


class Relu:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dx = dout.copy()
        dx[self.mask] = 0
        return dx


class SleepsInForward(Relu):
    def forward(self, x):
        time.sleep(1000)


class SpinsInBackward(Relu):
    def backward(self, dout):
        while True:
            pass


class HangsOnItsSecondBackward(Relu):  # right once; hangs in training's next step
    def backward(self, dout):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > 1:
            time.sleep(1000)
        return super().backward(dout)


class SleepsInItsConstructor(Relu):
    def __init__(self):
        time.sleep(1000)
"""


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("cls", "call"),
    [
        ("SleepsInForward", "forward() did not return within 3 s"),
        ("SpinsInBackward", "backward() did not return within 3 s"),
        ("HangsOnItsSecondBackward", "training, next step: backward() did not return within 3 s"),
        ("SleepsInItsConstructor", "constructor() did not return within 3 s"),
    ],
)
def test_a_hanging_layer_ends_its_check_at_the_first_timeout(tmp_path: Path, cls: str, call: str) -> None:
    """Each further search (shrinking, more mistakes, scope, the other dtype) would call the layer again, a
    whole timeout each time: the first timeout ends the layer's check, in both dtypes, well within 30 s."""
    (tmp_path / "hangs.py").write_text(_HANGS)
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "backprop.verify.cli", "--layer", f"hangs.py:{cls}", "--against", "relu"]
    started = time.monotonic()
    proc = subprocess.run(
        [*argv, "--timeout", "3"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 30, f"{elapsed:.1f} s"
    assert "Traceback" not in proc.stderr
    label = f"hangs.{cls} vs relu"
    rows = [[c.strip() for c in re.split("│", line)[1:-1]] for line in proc.stdout.splitlines()]
    verdicts = [(r[1], r[-1]) for r in rows if r and r[0] == label]
    assert verdicts == [("float64", "timeout"), ("float32", "timeout")]
    check = call.split("(")[0].split()[-1]
    assert f"FAIL hangs.{cls} (checked against 'relu'): {check} timed out" in proc.stdout
    assert f"{check}: {call}" in proc.stdout  # which call hung, in which stage
    assert "failing example as drawn (not shrunk" in proc.stdout
    assert f"reproduce: backprop-verify --layer hangs.py:{cls} --against relu --seed 0" in proc.stdout
    assert (
        f"TIMEOUT {label} float32: not checked: its float64 check timed out ({call}), so it is not called "
        "again" in proc.stdout
    )
    assert "2 of 2 failed" in proc.stdout


# ---- the second book's convention, dtypes and the JSON schema ---------------------------------------------

BOOK2 = f"{FIXTURES}/book2_layers.py"


@pytest.mark.oracle
def test_a_second_book_layer_verifies_and_the_report_states_the_convention(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys, "--layer", f"{BOOK2}:Affine", "--against", "affine", "--examples", "15", "--json", "-"
    )
    assert code == 0
    layers = strict_json(out)["layers"]
    assert [layer["convention"] for layer in layers] == ["book 2 (params/grads lists)"] * 2
    code, out, _ = run(
        capsys, "--layer", f"{BOOK2}:AffineUnsummedBias", "--against", "affine", "--examples", "15"
    )
    assert code == 1
    assert "convention: book 2 (params/grads lists)" in out
    assert "grads[1] wrong" in out


@pytest.mark.oracle
def test_each_dtype_gets_its_own_row_and_worst_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sigmoid", "--examples", "20", "--json", "-", "--quiet")
    assert code == 0
    by_dtype = {layer["dtype"]: layer for layer in strict_json(out)["layers"]}
    assert set(by_dtype) == {"float64", "float32"}
    # float32 rounding is visible, float64 rounding is not at this scale
    assert by_dtype["float64"]["max_rel_error"] < 1e-12 < by_dtype["float32"]["max_rel_error"] < 1e-4


@pytest.mark.oracle
def test_json_reports_match_the_published_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    schema = json.loads((ROOT / "backprop" / "verify" / "report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for argv in (
        ["relu"],
        ["--layer", f"{BAD}:Affine", "--against", "affine"],
        ["--layer", f"{BOOK}:Affine", "--against", "affine"],
    ):
        code, out, _ = run(capsys, *argv, "--examples", "12", "--json", "-", "--quiet")
        assert code in (0, 1)
        jsonschema.validate(strict_json(out), schema)


@pytest.mark.oracle
def test_a_row_named_in_a_dtype_it_lacks_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    float64_only = [r.name for r in ROWS_ if "float32" not in r.dtypes]
    assert float64_only, "no float64-only row in the registry"
    code, out, err = run(capsys, "--dtype", "float32", float64_only[0])
    assert (code, out) == (2, "")
    assert (
        err.strip() == f"backprop-verify: error: {float64_only[0]} is checked in float64 only, not in float32"
    )


@pytest.mark.oracle
def test_a_model_written_as_the_books_runs_in_its_float32_and_refuses_float64(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # book 2's models allocate float32 ('f') and take no dtype: the model rows check them in float32
    layer = ["--layer", "tests.catalogue.learner:BookSimpleCBOW", "--against", "simple_cbow"]
    code, out, err = run(capsys, *layer, "--dtype", "float64")
    assert (code, out) == (2, "")
    assert err.strip() == (
        "backprop-verify: error: BookSimpleCBOW's constructor takes no dtype: it is checked in float32, the "
        "dtype the book's models allocate; give it a dtype argument to check it in float64"
    )
    code, out, _ = run(capsys, *layer, "--allow", "epsilon", "--examples", "5", "--json", "-", "-q")
    assert code == 0
    data = strict_json(out)
    assert data["passed"] is True
    assert [layer["dtype"] for layer in data["layers"]] == ["float32"]


@pytest.mark.oracle
def test_a_network_of_ones_own_is_checked_through_loss_and_gradient(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--layer", "tests.catalogue.broken:TwoLayerNetByHand", "--against", "two_layer_net"]
    code, out, err = run(capsys, *argv, "--examples", "5", "--jobs", "1")
    assert code == 0, out + err
    assert "1 passed" in out or "all 1 passed" in out
    code, out, err = run(capsys, "--layer", f"{GOOD}:Affine", "--against", "two_layer_net")
    assert (code, out) == (2, "")
    assert err.strip().endswith("has no loss or gradient method; the row drives loss() and gradient()"), err
