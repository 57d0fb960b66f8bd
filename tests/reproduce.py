"""Running a failure's printed program in a fresh Python process, and judging whether the failure shows there.

The catalogue's tests (``test_catalogue.py`` for the broken layers, ``test_learner.py`` for the training
catalogue's failures) hand each failure they found to :class:`Programs`, so that the search behind a
failure runs once: one Python process per test worker runs the programs, outside the repository, each in a
namespace of its own.
"""

from __future__ import annotations

import pickle
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backprop.verify import Failure, get_row, reference_vjp

# Runs programs, each in its own namespace with print recorded, and pickles what happened. With two paths
# it runs the programs of the first once and writes to the second; without, it serves requests, one line
# "in out" each, answering "done" on its own copy of stdout (a program's output goes to stderr).
HARNESS = """
import os, pickle, signal, sys
import numpy as np
try:  # the library, as an installed package: imported once, untimed (a layer's module imports it)
    import backprop.verify
except ImportError:
    pass

def hang(signum, frame):
    raise TimeoutError("the program did not finish: the hang reproduces")

signal.signal(signal.SIGALRM, hang)

def run(program):
    printed = []
    ns = {"print": lambda *values: printed.append(values[0] if len(values) == 1 else values)}
    raised = None
    # the program's imports are not timed: loading the layer's module (and JAX with it) takes seconds on a
    # busy machine
    lines = program.split("\\n")
    n = 0
    while n < len(lines) and (
        lines[n].startswith(("import ", "from ", "sys.path.", "#")) or not lines[n].strip() or "runpy.run_path(" in lines[n]
    ):
        n += 1
    try:
        exec(compile("\\n".join(lines[:n]), "<program>", "exec"), ns)
        # after 3 s, and every 0.5 s after that: an alarm that lands in a callback (JAX's on garbage
        # collection) is printed and ignored there, and must come again
        signal.setitimer(signal.ITIMER_REAL, 3, 0.5)
        try:
            exec(compile("\\n" * n + "\\n".join(lines[n:]), "<program>", "exec"), ns)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as exc:
        raised = type(exc).__name__
    layer = ns.get("layer")
    kept = {k: v for k, v in ns.items() if isinstance(v, np.ndarray | type(None)) or np.isscalar(v)}
    attrs = {k: v for k, v in vars(layer).items() if isinstance(v, np.ndarray | list)} if layer is not None and hasattr(layer, "__dict__") else {}
    return {"printed": [np.asarray(p) for p in printed], "raised": raised, "vars": kept, "attrs": attrs}

def serve(source, target):
    programs = pickle.load(open(source, "rb"))
    pickle.dump([run(program) for program in programs], open(target, "wb"))

if len(sys.argv) == 3:
    serve(sys.argv[1], sys.argv[2])
else:
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # the requests on a copy of stdin: the site's exit() in a program closes sys.stdin
    requests = os.fdopen(os.dup(0))
    sys.stdin = open(os.devnull)
    for line in requests:
        serve(*line.split())
        answers.write("done\\n")
        answers.flush()
"""

TIMEOUT = 300.0
"""Seconds one request may take (each program is stopped after 3)."""


class Programs:
    """A fresh Python process in ``folder`` (not the repository: a program must find its layer on its
    own) that runs printed programs on request."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests = 0
        self.process: subprocess.Popen[str] | None = None

    def run(self, programs: list[str]) -> list[dict[str, Any]]:
        """What each program did: what it printed, raised, and left in its namespace and its layer."""
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-c", HARNESS],
                cwd=self.folder,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests += 1
        source, target = self.folder / f"in{self.requests}.pkl", self.folder / f"out{self.requests}.pkl"
        source.write_bytes(pickle.dumps(programs))
        self.process.stdin.write(f"{source} {target}\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], TIMEOUT)
        answer = self.process.stdout.readline() if ready else ""
        if answer != "done\n":
            self.close()
            raise RuntimeError(f"the process running the programs ended or hung: {programs}")
        return list(pickle.loads(target.read_bytes()))

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Programs]:
    """One program runner per test worker."""
    runner = Programs(tmp_path_factory.mktemp("programs"))
    yield runner
    runner.close()


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


def reproduced(failure: Failure, result: dict[str, Any]) -> str | None:
    """Why the run of the failure's program does not show the failure, or None when it does."""
    if result["raised"] is not None:
        # an exception, an exit, a hang (stopped after 3 s) or an assertion of the layer's own
        hang = any(m.kind == "timeout" for m in failure.mismatches)
        return (
            None if hang == (result["raised"] == "TimeoutError") else f"the program raised {result['raised']}"
        )
    printed = iter(result["printed"])
    for m in failure.mismatches:
        if m.expected is not None and m.kind in (
            "value",
            "nan",
            "stale",
            "param_copy",
            "stateful",
            "dout_one",
            "default_dout",
        ):
            shown = next(printed)
            if shown.shape == m.expected.shape and np.allclose(shown, m.expected, rtol=1e-12, atol=0):
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


def assert_reproduces(programs: Programs, failure: Failure) -> None:
    """The failure's printed program, run in a fresh process, shows the failure as reported."""
    (result,) = programs.run([failure.program])
    problem = reproduced(failure, result)
    assert problem is None, (
        f"{failure.layer}: the printed program does not reproduce: {problem}\n{failure.program}"
    )
