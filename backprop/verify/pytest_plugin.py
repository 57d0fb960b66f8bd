"""A pytest plugin (registered through the ``pytest11`` entry point) for a one-line check in your suite::

    from backprop.verify.pytest_plugin import assert_layer_matches

    def test_my_affine():
        assert_layer_matches(MyAffine, "affine")

or with the fixture, which needs no import::

    def test_my_affine(layer_matches):
        layer_matches(MyAffine, "affine")

Hypothesis settings pass through: by default the currently loaded profile decides ``max_examples``
(``settings.load_profile("ci")`` in your conftest), or pass ``settings=`` / ``max_examples=`` directly.
JAX is imported on the first check, never when pytest starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hypothesis import settings as Settings

    from backprop.verify.report import LayerReport


def assert_layer_matches(
    layer: type,
    against: str,
    *,
    dtype: str | None = None,
    seed: int = 0,
    max_examples: int | None = None,
    settings: Settings | None = None,
) -> LayerReport:
    """Verify ``layer`` against the registry row ``against``; fail the test with the full report if wrong."""
    from hypothesis import settings as hypothesis_settings

    from backprop.verify.search import verify_or_raise

    parent = settings if settings is not None else hypothesis_settings()  # the loaded profile
    n = max_examples if max_examples is not None else parent.max_examples
    __tracebackhide__ = True
    return verify_or_raise(layer, against, dtype=dtype, seed=seed, max_examples=n, hypothesis_settings=parent)


@pytest.fixture
def layer_matches() -> Callable[..., Any]:
    """The ``assert_layer_matches`` check, as a fixture."""
    return assert_layer_matches


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backprop: tests that verify hand-written layers against jax.vjp")
