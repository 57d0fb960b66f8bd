"""Every registry row: its examples, its dtypes, and the oracle catching each of its gradients scaled."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from backprop.verify import ROWS, Arg, Convention, LayerMismatch, Row, check_example, examples, reference_vjp
from backprop.verify.model import distinct_params, transposed_view
from tests.hidden_state import SEED, with_hidden_state

pytestmark = pytest.mark.oracle  # every row's drawn examples; the oracle on its scaled gradients

# The library's own layers are verified once per run, by the catalogue (tests/test_catalogue.py
# ::test_library_layer_passes, the default run's check of every row in each of its dtypes); the tests here
# check what that does not: the row's dtypes and cotangents, and that the oracle catches every scaled
# gradient. The mutation test checks every gradient on each example (up to 12 mutants), so it draws a
# quarter of the profile's examples.
_FEWER = settings(max_examples=max(10, settings.default.max_examples // 4))


def _rows(dtype: str = "float64") -> Any:
    """Every row checked in ``dtype`` (a network is float64 only)."""
    rows = [r for r in ROWS if dtype in r.dtypes]
    return pytest.mark.parametrize("row", rows, ids=[r.name for r in rows])


@_rows("float32")
@given(data=st.data())
def test_float32_in_gives_float32_out_and_gradients(row: Row, data: st.DataObject) -> None:
    example = data.draw(examples(row, "float32"), label="example")
    layer = row.build(row.layer, example.values)
    outs = row.outputs_of(row.call(layer, example.values))
    assert len(outs) == len(row.outputs)
    if not row.loss:
        assert [np.asarray(o).dtype for o in outs] == [np.float32] * len(outs)
    result = row.backward(layer, example.cotangents)
    reads = row.gradients(layer, result, example.values)
    assert sorted(r.arg.name for r in reads) == sorted(a.name for a in row.differentiable)
    assert [(r.where, r.problem) for r in reads] == [(r.where, None) for r in reads]
    assert [np.asarray(r.value).dtype for r in reads] == [np.float32] * len(reads)


_OUTPUT_SHAPES: dict[Any, tuple[Any, ...]] = {}
"""The reference's output shapes by row, input shapes and dtypes and static arguments: an abstract trace
depends on nothing else, and half of a row's examples repeat an earlier one's."""


def _output_shapes(row: Row, values: dict[str, Any]) -> tuple[Any, ...]:
    """The reference's output shapes on ``values``, traced abstractly (no compilation)."""
    arrays = {k: v for k, v in values.items() if isinstance(v, np.ndarray | np.generic)}
    plain = {k: v for k, v in values.items() if k not in arrays}
    key = (
        row.name,
        tuple((k, np.shape(v), np.asarray(v).dtype.str) for k, v in arrays.items()),
        tuple((k, type(v).__name__, v) for k, v in plain.items()),  # hashable: they are static arguments
    )
    if key not in _OUTPUT_SHAPES:
        outs = jax.eval_shape(lambda a: row.reference(**a, **plain), arrays)
        _OUTPUT_SHAPES[key] = tuple(o.shape for o in (outs if isinstance(outs, tuple) else (outs,)))
    return _OUTPUT_SHAPES[key]


@_rows()
@given(data=st.data())
def test_cotangent_is_random_and_shaped_like_the_output(row: Row, data: st.DataObject) -> None:
    example = data.draw(examples(row), label="example")
    outs = _output_shapes(row, with_hidden_state(row, example.values))
    assert len(example.cotangents) == len(row.outputs) == len(outs)
    for cot, shape in zip(example.cotangents, outs, strict=True):
        assert np.shape(cot) == shape
        assert not np.all(np.asarray(cot) == 1.0), "a cotangent of ones hides an ignored dout"


def _held_positions(row: Row, layer: Any, target: Arg) -> list[int]:
    """Book 2: the ``grads`` entries of a parameter, those whose ``params`` entry is its very array (a tied
    weight is listed several times) or its transposed view (BetterRnnlm's tie); the row's k-th parameter
    is the k-th distinct array of ``params``."""
    held = distinct_params(layer.params)[row.params.index(target)]
    return [i for i, p in enumerate(layer.params) if p is held or transposed_view(held, p)]


