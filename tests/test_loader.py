"""The layer loader: misspelt method names, user modules named like ours, interrupts at import."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import backprop
import reference
from backprop.verify import verify
from backprop.verify.cli import main
from backprop.verify.loader import LoadError, api_problem, load_class, warning_filters

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = "tests/fixtures/loader"
TYPOS = f"{FIXTURES}/typos.py"
OURS = ("reference", "backprop")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run from the repository root; forget the user modules a test loaded (as in test_cli.py)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    ours = (sys.prefix, str(ROOT / "backprop"), str(ROOT / "reference"))
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None)
        if file is not None and not file.startswith(ours):
            del sys.modules[name]  # a module the test loaded from a fixture or tmp_path


def our_modules() -> dict[str, ModuleType]:
    """Every ``reference`` and ``backprop`` module in ``sys.modules``, submodules included."""
    return {key: module for key, module in sys.modules.items() if key.partition(".")[0] in OURS}


def forward_globals(cls: type) -> dict[str, Any]:
    """The globals the class's ``forward`` sees: what its module imported."""
    globals_: dict[str, Any] = cls.forward.__globals__  # type: ignore[attr-defined]
    return globals_


def load_error(spec: str) -> str:
    """The LoadError message for ``spec``; anything else (KeyboardInterrupt too) fails only this test."""
    try:
        load_class(spec)
    except LoadError as exc:
        return str(exc)
    except BaseException as exc:
        pytest.fail(f"load_class({spec!r}) raised {exc!r} instead of LoadError")
    pytest.fail(f"load_class({spec!r}) returned a class instead of raising LoadError")


# ---- misspelt forward/backward ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("Backword", "has no backward method (it has backword: did you mean `backward`?)"),
        ("Forwrad", "has no forward method (it has forwrad: did you mean `forward`?)"),
        ("CapitalBackward", "has no backward method (it has Backward: did you mean `backward`?)"),
        ("Backwards", "has no backward method (it has backwards: did you mean `backward`?)"),
        ("CapitalForward", "has no forward method (it has FORWARD: did you mean `forward`?)"),
        (
            "BothMisspelt",
            "has no forward or backward method (it has forwrad: did you mean `forward`?; "
            "it has backword: did you mean `backward`?)",
        ),
        ("NothingAlike", "has no backward method; the book's API needs forward() and backward()"),
        ("NotCallable", "has no backward method (its backward is a NoneType, not a method)"),
    ],
)
def test_a_misspelt_method_is_named_with_a_suggestion(name: str, hint: str) -> None:
    assert load_error(f"{TYPOS}:{name}") == f"{TYPOS}:{name} {hint}"


def test_api_problem_names_the_class_and_accepts_a_correct_one() -> None:
    class MyLayer:
        def forward(self, x: Any) -> Any:
            return x

        def backword(self, dout: Any) -> Any:
            return dout

    assert (
        api_problem(MyLayer) == "MyLayer has no backward method (it has backword: did you mean `backward`?)"
    )
    assert api_problem(MyLayer, label="my.py:MyLayer") is not None
    assert str(api_problem(MyLayer, label="my.py:MyLayer")).startswith("my.py:MyLayer has no backward")
    assert api_problem(backprop.Relu) is None
    assert str(api_problem(backprop.Relu())).startswith("layer must be a class, got Relu: <backprop.")
    assert api_problem(backprop.Affine) is None


def test_nested_classes_still_load() -> None:
    inner = load_class("tests/fixtures/good_affine.py:Outer.Inner")
    assert inner.__qualname__ == "Outer.Inner"
    assert api_problem(inner) is None


# ---- user modules named like ours -------------------------------------------------------------------------


@pytest.mark.oracle
def test_a_sibling_reference_py_wins_inside_the_file_and_ours_is_restored_exactly() -> None:
    before = our_modules()
    relu = load_class(f"{FIXTURES}/clash/my_layers.py:Relu")
    user_module = sys.modules[relu.__module__]
    assert user_module.WHERE == "user reference"
    assert forward_globals(relu)["negative_mask"].__module__ == "reference"
    assert forward_globals(relu)["negative_mask"].__globals__["__file__"] == str(
        ROOT / FIXTURES / "clash/reference.py"
    )
    # the same objects, not equal copies: submodules such as reference._x64 and backprop.verify too
    after = our_modules()
    assert after.keys() == before.keys()
    assert all(after[key] is before[key] for key in before)
    import reference as again

    assert again is reference
    assert again.relu is reference.relu
    # the oracle still works after the swap, with its own reference, on the user's layer
    report = verify(relu, "relu", max_examples=10)
    assert report.passed, report.failure


def test_loading_a_clashing_file_twice_runs_the_sibling_afresh_each_time() -> None:
    before = our_modules()
    first = load_class(f"{FIXTURES}/clash/my_layers.py:Relu")
    second = load_class(f"{FIXTURES}/clash/my_layers.py:Relu")
    assert first is not second
    first_helper = forward_globals(first)["negative_mask"]
    second_helper = forward_globals(second)["negative_mask"]
    assert first_helper is not second_helper  # each load executes the sibling, as a fresh process would
    assert second_helper.__globals__["helper"]() == "user reference"
    assert our_modules() == before


@pytest.mark.oracle
def test_a_sibling_backprop_py_wins_and_backprop_verify_still_works() -> None:
    before = our_modules()
    sigmoid = load_class(f"{FIXTURES}/clash_module/layers.py:Sigmoid")
    users = forward_globals(sigmoid)["backprop"]
    assert users.SOURCE == "user backprop"
    assert users is not backprop
    assert sys.modules["backprop"] is backprop
    assert all(sys.modules[key] is module for key, module in before.items())
    import backprop.verify as oracle

    assert oracle.verify is verify
    report = oracle.verify(sigmoid, "sigmoid", max_examples=10)
    assert report.passed, report.failure


