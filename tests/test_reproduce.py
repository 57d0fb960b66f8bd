"""The printed program of a layer defined in ``__main__`` says where to run it, and reproduces the failure
there. (Every failing catalogue layer's program is run in a fresh Python process by the catalogue's own
tests, on the failure they found: ``tests/reproduce.py``.)"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop.verify import verify
from tests.reproduce import HARNESS, Programs, reproduced

pytestmark = pytest.mark.oracle  # every test here runs the oracle

ROOT = Path(__file__).resolve().parents[1]


# A layer defined in __main__: a script, a module run with -m, and `python -c` (which, like a notebook cell,
# has no file). The script writes its failure's program with the wrong and the expected value; the program
# must then reproduce the wrong value where its first lines say to run it.
MAIN_LAYER = """
import pickle
import sys

import numpy as np

from backprop.verify import verify


class DoubledRelu:
    def forward(self, x):
        self.mask = x <= 0
        return np.where(self.mask, 0.0, x)

    def backward(self, dout):
        return np.where(self.mask, 0.0, 2 * dout)


if __name__ == "__main__":
    failure = verify(DoubledRelu, "relu", max_examples=20, max_failures=1, scope=False).failure
    evidence = next(e for e in failure.mismatches if e.expected is not None)
    printed = []
    if sys.argv[2:] == ["in-session"]:  # what `python -c` and a notebook cell are told to do
        exec(failure.program, {**globals(), "print": printed.append})
    with open(sys.argv[1], "wb") as out:
        pickle.dump((failure.program, evidence.actual, evidence.expected, printed), out)
"""

HOW_FOUND = {
    "script": "DoubledRelu = runpy.run_path(",
    "module": "from doubled_relu import DoubledRelu",
    "-c": "# DoubledRelu was defined in __main__ with no file to import it from (`python -c`, the prompt)",
}


@pytest.mark.parametrize("how", sorted(HOW_FOUND))
def test_the_program_of_a_main_class_says_where_to_run_it_and_reproduces(tmp_path: Path, how: str) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / "doubled_relu.py").write_text(MAIN_LAYER)
    out = tmp_path / "out.pkl"
    command = {
        "script": [str(home / "doubled_relu.py"), str(out)],
        "module": ["-m", "doubled_relu", str(out)],
        "-c": ["-c", MAIN_LAYER, str(out), "in-session"],
    }[how]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cwd = home if how == "module" else elsewhere
    subprocess.run([sys.executable, *command], cwd=cwd, env=env, check=True, timeout=300)
    program, actual, expected, printed = pickle.loads(out.read_bytes())
    assert HOW_FOUND[how] in program, program
    assert not np.array_equal(actual, expected)
    (tmp_path / "in.pkl").write_bytes(pickle.dumps([program]))
    # a fresh Python process in another folder, as someone would run the program from a file
    subprocess.run(
        [sys.executable, "-c", HARNESS, str(tmp_path / "in.pkl"), str(tmp_path / "fresh.pkl")],
        cwd=elsewhere,
        env=env,
        check=True,
        timeout=300,
    )
    (fresh,) = pickle.loads((tmp_path / "fresh.pkl").read_bytes())
    if how == "-c":
        # nothing can import the class: a fresh process says which name is missing; the session reproduces
        assert fresh["raised"] == "NameError" and fresh["printed"] == []
    else:
        assert fresh["raised"] is None, program
        printed = fresh["printed"]
    assert len(printed) == 1 and np.array_equal(printed[0], actual), (printed, actual)


# Right, but raises once its W was changed in place, as an optimizer's step changes it: the exception comes on
# the training stage's next step, after the in-place update. In a module of its own, as a learner's file.
REFUSES_AN_UPDATED_W = """
import numpy as np

from backprop import Affine



class RefusesAnUpdatedW(Affine):
    def __init__(self, W, b):
        super().__init__(W, b)
        self.W0 = W.copy()

    def forward(self, x):
        if not np.array_equal(self.W, self.W0):
            raise RuntimeError("W changed since construction")
        return super().forward(x)
"""


def test_an_exception_on_the_next_training_step_is_reproduced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, programs: Programs
) -> None:
    """The program replays the calls that ran, up to the one that raised: here the training stage's
    in-place parameter step, then the forward that raises on it."""
    (tmp_path / "refuses_an_updated_w.py").write_text(REFUSES_AN_UPDATED_W)
    monkeypatch.syspath_prepend(str(tmp_path))
    layer = importlib.import_module("refuses_an_updated_w").RefusesAnUpdatedW
    failure = verify(layer, "affine", max_examples=20, max_failures=1, scope=False).failure
    assert failure is not None
    assert [m.where for m in failure.mismatches] == ["training, next step: forward()"]
    (result,) = programs.run([failure.program])
    assert result["raised"] == "RuntimeError", failure.program
    assert reproduced(failure, result) is None