def _mutant(row: Row, target: Arg, factor: float) -> type:
    """The library's own layer with one gradient scaled by ``factor``: a bug the oracle must catch."""
    returned = row.read_from("return")

    class Mutant(row.layer):  # type: ignore[name-defined,misc]
        def gradient(self, *inputs: Any) -> Any:  # a network's backward: scale one entry of its dict
            grads = dict(super().gradient(*inputs))
            grads[target.name] = grads[target.name] * factor
            return grads

        def backward(self, *douts: Any) -> Any:
            result = super().backward(*douts)
            if target.source == "param" and row.convention(self) == Convention.BOOK2:
                for i in _held_positions(row, self, target):
                    self.grads[i][...] = self.grads[i] * factor  # in place, as book 2 writes them
                return result
            if target.source != "return":
                # book 1's parameter gradients, or a gradient attribute such as a time layer's dh
                assert target.source == "attr" or row.convention(self) == Convention.BOOK1, row.convention(
                    self
                )
                setattr(self, target.grad, getattr(self, target.grad) * factor)
                return result
            if len(returned) == 1:
                return result * factor
            return tuple(g * factor if a is target else g for a, g in zip(returned, result, strict=True))

    Mutant.__qualname__ = f"{row.layer.__name__}_{target.grad}_x{factor}"
    return Mutant


def _where(row: Row, example: Any) -> dict[str, str]:
    """Where the row reads each gradient from the library's own layer, by argument: a network's dict entry,
    book 1's attribute, or book 2's grads entries (``grads[0]+grads[1]`` for a tied weight)."""
    where = {a.name: f"grads[{a.name!r}]" if a.source == "key" else a.grad for a in row.differentiable}
    if any(a.source == "param" for a in row.differentiable):  # book 2: one run of the layer reads them all
        values = dict(example.values)
        layer = row.build(row.layer, values)
        row.call(layer, values)
        result = row.backward(layer, example.cotangents)
        where |= {
            r.arg.name: r.where for r in row.gradients(layer, result, values) if r.arg.source == "param"
        }
    return where


_FACTORS = (-1.0, 0.5, 1.001, 2.0)
MAX_MUTANTS = 12


@_rows()
@_FEWER
@given(data=st.data())
def test_every_scaled_gradient_is_flagged_and_named(row: Row, data: st.DataObject) -> None:
    """Testing the tester: on any example, each gradient of the row scaled by a factor whose change shows
    above the tolerance (the true gradient is not all below it) is caught, and only that gradient named."""
    example = data.draw(examples(row), label="example")
    grads = reference_vjp(row, with_hidden_state(row, example.values), example.cotangents).grads
    tol = row.tolerance(example.dtype)
    mutants = []
    for arg in row.differentiable:
        # a scale change is invisible only when the whole gradient sits below the tolerance
        big = np.max(np.abs(grads[arg.name].value), initial=0.0)
        # the tolerance's scale: the magnitude of the summed terms (large through a deep network's layers)
        scale = max(big, float(np.max(np.abs(grads[arg.name].terms), initial=0.0)))
        visible = [f for f in _FACTORS if big * abs(f - 1) > 4 * (tol.atol + tol.rtol * scale)]
        if visible:
            # one factor per gradient and example, drawn: each (gradient, factor) pair still meets several
            # examples over the run, at a quarter of the checks (each one runs every stage)
            mutants.append((arg, data.draw(st.sampled_from(visible), label=f"factor of {arg.name}")))
    assume(mutants)
    # a network has up to 16 parameters: a drawn dozen of its gradients per example keeps the test's cost flat
    chosen = data.draw(st.permutations(range(len(mutants))), label="mutants")[:MAX_MUTANTS]
    where = _where(row, example)
    for arg, factor in (mutants[i] for i in chosen):
        mutant = _mutant(row, arg, factor)
        np.random.seed(SEED)  # the first forward draws the mask the visibility above was judged with
        with pytest.raises(LayerMismatch) as caught:
            check_example(row, mutant, example, diagnosed=False)  # the check named is the point
        failure = caught.value.failure
        note(failure.render())
        assert [m.check for m in failure.mismatches] == [where[arg.name]], mutant.__qualname__
        assert failure.mismatches[0].kind == "value"
        assert mutant.__qualname__ in failure.render()
