"""The printed program reproduces the failure: every failing catalogue layer's program is run in a fresh
Python process, and the wrong value, the raised error or the mutated array shows there as reported."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backprop.verify import Failure, get_row, reference_vjp, verify
from tests.catalogue.broken import BROKEN
from tests.catalogue.training import TRAINING

ROOT = Path(__file__).resolve().parents[1]

# Runs each program in its own namespace with print recorded; writes what happened, pickled.
HARNESS = """
import pickle, signal, sys
import numpy as np
programs = pickle.load(open(sys.argv[1], "rb"))
results = []

def hang(signum, frame):
    raise TimeoutError("the program did not finish: the hang reproduces")

signal.signal(signal.SIGALRM, hang)
for program in programs:
    printed = []
    ns = {"print": lambda *values: printed.append(values[0] if len(values) == 1 else values)}
    raised = None
    signal.alarm(3)
    try:
        exec(compile(program, "<program>", "exec"), ns)
    except BaseException as exc:
        raised = type(exc).__name__
    signal.alarm(0)
    layer = ns.get("layer")
    kept = {k: v for k, v in ns.items() if isinstance(v, np.ndarray | type(None)) or np.isscalar(v)}
    attrs = {k: v for k, v in vars(layer).items() if isinstance(v, np.ndarray | list)} if layer is not None and hasattr(layer, "__dict__") else {}
    results.append({"printed": [np.asarray(p) for p in printed], "raised": raised, "vars": kept, "attrs": attrs})
pickle.dump(results, open(sys.argv[2], "wb"))
"""

CASES = [(c.layer, c.against, c.dtype, dict(c.options)) for c in BROKEN] + [
    (c.layer, c.against, c.dtype, dict(c.options)) for c in TRAINING if c.verdict == "fail"
]
# a random slip reproduces only with the probability of the slip itself
CASES = [c for c in CASES if c[0].__name__ != "SigmoidRandomSlip"]


def _failure(layer: type, against: str, dtype: str, options: dict[str, Any]) -> Failure:
    report = verify(layer, against, dtype=dtype, **{"max_failures": 1, "scope": False, **options})
    assert report.failure is not None, f"{layer.__name__} passed"
    return report.failure


SHARDS = 4
"""The cases are split into this many tests, so that xdist workers share them; each case is still found
once, and each shard's programs run in one fresh process."""


def _run_all(folder: Path, shard: int) -> list[tuple[Failure, dict[str, Any]]]:
    """Every case of the shard: its failure, and what its program did in one fresh Python process."""
    failures = [_failure(*case) for case in CASES[shard::SHARDS]]
    (folder / "in.pkl").write_bytes(pickle.dumps([f.program for f in failures]))
    subprocess.run(
        [sys.executable, "-c", HARNESS, str(folder / "in.pkl"), str(folder / "out.pkl")],
        cwd=folder,  # not the repository: the program must find the layer on its own
        check=True,
        timeout=600,
    )
    return list(zip(failures, pickle.loads((folder / "out.pkl").read_bytes()), strict=True))


def _value(result: dict[str, Any], name: str) -> Any:
    if name in result["vars"]:
        return result["vars"][name]
    if name.startswith("grads["):
        key = name[6:-1]
        if key[:1] in ("'", '"'):  # a network's gradient dict, returned into ``grads``
            return result["vars"].get("grads", {}).get(key[1:-1])
        return result["attrs"]["grads"][int(key)]
    return result["attrs"].get(name)


def _before(failure: Failure, name: str) -> Any:
    """What ``name`` held before the layer could modify it: an argument, a dout, or the true output."""
    example, row = failure.example, get_row(failure.against)
    if name in example.values:
        return example.values[name]
    if name.startswith("dout"):
        return example.cotangents[int(name[4:] or 0)]
    reference = reference_vjp(row, example.values, example.cotangents)
    return reference.outputs[row.outputs.index(name)].value


def _reproduced(failure: Failure, result: dict[str, Any]) -> str | None:
    """Why the run does not show the failure, or None when it does."""
    if result["raised"] is not None:
        # an exception, an exit, a hang (stopped after 3 s) or an assertion of the layer's own
        hang = any(m.kind == "timeout" for m in failure.mismatches)
        return (
            None if hang == (result["raised"] == "TimeoutError") else f"the program raised {result['raised']}"
        )
    printed = iter(result["printed"])
    for ev, m in zip(failure.evidence, failure.mismatches, strict=True):
        if ev.expected is not None and m.kind in (
            "value",
            "nan",
            "stale",
            "param_copy",
            "stateful",
            "dout_one",
            "default_dout",
        ):
            shown = next(printed)
            if shown.shape == ev.expected.shape and np.allclose(shown, ev.expected, rtol=1e-12, atol=0):
                return f"{m.check} printed {shown!r}, which is the expected value"
            continue
        if m.kind == "mutated":
            if np.array_equal(_value(result, m.check), _before(failure, m.check), equal_nan=True):
                return f"{m.check} was not modified in the program"
        elif m.kind == "shape":
            if np.shape(_value(result, m.check)) != tuple(m.actual_shape or ()):
                return f"{m.check} does not have the reported shape {m.actual_shape}"
        elif m.kind == "dtype":
            if np.asarray(_value(result, m.check)).dtype == np.dtype(failure.example.dtype):
                return f"{m.check} has the run's dtype in the program"
        elif m.kind in ("returns_none", "missing") and _value(result, m.check) is not None:
            return f"{m.check} is set in the program"
    return None


@pytest.mark.parametrize("shard", range(SHARDS))
def test_every_printed_program_reproduces_its_failure(tmp_path: Path, shard: int) -> None:
    problems = [
        f"{failure.layer}: {problem}\n{failure.program}"
        for failure, result in _run_all(tmp_path, shard)
        if (problem := _reproduced(failure, result)) is not None
    ]
    assert not problems, "\n\n".join(problems)


def test_the_reproduction_covers_the_whole_catalogue() -> None:
    assert len(CASES) >= 50


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
    evidence = next(e for e in failure.evidence if e.expected is not None)
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
