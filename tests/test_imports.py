"""What each entry point imports: ``--list``, ``--help``, the registry and ``import backprop`` do without
JAX and Hypothesis (together 1.5 s to import, next to NumPy's 0.2 s).

Each check runs in a fresh interpreter, since this one has long imported JAX. Speed itself is measured
in the benchmarks, not here.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import backprop.verify.specs
import reference
from backprop.verify.lazy import LazyFunction, lazy
from backprop.verify.registry import ROWS, names

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("jax", "jaxlib", "hypothesis")
"""Packages that the registry, ``--list`` and ``--help`` must not import (submodules count)."""
REPORT = f"import sys; print(sorted({{m.partition('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"


def run_python(code: str) -> str:
    """stdout of ``python -c code`` in a fresh interpreter at the repository root."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_list_answers_without_jax_or_hypothesis() -> None:
    out = run_python(f"from backprop.verify.cli import main; code = main(['--list']); print(code); {REPORT}")
    *listing, code, heavy = out.splitlines()
    assert (code, heavy) == ("0", "[]")
    assert [line.split()[0] for line in listing if not line.startswith(" ")] == list(names())


def test_help_answers_without_jax_or_hypothesis() -> None:
    out = run_python(f"from backprop.verify.cli import main; code = main(['--help']); print(code); {REPORT}")
    *text, code, heavy = out.splitlines()
    assert (code, heavy) == ("0", "[]")
    assert "--list" in "\n".join(text)


def test_list_imports_no_third_party_package_but_numpy() -> None:
    """Beside the standard library, ``--list`` imports NumPy and this project's packages, nothing else."""
    code = (
        "import sys, io, contextlib; before = set(sys.modules); from backprop.verify.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--list'])\n"
        "new = {m.partition('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names)))"
    )
    assert run_python(code).strip() == "['backprop', 'numpy', 'reference']"


def test_python_m_list_imports_no_jax() -> None:
    """``python -m backprop.verify.cli`` imports the package ``backprop.verify`` first: it must stay light,
    without JAX or any of Hypothesis."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "backprop.verify.cli", "--list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.partition(".")[0] in HEAVY}
    assert "softmax_with_loss" in done.stdout


@pytest.mark.parametrize(
    "statement",
    [
        "import backprop",
        "import reference",
        "import backprop.verify",
        "from backprop.verify import ROWS, Arg, Feature, Row, get_row, names",
    ],
)
def test_imports_without_jax(statement: str) -> None:
    assert run_python(f"{statement}; {REPORT}").strip() == "[]"


@pytest.mark.parametrize("statement", ["import backprop", "import backprop.verify"])
def test_import_backprop_needs_no_verify_machinery(statement: str) -> None:
    """Beside the standard library, NumPy alone: no JAX, Hypothesis or Rich."""
    code = (
        f"import sys; before = set(sys.modules); {statement}; "
        "new = {m.partition('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names)))"
    )
    assert run_python(code).strip() == "['backprop', 'numpy']"


@pytest.mark.oracle
def test_the_oracle_imports_jax_only_when_it_computes_a_reference() -> None:
    assert "jax" not in run_python(f"from backprop.verify import verify; {REPORT}")
    compute = (
        "import os, numpy as np; os.environ['BACKPROP_NO_CACHE'] = '1'; "
        "from backprop.verify import get_row, reference_vjp; "
        "reference_vjp(get_row('relu'), {'x': np.ones(2)}, (np.ones(2),))"
    )
    assert "jax" in run_python(f"{compute}; {REPORT}")


# ---- lazily imported references ------------------------------------------------------------------------


@pytest.mark.oracle
def test_each_registered_reference_lives_in_the_mirrored_reference_module() -> None:
    """Spec module ``arithmetic`` names functions of ``reference.arithmetic`` (``nlp.attention`` those of
    ``reference.nlp.attention``), and they resolve; the layer class comes from the mirrored module of
    ``backprop`` for the second book."""
    prefix = "backprop.verify.specs."
    for info in pkgutil.walk_packages(backprop.verify.specs.__path__, prefix=prefix):
        module = importlib.import_module(info.name)
        mirrored = info.name.removeprefix(prefix)
        for row in getattr(module, "ROWS", ()):
            for function in (row.reference, row.epsilon):
                if function is None:
                    continue
                assert isinstance(function, LazyFunction)
                assert function.__module__ == f"reference.{mirrored}"
                resolved = function.resolve()
                assert resolved is getattr(importlib.import_module(function.__module__), function.__name__)
                if "." not in mirrored:  # book 1's references are also names of the package itself
                    assert resolved is getattr(reference, function.__name__)
            if mirrored.startswith("nlp.") and row.layer.__module__.startswith("backprop."):
                assert row.layer.__module__ == f"backprop.{mirrored}", row.name
    assert {row.name for row in ROWS} == set(names())


def test_a_lazy_function_looks_like_the_function() -> None:
    mul = lazy("reference.arithmetic", "mul")
    assert (mul.__module__, mul.__name__, mul.__qualname__) == ("reference.arithmetic", "mul", "mul")
    assert repr(mul) == "<function reference.arithmetic.mul (imported on first call)>"
    assert mul.__doc__ == reference.mul.__doc__
    assert inspect.signature(mul) == inspect.signature(reference.mul)
    assert float(mul(2.0, 3.0)) == 6.0
    again = pickle.loads(pickle.dumps(mul))
    assert (again.__module__, again.__name__) == (mul.__module__, mul.__name__)
    assert again.resolve() is reference.mul
    assert LazyFunction.__doc__ is not None and "first use" in LazyFunction.__doc__


def test_a_lazy_function_that_is_not_there_fails_on_first_call() -> None:
    missing = lazy("reference.arithmetic", "div")
    with pytest.raises(AttributeError, match="div"):
        missing(1.0, 2.0)


@pytest.mark.oracle
def test_the_reference_affine_stays_the_function_after_its_submodule_is_imported() -> None:
    """The import system binds a submodule on its package: ``reference.affine`` must stay the function."""
    code = (
        "import reference, reference.affine; print(callable(reference.affine), reference.affine.__module__)"
    )
    assert run_python(code).split() == ["True", "reference.affine"]
    assert "relu" in dir(reference)
    with pytest.raises(AttributeError):
        reference.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_the_package_names_resolve_to_their_submodules() -> None:
    import backprop.verify as oracle
    from backprop.verify import cache, registry

    assert oracle.get_row is registry.get_row
    assert oracle.ROWS is registry.ROWS
    assert cache.__name__ == "backprop.verify.cache"  # a submodule, not a lazily exported name
    assert set(oracle.__all__) <= set(dir(oracle))
    with pytest.raises(AttributeError):
        oracle.no_such_name  # type: ignore[attr-defined]  # noqa: B018
