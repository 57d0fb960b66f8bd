"""The chapter-5 notebook runs clean in a Jupyter kernel of this environment, prints the seed's shopping
numbers exactly, every exercise is followed by a check that passes, its demonstration of a mistake shows
a failure whose program, run in the notebook as it says, reproduces the wrong value, and its closing
BatchNormalization exercise's report points at the one wrong line of the learner's backward."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

# the test extra installs nbclient, nbformat and ipykernel (the kernel); jupyter_client comes with nbclient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from tests.test_examples import EXPECTED

pytestmark = pytest.mark.oracle  # every test here runs the oracle

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebooks" / "backprop_chapter5.ipynb"
KERNEL = "backprop-test"
# the chapter's layers, and the closing exercise's BatchNormalization, each checked against its registry row
CHAPTER_ROWS = {"mul", "add", "relu", "sigmoid", "affine", "softmax_with_loss", "batch_normalization"}
WRONG_LINE = "        dvar = 0.5 * dstd * self.std"
"""The one wrong line of the learner's BatchNormalization.backward (``dstd / self.std`` is right)."""
VERDICT = re.compile(r"^(\w+) against '(\w+)': (.+?) \(", re.MULTILINE)
# printed by a first cell the test adds: which Python runs the kernel, and which backprop it imports
WHERE = "import sys, backprop; print(sys.prefix); print(backprop.__file__)"


def _kernel(folder: Path) -> KernelManager:
    """A kernel of this very Python, importing this checkout: a spec of our own, so that no python3 spec
    of another environment (a user's ~/.local/share/jupyter) is picked instead."""
    spec = folder / KERNEL
    spec.mkdir(parents=True)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "backprop tests",
        "language": "python",
        "env": {"PYTHONPATH": path},
    }
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder)]))


def _stdout(cell: Any) -> str:
    return "".join(o["text"] for o in cell.get("outputs", []) if o.get("name") == "stdout")


def _tagged(nb: Any, tag: str) -> list[Any]:
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


def _execute(folder: Path) -> Any:
    """The notebook, executed with its solutions, as nbclient leaves it (it raises on any cell's error)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(WHERE))
    km = _kernel(folder / "kernels")
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=300,
        record_timing=False,
        resources={"metadata": {"path": str(folder)}},  # the kernel's working folder
    )
    started = time.perf_counter()
    try:
        client.execute()
    finally:
        if km.has_kernel:  # nbclient leaves a kernel it did not start running
            km.shutdown_kernel(now=True)
    print(f"\nthe notebook ran in {time.perf_counter() - started:.1f} s")
    return nb


def _the_kernel_is_this_python_and_imports_this_checkout(executed: Any) -> None:
    prefix, package = _stdout(executed.cells[0]).splitlines()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()
    assert Path(package).resolve() == (ROOT / "backprop" / "__init__.py").resolve()


def _the_shopping_examples_print_the_seeds_numbers(executed: Any) -> None:
    printed = "".join(_stdout(c) for c in _tagged(executed, "shopping"))
    assert printed == EXPECTED["buy_apple.py"] + EXPECTED["buy_apple_orange.py"]


def _every_layer_of_the_chapter_is_checked_and_passes(executed: Any) -> None:
    verdicts = [m.groups() for c in _tagged(executed, "check") for m in VERDICT.finditer(_stdout(c))]
    assert {row for _, row, _ in verdicts} == CHAPTER_ROWS
    defined = {
        m.group(1)
        for c in executed.cells
        if c.cell_type == "code" and not {"mistake", "culprit"} & set(c.get("metadata", {}).get("tags", []))
        for m in re.finditer(r"^class (\w+)", c.source, re.MULTILINE)
    }
    assert {name for name, _, _ in verdicts} == defined
    assert [v for v in verdicts if v[2] != "passed"] == []


def _each_exercise_is_followed_by_its_check(executed: Any) -> None:
    code = [c for c in executed.cells if c.cell_type == "code"]
    exercises = [i for i, c in enumerate(code) if "# BEGIN SOLUTION" in c.source]
    assert len(exercises) == 4
    for i in exercises:
        name = re.search(r"^class (\w+)", code[i].source, re.MULTILINE)
        assert name is not None and code[i].source.count("# END SOLUTION") == 1
        check = code[i + 1]
        assert "check" in check.metadata.get("tags", []), code[i].source
        assert VERDICT.search(_stdout(check)) is not None
        assert _stdout(check).startswith(f"{name.group(1)} against ")


def _the_mistake_is_shown_and_its_program_reproduces_it_in_the_notebook(executed: Any) -> None:
    (mistake,) = _tagged(executed, "mistake")
    (rerun,) = _tagged(executed, "reproduce")
    shown = _stdout(mistake)
    assert "SeedSoftmaxWithLoss against 'softmax_with_loss': FAIL" in shown
    assert "[ignores_dout]" in shown
    assert "# SeedSoftmaxWithLoss was defined in a notebook cell" in shown
    assert "in a new cell of the same notebook" in shown
    # the program's last line prints the seed's dx; the shrunk example has dout = 0, where jax.vjp says 0
    assert "dout = 0.0" in shown and "# jax.vjp: np.array([[-0.0, -0.0]" in shown
    numbers = [float(x) for x in re.findall(r"-?\d+\.\d*(?:e-?\d+)?", _stdout(rerun))]
    assert numbers and any(x != 0 for x in numbers), _stdout(rerun)


def _the_culprit_is_the_wrong_line_of_batch_normalization(executed: Any) -> None:
    (cell,) = _tagged(executed, "culprit")
    shown = _stdout(cell)
    assert "BatchNormalization against 'batch_normalization': FAIL" in shown, shown
    lines = cell.source.splitlines()
    assert lines.count(WRONG_LINE) == 1  # the line the report must name, by its number in the cell
    number = lines.index(WRONG_LINE) + 1
    assert re.search(rf"line {number} of \S+:\s+{re.escape(WRONG_LINE.strip())}", shown), shown
    assert "dvar should be the gradient at var" in shown, shown


def test_the_chapter_notebook_runs_clean(tmp_path: Path) -> None:
    # one test, so that the notebook runs once however xdist spreads the tests
    executed = _execute(tmp_path)
    _the_kernel_is_this_python_and_imports_this_checkout(executed)
    _the_shopping_examples_print_the_seeds_numbers(executed)
    _every_layer_of_the_chapter_is_checked_and_passes(executed)
    _each_exercise_is_followed_by_its_check(executed)
    _the_mistake_is_shown_and_its_program_reproduces_it_in_the_notebook(executed)
    _the_culprit_is_the_wrong_line_of_batch_normalization(executed)
