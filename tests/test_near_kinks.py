"""Network rows draw no example at which a kink inside the network is met within rounding
(backprop/verify/near_kinks.py): there the library, a user's network and JAX may each take another
one-sided derivative, and a random run once failed the library's own DeepConvNet on one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backprop.verify import examples, get_row
from backprop.verify.near_kinks import NEAR

Fill = Callable[[str, tuple[int, ...]], Any]


def _values(row_name: str, entry: int, fill: Fill) -> dict[str, Any]:
    """The row's arguments at one of its pool's shapes: sizes fixed by the entry, labels 0, arrays filled."""
    row = get_row(row_name)
    assert isinstance(row.shapes, tuple)  # a pool of fixed shapes, as every network row has
    shapes = row.shapes[entry]
    values: dict[str, Any] = {}
    for arg in row.args:
        if arg.fixed is not None:
            values[arg.name] = arg.fixed(shapes)
        elif arg.name == "t":
            values["t"] = np.zeros(shapes["t"], dtype=np.int64)
        else:
            values[arg.name] = np.asarray(fill(arg.name, shapes[arg.name]), dtype=np.float64)
    return values


def _shrunk_deep_conv(name: str, shape: tuple[int, ...]) -> Any:
    """The example a random run shrank to: a constant image, so that pooling's windows are equal in exact
    arithmetic, and W3 = 2**-52 beside biases of 1, so that they differ by rounding only."""
    if name == "x" or name in ("W1", "W2"):
        return np.zeros(shape)
    if name == "W3":
        return np.full(shape, np.finfo(np.float64).eps)
    return -np.ones(shape) if name == "W8" else np.ones(shape)


def test_a_pooling_window_tied_within_rounding_is_not_judged() -> None:
    row = get_row("deep_conv_net")
    assert not row.judgeable(_values("deep_conv_net", 0, _shrunk_deep_conv))
    rng = np.random.default_rng(0)
    spread = _values("deep_conv_net", 0, lambda name, shape: rng.uniform(0.25, 3.0, size=shape))
    assert row.judgeable(spread)


def test_a_relu_input_within_rounding_of_zero_is_not_judged() -> None:
    def fill(name: str, shape: tuple[int, ...]) -> Any:
        return np.random.default_rng(len(name)).uniform(0.5, 1.5, size=shape)

    row = get_row("two_layer_net")
    values = _values("two_layer_net", 1, fill)
    assert row.judgeable(values)
    # sample 0's first hidden unit: x @ W1[:, 0] + b1[0] brought to 1e-12 of its other terms' size
    values["b1"][0] = -float(values["x"][0] @ values["W1"][:, 0]) + 1e-12
    assert not row.judgeable(values)
    values["b1"][0] += 1e-6  # well clear of rounding: judged again
    assert row.judgeable(values)


def test_the_threshold_sits_far_above_float64_rounding_and_far_below_drawn_gaps() -> None:
    assert 1e4 * np.finfo(np.float64).eps < NEAR < 1e-8


@pytest.mark.oracle
@settings(max_examples=20, deadline=None)
@given(st.data())
def test_drawn_network_examples_are_all_judgeable(data: st.DataObject) -> None:
    for name in ("simple_conv_net", "deep_conv_net", "two_layer_net"):
        example = data.draw(examples(name), label=name)
        assert get_row(name).judgeable(example.values)
