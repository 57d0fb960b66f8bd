"""The oracle: run one example through a manual layer and through ``jax.vjp``, and compare everything.

``check_example`` is the single harness behind the property tests, the CLI and the Python API:

1. build the layer and run ``forward``; compare the output with the reference;
2. run ``backward`` with a random cotangent (never all ones);
3. compare every input gradient and every parameter gradient with ``jax.vjp`` of the reference;
4. check each gradient's shape and dtype against its primal;
5. check that the caller's arrays were not mutated and that no gradient aliases them or ``dout``.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import jax
import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

import reference
from backprop.verify.diagnose import Evidence, diagnose
from backprop.verify.registry import ROWS, Arg, Row, float_elements, get_row
from backprop.verify.report import Example, Failure, LayerReport, Mismatch, RunReport, snippet
from backprop.verify.tolerances import Tolerance, compare
from backprop.verify.witness import Witness, witness

DTYPES = ("float64", "float32")


class LayerMismatch(AssertionError):
    """A manual layer disagreed with its reference; ``.failure`` holds the whole report."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.render())
        self.failure = failure


# ---- drawing examples ---------------------------------------------------------------------------------


def examples(row: Row | str, dtype: str | np.dtype[Any] = "float64") -> st.SearchStrategy[Example]:
    """Hypothesis strategy for complete examples of ``row``: arguments plus one cotangent per output."""
    row = get_row(row) if isinstance(row, str) else row
    dt = np.dtype(dtype)
    row.tolerance(dt)  # validate the dtype before anything is drawn
    return _examples(row, dt)


@st.composite
def _examples(draw: st.DrawFn, row: Row, dtype: np.dtype[Any]) -> Example:
    shapes = draw(row.shapes)
    values = {arg.name: draw(arg.strategy(shapes, dtype)) for arg in row.args}
    low, high = row.cotangent_domain
    elements = float_elements(low, high, dtype)
    cotangents: list[Any] = []
    for out in row.outputs:
        if row.loss:
            cotangents.append(draw(elements.filter(lambda g: g != 1.0)))
        else:
            arrays = hnp.arrays(dtype, shapes[out], elements=elements)
            cotangents.append(draw(arrays.filter(lambda g: g.size == 0 or not np.all(g == 1))))
    return Example(row=row.name, dtype=dtype.name, values=values, cotangents=tuple(cotangents))


# ---- the reference side ---------------------------------------------------------------------------------


@functools.cache
def _reference_vjp(row_name: str, statics: tuple[tuple[str, Any], ...]) -> Callable[..., Any]:
    row = get_row(row_name)
    names = [a.name for a in row.differentiable]
    single = len(row.outputs) == 1

    def vjp(diff: tuple[Any, ...], consts: dict[str, Any], cots: tuple[Any, ...]) -> Any:
        def fn(*primals: Any) -> Any:
            return row.reference(**dict(zip(names, primals, strict=True)), **consts, **dict(statics))

        out, pullback = jax.vjp(fn, *diff)
        return out, pullback(cots[0] if single else cots)

    return jax.jit(vjp)


@dataclass(frozen=True)
class Expected:
    """One reference output or gradient: the float64 value, the magnitude of its summed terms, and the
    same reference run natively in the layer's dtype (None for float64)."""

    value: NDArray[np.float64]
    terms: NDArray[np.float64]
    native: NDArray[np.float64] | None = None


@dataclass(frozen=True)
class Reference:
    outputs: tuple[Expected, ...]
    grads: dict[str, Expected]


