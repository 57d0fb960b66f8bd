"""Test mode for the references themselves: on every registry row, jax.vjp of the reference agrees with
finite differences of the reference's forward pass, so a wrong reference can never vouch for a wrong layer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backprop.verify import ROWS, Row, examples, get_row, reference_vjp
from backprop.verify.stages import with_capture
from backprop.verify.vocabulary import Feature
from backprop.verify.witness import directional_derivative, witness

# A tied maximum has no derivative and finite differences straddle it: rows that draw ties are checked off
# them below, on well-separated values.
SMOOTH = [r for r in ROWS if Feature.TIE not in r.features]
TIED = [r for r in ROWS if Feature.TIE in r.features]


@pytest.mark.parametrize("row", SMOOTH, ids=[r.name for r in SMOOTH])
@settings(max_examples=max(10, settings.default.max_examples // 2))  # seven reference runs per example
@given(data=st.data())
def test_reference_vjp_agrees_with_finite_differences(row: Row, data: st.DataObject) -> None:
    example = data.draw(examples(row), label="example")
    values = dict(example.values)
    if row.capture is not None:  # hidden state the reference needs (a dropout mask): the library layer's
        layer = row.build(row.layer, values)
        row.call(layer, values)
        values = with_capture(row, values, layer)
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


@pytest.mark.parametrize("row", TIED, ids=[r.name for r in TIED])
@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(data=st.data())
def test_a_tied_rows_reference_agrees_with_finite_differences_off_ties(row: Row, data: st.DataObject) -> None:
    """x a shuffled arange, so every window's maximum leads the runner-up by at least 1."""
    example = data.draw(examples(row, without=[Feature.TIE]), label="example")
    x = np.asarray(example.values["x"])
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    values = {**example.values, "x": rng.permutation(x.size).reshape(x.shape).astype(np.float64)}
    direction = {"x": rng.uniform(-1, 1, size=x.shape)}
    estimate, used = directional_derivative(row, values, example.cotangents, direction)
    grads = reference_vjp(row, values, example.cotangents).grads
    vjp = sum(float(np.sum(grads[name].value * v)) for name, v in used.items())
    assert abs(estimate.value - vjp) <= 4 * estimate.error + 1e-9 * max(1.0, abs(vjp))


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


def test_the_witness_names_the_wrong_side() -> None:
    row = get_row("sigmoid")
    values, cots = {"x": np.array([-1.5, 0.25, 3.0])}, (np.array([0.5, -2.0, 1.25]),)
    right = reference_vjp(row, values, cots).grads["x"].value
    wrong = right * np.array([1.0, 1.3, 1.0])
    assert witness(row, values, cots, "x", "dx", wrong, right).supports == "reference"
    # and if the reference were the wrong one, the same evidence points the other way
    assert witness(row, values, cots, "x", "dx", right, wrong).supports == "manual"
