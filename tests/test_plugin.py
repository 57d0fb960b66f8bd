"""The pytest plugin: a one-line check in a user's own suite, registered through ``pytest11``."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytestmark = pytest.mark.oracle  # every test here runs the oracle

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_plugin_is_registered_through_the_pytest11_entry_point() -> None:
    found = [e.value for e in entry_points(group="pytest11") if e.name == "backprop"]
    assert found == ["backprop.verify.pytest_plugin"]


def _suite(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    pytester.syspathinsert(FIXTURES)
    pytester.makeconftest("from hypothesis import settings\nsettings.load_profile('default')\n")
    pytester.makepyfile(test_user=body)
    return pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")


def test_a_second_book_layer_passes_with_the_function_and_with_the_fixture(pytester: pytest.Pytester) -> None:
    result = _suite(
        pytester,
        """
from hypothesis import settings
from backprop.verify.pytest_plugin import assert_layer_matches
from book2_layers import Affine, Sigmoid

def test_affine_function():
    report = assert_layer_matches(Affine, "affine", max_examples=25)
    assert report.convention.startswith("book 2") and report.examples == 25

def test_sigmoid_fixture(layer_matches):
    layer_matches(Sigmoid, "sigmoid", settings=settings(max_examples=15), dtype="float32")
""",
    )
    result.assert_outcomes(passed=2)


def test_a_wrong_layer_fails_the_users_test_with_the_report(pytester: pytest.Pytester) -> None:
    result = _suite(
        pytester,
        """
from book2_layers import AffineUnsummedBias

def test_bias(layer_matches):
    layer_matches(AffineUnsummedBias, "affine", max_examples=30)
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AffineUnsummedBias (checked against 'affine'): grads[[]1] wrong*",
            "*convention: book 2 (params/grads lists)*",
            "*worst element grads[[]1][[]?]: expected 1.0, actual 0.0*",
        ]
    )


def test_the_loaded_profile_sets_the_number_of_examples(pytester: pytest.Pytester) -> None:
    result = _suite(
        pytester,
        """
from hypothesis import settings
from backprop import Relu
from backprop.verify.pytest_plugin import assert_layer_matches

settings.register_profile("tiny", max_examples=7)

def test_profile():
    settings.load_profile("tiny")
    assert assert_layer_matches(Relu, "relu").examples == 7
""",
    )
    result.assert_outcomes(passed=1)