def reference_inputs(
    row: Row, values: dict[str, Any], cotangents: tuple[Any, ...], dtype: Any = np.float64
) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], tuple[Any, ...]]:
    """The compiled ``(diff, consts, cots) -> (outputs, grads)`` of the row; its arguments in ``dtype``."""

    def cast(value: Any) -> Any:
        arr = np.asarray(value)
        return arr.astype(dtype) if np.issubdtype(arr.dtype, np.floating) else arr

    diff = tuple(cast(values[a.name]) for a in row.differentiable)
    declared = {a.name for a in row.args}
    consts = {a.name: cast(values[a.name]) for a in row.of_kind("const")}
    consts.update({k: cast(v) for k, v in values.items() if k not in declared})  # captured hidden state
    statics = tuple(sorted((a.name, values[a.name]) for a in row.of_kind("init", "call")))
    return _reference_vjp(row.name, statics), diff, consts, tuple(cast(c) for c in cotangents)


def reference_vjp(
    row: Row, values: dict[str, Any], cotangents: tuple[Any, ...], dtype: Any = np.float64
) -> Reference:
    """Run the row's reference through ``jax.vjp`` in float64, as given and on absolute values, and,
    for a narrower ``dtype``, once more natively in that dtype."""
    fn, diff, consts, cots = reference_inputs(row, values, cotangents)
    native_dtype = np.dtype(dtype)
    with reference.x64():
        runs = [
            fn(diff, consts, cots),
            fn(tuple(np.abs(d) for d in diff), consts, tuple(np.abs(c) for c in cots)),
        ]
        if native_dtype != np.float64:
            runs.append(fn(*reference_inputs(row, values, cotangents, native_dtype)[1:]))

    def f64(x: Any) -> NDArray[np.float64]:
        return np.asarray(x, dtype=np.float64)

    def outputs(run: Any) -> tuple[Any, ...]:
        return run[0] if isinstance(run[0], tuple) else (run[0],)

    def expected(parts: list[Any]) -> Expected:
        return Expected(*(f64(p) for p in parts))

    return Reference(
        outputs=tuple(expected([outputs(r)[i] for r in runs]) for i in range(len(row.outputs))),
        grads={a.name: expected([r[1][i] for r in runs]) for i, a in enumerate(row.differentiable)},
    )


# ---- the manual side ----------------------------------------------------------------------------------


@dataclass
class Measured:
    """Errors measured on one passing example, per checked quantity."""

    errors: dict[str, tuple[float, float]] = field(default_factory=dict)


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


def _unchanged(before: Any, after: Any) -> bool:
    if isinstance(before, np.ndarray):
        return (
            isinstance(after, np.ndarray)
            and before.dtype == after.dtype
            and before.shape == after.shape
            and bool(np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))
        )
    return bool(before == after)


