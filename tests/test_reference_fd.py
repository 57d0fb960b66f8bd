"""Test mode for the references themselves: on every registry row, jax.vjp of the reference agrees with
finite differences of the reference's forward pass, so a wrong reference can never vouch for a wrong layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backprop.verify import ROWS, NetworkRow, Row, examples, get_row, reference_vjp
from backprop.verify.vocabulary import Feature
from backprop.verify.witness import directional_derivative, witness
from tests.hidden_state import with_hidden_state

# A tied maximum has no derivative and finite differences straddle it, and a network's relus and poolings
# meet kinks and ties inside it that no drawing can steer clear of (shrinking heads straight for them):
# those rows are checked below at random, well-separated points instead, with every float argument
# redrawn (biases and variances positive).
SHORT = 1e-3
# A normalization is as bad near a batch of equal values, where shrinking heads too (the rows that declare
# their own magnitude).
ROUGH = [r for r in ROWS if Feature.TIE in r.features or isinstance(r, NetworkRow) or r.magnitude is not None]
SMOOTH = [r for r in ROWS if r not in ROUGH]


@pytest.mark.oracle
@pytest.mark.parametrize("row", SMOOTH, ids=[r.name for r in SMOOTH])
@settings(max_examples=max(10, settings.default.max_examples // 2))  # seven reference runs per example
@given(data=st.data())
def test_reference_vjp_agrees_with_finite_differences(row: Row, data: st.DataObject) -> None:
    example = data.draw(examples(row), label="example")
    values = with_hidden_state(row, example.values)
    direction = {
        a.name: data.draw(
            hnp.arrays(np.float64, np.shape(example.values[a.name]), elements=st.floats(-1, 1)),
            label=f"v_{a.name}",
        )
        for a in row.differentiable
    }
    estimate, used = directional_derivative(row, values, example.cotangents, direction)
    grads = reference_vjp(row, values, example.cotangents).grads
    vjp = sum(float(np.sum(grads[name].value * v)) for name, v in used.items())
    note(f"finite differences {estimate.value!r} +/- {estimate.error:.3g}, vjp {vjp!r}")
    assert abs(estimate.value - vjp) <= 4 * estimate.error + 1e-9 * max(1.0, abs(vjp))


@pytest.mark.oracle
@pytest.mark.parametrize("row", ROUGH, ids=[r.name for r in ROUGH])
@settings(max_examples=max(10, settings.default.max_examples // 4), phases=[Phase.generate])
@given(data=st.data())
def test_a_rough_rows_reference_agrees_with_finite_differences_off_kinks(
    row: Row, data: st.DataObject
) -> None:
    """x a shuffled arange, so that every pooling window's maximum leads the runner-up by at least 1, and
    every other float argument random (biases positive): no kink or tie within a step of the point."""
    example = data.draw(
        examples(row, without=[f for f in (Feature.TIE,) if f in row.features]), label="example"
    )
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    values = with_hidden_state(row, _random_point(row, example.values, rng))
    # a short direction keeps the differences' steps (1e-3 of it) far inside the nearest relu kink or
    # runner-up of a pooling window
    direction = {
        a.name: SHORT * rng.uniform(-1, 1, size=np.shape(values[a.name])) for a in row.differentiable
    }
    estimate, used = directional_derivative(row, values, example.cotangents, direction)
    grads = reference_vjp(row, values, example.cotangents).grads
    vjp = sum(float(np.sum(grads[name].value * v)) for name, v in used.items())
    note(f"finite differences {estimate.value!r} +/- {estimate.error:.3g}, vjp {vjp!r}")
    assert abs(estimate.value - vjp) <= 4 * estimate.error + 1e-9 * max(1.0, abs(vjp))


def _random_point(row: Row, values: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    out = dict(values)
    for arg in (a for a in row.args if a.is_float):
        shape = np.shape(values[arg.name])
        if arg.name == "x" and Feature.TIE in row.features:  # pooling's own input
            out["x"] = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
        elif arg.name.startswith("b"):
            out[arg.name] = rng.uniform(0.1, 0.5, size=shape)
        elif "var" in arg.name:  # a running variance
            out[arg.name] = rng.uniform(0.5, 2.0, size=shape)
        else:
            out[arg.name] = rng.normal(0.0, 0.3, size=shape)
    return out


def test_the_step_never_crosses_relu_s_kink() -> None:
    """x = 1e-6 and -3e-6 sit next to the kink: a fixed step of 1e-2 would give each a slope of 1/2."""
    row = get_row("relu")
    values, cots = {"x": np.array([1e-6, -3e-6, 2.0])}, (np.array([1.0, 10.0, 100.0]),)
    estimate, _ = directional_derivative(row, values, cots, {"x": np.array([1.0, 1.0, 1.0])})
    assert estimate.value == pytest.approx(101.0, abs=1e-6)  # relu' = 1, 0, 1; halves would give 105.5


def test_elements_on_the_kink_are_left_to_the_convention() -> None:
    row = get_row("relu")
    values, cots = {"x": np.array([0.0, 2.0])}, (np.array([5.0, 1.0]),)
    estimate, used = directional_derivative(row, values, cots, {"x": np.array([1.0, 1.0])})
    assert estimate.at_kink == 1
    np.testing.assert_array_equal(used["x"], [0.0, 1.0])
    assert estimate.value == pytest.approx(1.0)


@pytest.mark.oracle
def test_the_witness_names_the_wrong_side() -> None:
    row = get_row("sigmoid")
    values, cots = {"x": np.array([-1.5, 0.25, 3.0])}, (np.array([0.5, -2.0, 1.25]),)
    right = reference_vjp(row, values, cots).grads["x"].value
    wrong = right * np.array([1.0, 1.3, 1.0])
    assert witness(row, values, cots, "x", "dx", wrong, right).supports == "reference"
    # and if the reference were the wrong one, the same evidence points the other way
    assert witness(row, values, cots, "x", "dx", right, wrong).supports == "manual"
