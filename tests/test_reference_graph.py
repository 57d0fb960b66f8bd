"""The reference written as the book's computational graph (issue 20): ``runner.nodes`` gives every node's
right value and gradient, each graph gives its row's reference outputs, and the gradients at its nodes are
those the book's backward computes (with its sign conventions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backprop.verify import get_row, reference_vjp, runner
from backprop.verify.mismatch import Node

RNG_SEED = 20


def _by_name(found: tuple[Node, ...]) -> dict[str, Node]:
    names = [n.name for n in found]
    assert len(set(names)) == len(names), names
    return {n.name: n for n in found}


def test_a_row_without_a_graph_has_its_inputs_and_outputs_as_nodes() -> None:
    row = get_row("relu")
    assert row.graph is None
    rng = np.random.default_rng(RNG_SEED)
    values = {"x": rng.normal(size=(3, 4))}
    dout = rng.normal(size=(3, 4))
    found = _by_name(runner.nodes(row, values, (dout,)))
    assert list(found) == ["out", "x"]
    np.testing.assert_array_equal(found["out"].value, np.maximum(values["x"], 0))
    np.testing.assert_array_equal(found["out"].grad, dout)  # an output's gradient is its cotangent
    expected = reference_vjp(row, values, (dout,))
    np.testing.assert_allclose(found["x"].grad, expected.grads["x"].value, rtol=0, atol=1e-12)


def test_a_loss_node_has_gradient_one_and_labels_are_nodes_without_one() -> None:
    row = get_row("softmax_with_loss")
    rng = np.random.default_rng(RNG_SEED)
    values: dict[str, Any] = {"x": rng.normal(size=(4, 3)), "t": np.array([0, 2, 1, 1])}
    found = _by_name(runner.nodes(row, values, (np.float64(1.0),)))
    assert found["loss"].grad == pytest.approx(1.0)
    assert found["t"].grad is None
    np.testing.assert_array_equal(found["t"].value, values["t"])
    expected = reference_vjp(row, values, (np.float64(1.0),))
    np.testing.assert_allclose(found["x"].grad, expected.grads["x"].value, rtol=0, atol=1e-12)