def test_a_sibling_package_and_its_submodule_never_stay_under_our_names() -> None:
    reference.x64  # noqa: B018 - loads our submodule first, so that there is one to restore
    before = our_modules()
    relu = load_class(f"{FIXTURES}/clash_package/layers.py:Relu")
    module = sys.modules[relu.__module__]
    assert module.WHERE == "user reference package"
    assert module.WIDEN.__module__ == "reference._x64"  # the user's submodule ...
    assert not hasattr(sys.modules["reference._x64"], "widen")  # ... is not the one in sys.modules
    assert our_modules().keys() == before.keys()
    assert all(sys.modules[key] is module for key, module in before.items())


def test_a_file_that_fails_to_import_its_sibling_still_restores_ours() -> None:
    before = our_modules()
    message = load_error(f"{FIXTURES}/clash/wants_ours.py:Anything")
    assert message.startswith(
        f"importing {FIXTURES}/clash/wants_ours.py raised ImportError: cannot import name 'relu' from "
        "'reference'"
    )
    assert our_modules() == before
    assert all(sys.modules[key] is module for key, module in before.items())


def test_a_sibling_that_is_our_own_package_is_not_imported_again(tmp_path: Path) -> None:
    (tmp_path / "reference").symlink_to(ROOT / "reference", target_is_directory=True)
    (tmp_path / "same_ref.py").write_text(
        "import reference\n\nclass Relu:\n    forward = backward = staticmethod(reference.relu)\n"
    )
    relu = load_class(f"{tmp_path}/same_ref.py:Relu")
    assert sys.modules[relu.__module__].reference is reference


def test_a_folder_without_init_or_a_standard_library_name_does_not_shadow(tmp_path: Path) -> None:
    (tmp_path / "backprop").mkdir()  # a namespace portion: python finds the regular package first
    (tmp_path / "json.py").write_text("raise RuntimeError('the standard library is never replaced')\n")
    (tmp_path / "plain.py").write_text(
        "import backprop\nimport json\n\nclass Relu(backprop.Relu):\n    pass\n"
    )
    relu = load_class(f"{tmp_path}/plain.py:Relu")
    assert issubclass(relu, backprop.Relu)


# ---- interrupts and exits at import -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("raise KeyboardInterrupt\n", "was interrupted (KeyboardInterrupt)"),
        (
            "import sys\nsys.exit(0)\n",
            'exited with SystemExit(0); put script code under `if __name__ == "__main__":`',
        ),
        ("exit()\n", "exited with SystemExit(None)"),
        ("raise SystemExit('bye\\nnow')\n", "exited with SystemExit('bye\\nnow')"),
        ("class Stop(BaseException):\n    pass\n\nraise Stop('halt')\n", "raised Stop: halt"),
    ],
)
def test_an_interrupt_or_exit_at_import_is_a_one_line_load_error(
    tmp_path: Path, source: str, what: str
) -> None:
    (tmp_path / "stops.py").write_text(f"class Layer:\n    pass\n\n{source}")
    message = load_error(f"{tmp_path}/stops.py:Layer")
    assert message.startswith(f"importing {tmp_path}/stops.py {what}")
    assert "\n" not in message
    assert "stops" not in sys.modules  # the half-run module is forgotten, as after a failed import


@pytest.mark.oracle
def test_an_interrupt_at_import_exits_2_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "interrupts.py").write_text("raise KeyboardInterrupt\n")
    try:
        code = main(["--layer", f"{tmp_path}/interrupts.py:Relu", "--against", "relu"])
    except BaseException as exc:
        pytest.fail(f"main raised {exc!r}")
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"backprop-verify: error: importing {tmp_path}/interrupts.py was interrupted (KeyboardInterrupt)\n"
    )


def test_an_interrupt_while_importing_a_dotted_module_is_a_load_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "interrupting_module.py").write_text("raise KeyboardInterrupt('stop')\n")
    monkeypatch.chdir(tmp_path)
    assert load_error("interrupting_module:Relu") == (
        "importing interrupting_module was interrupted (KeyboardInterrupt: stop)"
    )


def test_generator_exit_at_import_is_not_turned_into_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "closes.py").write_text("raise GeneratorExit\n")
    with pytest.raises(GeneratorExit):
        load_class(f"{tmp_path}/closes.py:Relu")
    assert "closes" not in sys.modules


# ---- warning filters the module installs ----------------------------------------------------------------

WARNINGS_AS_ERRORS = "tests/fixtures/warnings/warnings_as_errors.py"


def test_the_filters_a_module_installs_are_its_own_not_the_oracles() -> None:
    before = list(warnings.filters)
    cls = load_class(f"{WARNINGS_AS_ERRORS}:ExpSigmoidWarningsAsErrors")
    assert warnings.filters == before  # the oracle's own code does not run under "error"
    assert warning_filters(cls) == (("error", None, Warning, None, 0),)
    assert (
        warning_filters(backprop.Sigmoid) == ()
    )  # not loaded here: the caller's process, the caller's filters


@pytest.mark.oracle
def test_an_overflow_that_raises_in_its_own_process_raises_under_the_oracle() -> None:
    cls = load_class(f"{WARNINGS_AS_ERRORS}:ExpSigmoidWarningsAsErrors")
    report = verify(cls, "sigmoid", max_examples=20, max_failures=1, scope=False)
    assert report.failure is not None, report.notes
    first = report.failure.mismatches[0]
    assert first.diagnosis == "exception"
    assert first.message == "forward() raised RuntimeWarning: overflow encountered in exp"
    assert not any("overflow" in note for note in report.notes)  # the exception, not a note