@dataclass
class _Findings:
    """Everything one example revealed: failed checks with their evidence, and the errors of passed checks."""

    tol: Tolerance
    mismatches: list[Mismatch] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    measured: Measured = field(default_factory=Measured)

    def add(self, evidence: Evidence, message: str, **details: Any) -> None:
        self.evidence.append(evidence)
        self.mismatches.append(Mismatch(check=evidence.check, kind=evidence.kind, message=message, **details))

    def call(self, stage: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        try:
            return True, fn()
        except Exception as exc:  # a user's layer may raise anything; it becomes part of the report
            self.add(Evidence(stage, stage, "exception"), f"raised {type(exc).__name__}: {exc}")
            return False, None

    def value(self, check: str, primal: str, ref: Expected, actual: Any, dtype: np.dtype[Any] | None) -> None:
        """Shape, values and dtype of one output or gradient against the reference."""
        if actual is None:
            self.add(Evidence(check, primal, "missing"), f"{check} is None after backward()")
            return
        try:
            arr = np.asarray(actual)
            as_f64 = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            self.add(Evidence(check, primal, "type"), f"is not numeric ({type(actual).__name__}): {exc}")
            return
        expected = ref.value
        if arr.shape != expected.shape:
            whose = f"the reference's {primal}" if primal == check else primal
            message = f"{check} has shape {arr.shape} but {whose} has shape {expected.shape}"
            evidence = Evidence(check, primal, "shape", expected_shape=expected.shape, actual_shape=arr.shape)
            self.add(evidence, message, expected_shape=expected.shape, actual_shape=arr.shape)
            return
        cmp = compare(expected, as_f64, self.tol, ref.terms, ref.native)
        if not cmp.ok:
            nonfinite = not np.isfinite(cmp.actual) and np.isfinite(cmp.expected)
            kind = "nan" if nonfinite else "value"
            what = "is NaN or infinite where the reference is finite" if nonfinite else "values differ"
            self.add(
                Evidence(check, primal, kind, expected, as_f64, expected.shape, arr.shape),
                f"{what} (tolerance {self.tol.atol:g} + {self.tol.rtol:.3g} * magnitude)",
                expected_shape=expected.shape,
                actual_shape=arr.shape,
                index=cmp.index,
                expected=cmp.expected,
                actual=cmp.actual,
                max_abs=cmp.max_abs,
                max_rel=cmp.max_rel,
            )
            return
        self.measured.errors[check] = (cmp.max_abs, cmp.max_rel)
        if dtype is not None and arr.dtype != dtype:
            self.add(
                Evidence(check, primal, "dtype"),
                f"{check} has dtype {arr.dtype} but {primal} has dtype {dtype}",
            )

    def not_aliased(self, check: str, primal: str, grad: Any, callers: dict[str, Any]) -> None:
        for name, other in callers.items():
            if (
                isinstance(grad, np.ndarray)
                and isinstance(other, np.ndarray)
                and np.shares_memory(grad, other)
            ):
                message = f"{check} shares memory with the caller's {name}; return a new array"
                self.add(Evidence(check, primal, "aliased"), message)


def _input_grads(row: Row, result: Any, found: _Findings) -> list[Any]:
    """``backward``'s return value as one gradient per differentiated forward input (book API)."""
    inputs = row.of_kind("input")
    if len(inputs) == 1:
        return [result]
    if isinstance(result, tuple | list) and len(result) == len(inputs):
        return list(result)
    n = len(result) if isinstance(result, tuple | list) else 1
    names = ", ".join(a.grad for a in inputs)
    found.add(
        Evidence("backward", "backward", "arity"),
        f"returned {n} gradient(s), expected {len(inputs)} ({names})",
    )
    return []


def _run(
    row: Row, layer: type, values: dict[str, Any], cots: tuple[Any, ...], found: _Findings
) -> tuple[Any, Any, Any]:
    """Build the layer, run forward and backward: (instance, output, gradients), None from a raise on."""
    ok, instance = found.call(
        "constructor", lambda: layer(*[values[a.name] for a in row.of_kind("param", "init")])
    )
    if not ok:
        return None, None, None
    fwd_args = [values[a.name] for a in row.of_kind("input", "const")]
    fwd_kwargs = {a.name: values[a.name] for a in row.of_kind("call")}
    ok, out = found.call("forward", lambda: instance.forward(*fwd_args, **fwd_kwargs))
    if not ok:
        return instance, None, None
    return instance, out, found.call("backward", lambda: instance.backward(*cots))[1]


def _grads(row: Row, instance: Any, result: Any, found: _Findings) -> list[tuple[Arg, Any]]:
    grads: list[tuple[Arg, Any]] = list(
        zip(row.of_kind("input"), _input_grads(row, result, found), strict=False)
    )
    return grads + [(a, getattr(instance, a.grad, None)) for a in row.of_kind("param")]


def _right_at_ones(row: Row, layer: type, example: Example, check: str) -> bool:
    """Rerun with every cotangent set to one: is ``check`` right then? (It ignores dout if so.)"""
    ones = tuple(1.0 if row.loss else np.ones_like(c) for c in example.cotangents)
    if all(np.all(np.asarray(c) == 1) for c in example.cotangents):
        return False
    found = _Findings(row.tolerance(example.dtype))
    instance, _, result = _run(row, layer, example.values, ones, found)
    if found.mismatches:
        return False
    ref = reference_vjp(
        row, {**example.values, **(row.capture(instance) if row.capture else {})}, ones, example.dtype
    )
    for arg, grad in _grads(row, instance, result, found):
        if arg.grad == check:
            found.value(check, arg.name, ref.grads[arg.name], grad, None)
            return not found.mismatches
    return False


def check_example(row: Row | str, layer: type, example: Example) -> Measured:
    """Check ``layer`` on one example against ``row``'s reference; raise ``LayerMismatch`` on any failure."""
    row = get_row(row) if isinstance(row, str) else row
    dtype = np.dtype(example.dtype)
    values, cots = example.values, example.cotangents
    callers = {**values, **{("dout" if len(cots) == 1 else f"dout{i}"): c for i, c in enumerate(cots)}}
    before = {k: _copy(v) for k, v in callers.items()}
    found = _Findings(row.tolerance(dtype))

    instance, out, result = _run(row, layer, values, cots, found)
    if out is not None:
        ref = reference_vjp(row, {**values, **(row.capture(instance) if row.capture else {})}, cots, dtype)
        outs = out if len(row.outputs) > 1 and isinstance(out, tuple | list) else (out,)
        if len(outs) != len(row.outputs):
            found.add(
                Evidence("forward", "forward", "arity"),
                f"returned {len(outs)} outputs, expected {len(row.outputs)}",
            )
        for name, expected, actual in zip(row.outputs, ref.outputs, outs, strict=False):
            found.value(name, name, expected, actual, None if row.loss else dtype)
        if not any(m.check == "backward" for m in found.mismatches):
            for arg, grad in _grads(row, instance, result, found):
                found.value(arg.grad, arg.name, ref.grads[arg.name], grad, dtype)
                found.not_aliased(arg.grad, arg.name, grad, callers)

    for name, old in before.items():
        if not _unchanged(old, callers[name]):
            where = "backward() wrote into" if name.startswith("dout") else "the layer modified"
            found.add(Evidence(name, name, "mutated"), f"{where} the caller's {name} in place")
    if not found.mismatches:
        return found.measured
    diagnosed = []
    for mismatch, ev in zip(found.mismatches, found.evidence, strict=True):
        d = diagnose(
            row, ev, values, found.tol, functools.partial(_right_at_ones, row, layer, example, ev.check)
        )
        diagnosed.append(replace(mismatch, diagnosis=d.code, explanation=d.sentence, hint=d.hint))
    label = f"{layer.__module__}.{layer.__qualname__}"
    failure = Failure(label, row.name, example, example.shapes(row.outputs), diagnosed)
    failure.evidence = found.evidence
    failure.program = snippet(example, row, layer, failure)
    raise LayerMismatch(failure)


# ---- the driver ------------------------------------------------------------------------------------------


def _validate_layer(layer: Any) -> None:
    if not isinstance(layer, type):
        raise TypeError(f"layer must be a class, got {type(layer).__name__}: {layer!r}")
    missing = [m for m in ("forward", "backward") if not callable(getattr(layer, m, None))]
    if missing:
        raise TypeError(
            f"{layer.__qualname__} has no {' or '.join(missing)} method; it must follow the book's API"
        )


def verify(
    layer: type,
    against: str,
    *,
    max_examples: int = 100,
    seed: int = 0,
    dtype: str = "float64",
    on_example: Callable[[str], None] | None = None,
) -> LayerReport:
    """Check ``layer`` against the registry row ``against`` on Hypothesis-drawn examples.

    Returns a ``LayerReport``; its ``failure`` holds the shrunk smallest failing example, if any.
    Runs are reproducible: the same seed draws the same examples.
    """
    _validate_layer(layer)
    row = get_row(against)
    if not isinstance(max_examples, int) or isinstance(max_examples, bool) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive integer, got {max_examples!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    strategy = examples(row, dtype)
    report = LayerReport(
        name=row.name,
        layer=f"{layer.__module__}.{layer.__qualname__}",
        against=row.name,
        dtype=np.dtype(dtype).name,
    )
    shapes: set[tuple[tuple[str, tuple[int, ...]], ...]] = set()

    @settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        print_blob=True,
        derandomize=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        verbosity=Verbosity.quiet,
    )
    @hypothesis_seed(seed)
    @given(strategy)
    def run(example: Example) -> None:
        # once an example has failed, every further call is Hypothesis shrinking it
        phase = "shrink" if report.failure is not None else "generate"
        if phase == "generate":
            report.examples += 1
            shapes.add(tuple(sorted(example.shapes(row.outputs).items())))
        else:
            report.shrink_steps += 1
        if on_example is not None:
            on_example(phase)
        try:
            measured = check_example(row, layer, example)
        except LayerMismatch as exc:
            report.failure = report.failure or exc.failure
            raise
        rel = max((r for _, r in measured.errors.values()), default=0.0)
        target(rel, label="max relative error")  # steer the search towards the worst error
        for abs_err, rel_err in measured.errors.values():
            report.max_abs = max(report.max_abs, abs_err)
            report.max_rel = max(report.max_rel, rel_err)

    start = time.perf_counter()
    try:
        run()
    except LayerMismatch as exc:
        report.failure = exc.failure
        report.failure.seed = seed
        report.failure.blob = _blob(exc)
        report.failure.witnesses = _witnesses(row, exc.failure)
        call = (
            f"{layer.__qualname__}, {row.name!r}, seed={seed}, max_examples={max_examples}, dtype={dtype!r}"
        )
        report.failure.reproduce = f"verify({call})"
        for m in exc.failure.mismatches:
            if m.max_abs is not None and m.max_rel is not None:
                report.max_abs = max(report.max_abs, m.max_abs)
                report.max_rel = max(report.max_rel, m.max_rel)
    except Flaky as exc:
        report.error = f"the layer gave different results on the same example (nondeterministic): {exc}"
    report.distinct_shapes = len(shapes)
    report.seconds = time.perf_counter() - start
    return report


def _witnesses(row: Row, failure: Failure) -> list[Witness]:
    """Finite differences on each gradient whose values disagree with jax.vjp."""
    differentiable = {a.name for a in row.differentiable}
    ex = failure.example
    return [
        witness(row, ex.values, ex.cotangents, ev.primal, ev.check, ev.actual, ev.expected)
        for ev in failure.evidence
        if ev.kind == "value"
        and ev.primal in differentiable
        and ev.actual is not None
        and ev.expected is not None
    ]


def _blob(exc: BaseException) -> str | None:
    for note in getattr(exc, "__notes__", []):
        found = re.search(r"@reproduce_failure\([^)]*\)", note)
        if found:
            return found.group(0)
    return None


def verify_all(
    names: Iterable[str] | None = None,
    *,
    max_examples: int = 100,
    seed: int = 0,
    dtype: str = "float64",
    on_example: Callable[[str], None] | None = None,
) -> RunReport:
    """Check the library's own layers (every registry row, or the named ones) against their references."""
    rows = ROWS if names is None else tuple(get_row(n) for n in names)
    run = RunReport(seed=seed, max_examples=max_examples)
    for row in rows:
        run.layers.append(
            verify(
                row.layer, row.name, max_examples=max_examples, seed=seed, dtype=dtype, on_example=on_example
            )
        )
    return run


def verify_or_raise(layer: type, against: str, **kwargs: Any) -> LayerReport:
    """Like ``verify``, but raise ``LayerMismatch`` (an AssertionError) with the full report on failure."""
    report = verify(layer, against, **kwargs)
    if report.failure is not None:
        raise LayerMismatch(report.failure)
    if report.error is not None:
        raise AssertionError(f"{report.layer} against {against!r}: {report.error}")
    return report
