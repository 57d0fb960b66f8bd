"""Running a function in a child process: values come back, and no way of dying ends the caller."""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backprop.verify.isolate import ChildDied, ChildRaised, run_isolated

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.oracle,  # every test here runs the oracle
    pytest.mark.skipif(
        "fork" not in multiprocessing.get_all_start_methods(),
        reason="the tests pass closures, which need fork",
    ),
]


class Unpicklable(Exception):
    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("this exception refuses to be pickled")


class TwoArguments(Exception):
    """Pickles, but cannot be unpickled: Exception pickles only args, and __init__ wants two."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def test_the_return_value_comes_back() -> None:
    offset = 10  # a closure, which only the fork start method can run
    assert run_isolated(lambda a, b: a + b + offset, 1, 2) == 13


def test_a_large_result_does_not_deadlock() -> None:
    result = run_isolated(np.arange, 3_000_000, timeout=10)
    assert isinstance(result, np.ndarray)
    assert result.shape == (3_000_000,) and result[-1] == 2_999_999


def test_os_exit_is_reported_not_fatal() -> None:
    result = run_isolated(lambda: os._exit(0))
    assert result == ChildDied(0, None, "the process ended with exit code 0 during the check (os._exit?)")


def _segfault() -> None:
    faulthandler.disable()  # pytest's faulthandler would dump the child's stack onto the terminal
    os.kill(os.getpid(), signal.SIGSEGV)


def test_a_segfault_is_reported_with_its_signal() -> None:
    result = run_isolated(_segfault)
    assert isinstance(result, ChildDied)
    assert result.exitcode == -signal.SIGSEGV
    assert result.signal_name == "SIGSEGV"
    assert result.message == "the process was killed by SIGSEGV during the check"


def test_sys_exit_in_the_child_is_reported() -> None:
    result = run_isolated(sys.exit, 3)
    assert result == ChildDied(3, None, "the process called sys.exit(3) during the check")


def test_an_exception_is_raised_again_with_the_child_traceback() -> None:
    def fails() -> None:
        raise ValueError("bad shape")

    with pytest.raises(ValueError, match="bad shape") as raised:
        run_isolated(fails)
    notes = getattr(raised.value, "__notes__", [])
    assert len(notes) == 1
    assert "raised in the isolated child process" in notes[0] and "in fails" in notes[0]


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (Unpicklable("cannot travel"), "Unpicklable: cannot travel"),
        (TwoArguments("forward", "broken"), "TwoArguments: forward: broken"),
    ],
)
def test_an_exception_that_cannot_travel_is_raised_as_child_raised(exc: Exception, text: str) -> None:
    def fails() -> None:
        raise exc

    with pytest.raises(ChildRaised) as raised:
        run_isolated(fails)
    assert str(raised.value) == text
    assert "in fails" in raised.value.child_traceback


def test_an_unpicklable_result_is_reported_not_hung() -> None:
    result = run_isolated(lambda: lambda: None, timeout=10)
    assert isinstance(result, ChildDied)
    assert result.message.startswith("the result (function) could not be pickled to send it back")


def test_a_child_that_does_not_finish_is_stopped() -> None:
    started = time.monotonic()
    result = run_isolated(time.sleep, 30, timeout=0.5)
    assert time.monotonic() - started < 3
    assert isinstance(result, ChildDied)
    assert result.message == "the check did not finish within 0.5 s and its process was stopped"


def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        run_isolated(print, timeout=-1)


# A class of __main__ sent to a fresh (spawned) child: from `python -c` (as from a notebook cell) the child
# cannot import it, so run_isolated says so before starting; from a script it reruns the file and works.
_MAIN = """
import pickle
import sys

from backprop.verify.isolate import run_isolated


class Layer:
    pass


def name(cls):
    return cls.__name__


if __name__ == "__main__":
    for args in ((name, Layer), (len, [Layer()])):
        try:
            print(run_isolated(*args, fresh=True))
        except pickle.PicklingError as exc:
            print(f"PicklingError: {exc}")
"""


@pytest.mark.parametrize("how", ["-c", "script"])
def test_a_main_class_goes_to_a_fresh_child_only_from_a_file(tmp_path: Path, how: str) -> None:
    script = tmp_path / "main_class.py"
    script.write_text(_MAIN)
    result = subprocess.run(
        [sys.executable, *(["-c", _MAIN] if how == "-c" else [str(script)])],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    if how == "script":
        assert result.stdout.splitlines() == ["Layer", "1"], result.stderr
    else:
        lines = result.stdout.splitlines()
        assert [line.split(" is defined in __main__")[0] for line in lines] == [
            "PicklingError: name",
            "PicklingError: Layer",
        ], result.stderr
        assert all("a fresh Python process cannot import" in line for line in lines)
        assert "Traceback" not in result.stderr  # no child was started to die unpickling it
