"""The oracle: run one example through a manual layer and through ``jax.vjp``, and compare everything.

``check_example`` is the single harness behind the property tests, the CLI and the Python API:

1. build the layer and run ``forward``; compare the output with the reference;
2. run ``backward`` with a random cotangent (never all ones);
3. compare every input gradient and every parameter gradient with ``jax.vjp`` of the reference;
4. check each gradient's shape and dtype against its primal;
5. check that the caller's arrays were not mutated and that no gradient aliases them or ``dout``;
6. use the layer again next to a second instance, as a network would, and check the gradients again.
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
from numpy.typing import NDArray

import reference
from backprop.verify.diagnose import Evidence, diagnose
from backprop.verify.registry import ROWS, Arg, Row, cotangent_arrays, get_row
from backprop.verify.report import Example, Failure, LayerReport, Mismatch, RunReport, snippet
from backprop.verify.tolerances import Tolerance, compare
from backprop.verify.witness import Witness, witness

DTYPES = ("float64", "float32")
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


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
    # a loss takes a scalar dout: a plain float, as the book passes it
    cotangents = [
        draw(cotangent_arrays(shapes[out], dtype, low, high, scalar=row.loss)) for out in row.outputs
    ]
    return Example(row=row.name, dtype=dtype.name, values=values, cotangents=tuple(cotangents))


# ---- the reference side ---------------------------------------------------------------------------------


@functools.cache
def _reference_vjp(row: Row, statics: tuple[tuple[str, Any], ...]) -> Callable[..., Any]:
    names = [a.name for a in row.differentiable]
    single = len(row.outputs) == 1

    def vjp(diff: tuple[Any, ...], consts: dict[str, Any], cots: tuple[Any, ...]) -> Any:
        def fn(*primals: Any) -> Any:
            return row.reference(**dict(zip(names, primals, strict=True)), **consts, **dict(statics))

        out, pullback = jax.vjp(fn, *diff)
        return out, pullback(cots[0] if single else cots)

    # These functions run on a handful of tiny arrays: compile time dominates, so skip the slow passes.
    return jax.jit(vjp, compiler_options=_FAST_COMPILE)


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
    return _reference_vjp(row, statics), diff, consts, tuple(cast(c) for c in cotangents)


def reference_runs(
    row: Row, values: dict[str, Any], cotangents: tuple[Any, ...], dtype: Any = np.float64
) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(outputs, gradients) of the compiled reference in float64, as given and on absolute values, and,
    for a narrower ``dtype``, once more natively in that dtype."""
    fn, diff, consts, cots = reference_inputs(row, values, cotangents)
    with reference.x64():
        runs = [
            fn(diff, consts, cots),
            fn(tuple(np.abs(d) for d in diff), consts, tuple(np.abs(c) for c in cots)),
        ]
        if np.dtype(dtype) != np.float64:
            runs.append(fn(*reference_inputs(row, values, cotangents, dtype)[1:]))
    return [(out if isinstance(out, tuple) else (out,), tuple(grads)) for out, grads in runs]


def reference_vjp(
    row: Row, values: dict[str, Any], cotangents: tuple[Any, ...], dtype: Any = np.float64
) -> Reference:
    """Every reference output and gradient, with the magnitude of its terms (see ``reference_runs``)."""
    runs = reference_runs(row, values, cotangents, dtype)

    def f64(x: Any) -> NDArray[np.float64]:
        return np.asarray(x, dtype=np.float64)

    condition = row.condition(values) if row.condition else {}

    def expected(name: str, parts: list[Any]) -> Expected:
        value, terms, *native = (f64(p) for p in parts)
        if name in condition:
            terms = np.maximum(terms, np.max(np.abs(value), initial=0.0)) * condition[name]
        return Expected(value, terms, *native)

    return Reference(
        outputs=tuple(expected(n, [r[0][i] for r in runs]) for i, n in enumerate(row.outputs)),
        grads={a.name: expected(a.name, [r[1][i] for r in runs]) for i, a in enumerate(row.differentiable)},
    )


# ---- the manual side ----------------------------------------------------------------------------------


@dataclass
class Measured:
    """Errors measured on one passing example, per checked quantity."""

    errors: dict[str, tuple[float, float]] = field(default_factory=dict)
    convention: str = ""


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

    def not_aliased(
        self, check: str, primal: str, grad: Any, others: dict[str, Any], whose: str = "caller's "
    ) -> None:
        for name, other in others.items():
            if (
                isinstance(grad, np.ndarray)
                and isinstance(other, np.ndarray)
                and np.shares_memory(grad, other)
            ):
                message = f"{check} shares memory with the {whose}{name}; return a new array"
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


def _with_capture(row: Row, values: dict[str, Any], instance: Any) -> dict[str, Any]:
    """The example's values plus any hidden state the layer drew in forward (a dropout mask)."""
    return {**values, **row.capture(instance)} if row.capture is not None else values


def _build(row: Row, layer: type, values: dict[str, Any], found: _Findings, stage: str = "") -> Any:
    args = [values[a.name] for a in row.of_kind("param", "init")]
    return found.call(f"{stage}constructor", lambda: layer(*args))[1]


def _forward(row: Row, instance: Any, values: dict[str, Any], found: _Findings, stage: str = "") -> Any:
    args = [values[a.name] for a in row.of_kind("input", "const")]
    kwargs = {a.name: values[a.name] for a in row.of_kind("call")}
    return found.call(f"{stage}forward", lambda: instance.forward(*args, **kwargs))[1]


def _outputs(row: Row, out: Any) -> tuple[Any, ...]:
    return tuple(out) if len(row.outputs) > 1 and isinstance(out, tuple | list) else (out,)


@dataclass
class _Trace:
    """One forward and backward: the instance, the output as forward returned it (a copy, so that a
    backward that overwrites it cannot hide a right forward), the output itself, and backward's result."""

    instance: Any = None
    out: Any = None
    live: Any = None
    result: Any = None


def _run(row: Row, layer: type, values: dict[str, Any], cots: tuple[Any, ...], found: _Findings) -> _Trace:
    """Build the layer, run forward, then backward; fields stay None from the first call that raised."""
    trace = _Trace(instance=_build(row, layer, values, found))
    if found.mismatches:
        return trace
    trace.live = _forward(row, trace.instance, values, found)
    if found.mismatches:
        return trace
    trace.out = tuple(_copy(o) for o in _outputs(row, trace.live))
    trace.result = found.call("backward", lambda: trace.instance.backward(*cots))[1]
    return trace


BOOK1, BOOK2, NO_PARAMS = (
    "book 1 (gradient attributes such as dW, db)",
    "book 2 (params/grads lists)",
    "no parameters",
)


def convention(row: Row, instance: Any) -> str:
    """Where the layer keeps its parameter gradients: the first book's attributes (``self.dW``) or the
    second book's ``self.grads`` list, in the same order as ``self.params``."""
    params = row.of_kind("param")
    if not params:
        return NO_PARAMS
    if any(hasattr(instance, a.grad) for a in params):
        return BOOK1
    grads = getattr(instance, "grads", None)
    return BOOK2 if isinstance(grads, list | tuple) and len(grads) == len(params) else BOOK1


def _grads(row: Row, instance: Any, result: Any, found: _Findings) -> list[tuple[Arg, str, Any]]:
    """(argument, where the gradient was read, gradient) for every differentiated argument."""
    inputs = row.of_kind("input")
    grads = [(a, a.grad, g) for a, g in zip(inputs, _input_grads(row, result, found), strict=False)]
    if convention(row, instance) == BOOK2:
        return grads + [(a, f"grads[{i}]", instance.grads[i]) for i, a in enumerate(row.of_kind("param"))]
    return grads + [(a, a.grad, getattr(instance, a.grad, None)) for a in row.of_kind("param")]


def _rerun(row: Row, layer: type, example: Example, mode: str, check: str) -> tuple[Any, Any] | None:
    """Run the layer again on a variant of the example; (actual, expected) for ``check``, or None.

    ``ones``: every cotangent set to one (a layer that ignores dout is right there).
    ``shifted``: every float input and cotangent mapped by v -> 0.75 v + 0.5, which keeps the domain
    and moves every ratio between elements, so a pattern seen on one example is confirmed on another.
    """
    values, cots = dict(example.values), example.cotangents
    if mode == "ones":
        if all(np.all(np.asarray(c) == 1) for c in cots):
            return None
        cots = tuple(1.0 if row.loss else np.ones_like(c) for c in cots)
    else:
        floats = {a.name for a in row.differentiable}
        values = {k: np.array(0.75 * v + 0.5, dtype=v.dtype) if k in floats else v for k, v in values.items()}
        cots = tuple(np.asarray(0.75 * np.asarray(c) + 0.5, dtype=np.asarray(c).dtype) for c in cots)
        cots = tuple(float(c) if row.loss else c for c in cots)
    found = _Findings(row.tolerance(example.dtype))
    trace = _run(row, layer, values, cots, found)
    if found.mismatches or trace.out is None:
        return None
    ref = reference_vjp(row, _with_capture(row, values, trace.instance), cots)
    if check in row.outputs:
        i = row.outputs.index(check)
        return np.asarray(trace.out[i], dtype=np.float64), ref.outputs[i].value
    for arg, where, grad in _grads(row, trace.instance, trace.result, found):
        if where == check and grad is not None and np.shape(grad) == ref.grads[arg.name].value.shape:
            return np.asarray(grad, dtype=np.float64), ref.grads[arg.name].value
    return None


def _second_round(
    row: Row, layer: type, example: Example, first: Any, ref: Reference, found: _Findings
) -> None:
    """Use the layer as a network uses two instances of it: forward A, forward B, backward B, backward A.

    A's gradients must come out as the first time; they do not when the layer keeps its cache outside
    the instance (a module-level mask) or accumulates into its gradients (``dW +=``).
    """
    inputs = {a.name for a in row.of_kind("input")}
    other = {k: np.array(-v, dtype=v.dtype) if k in inputs else v for k, v in example.values.items()}
    cots = example.cotangents
    second = _Findings(found.tol)
    _forward(row, first, example.values, second, "second ")
    if row.capture is not None and not second.mismatches:
        # hidden state drawn anew in forward (a dropout mask) needs its own reference
        ref = reference_vjp(row, _with_capture(row, example.values, first), cots, np.dtype(example.dtype))
    b = _build(row, layer, other, second, "another instance's ")
    if not second.mismatches:
        _forward(row, b, other, second, "another instance's ")
    if not second.mismatches:
        negated = tuple(-c if row.loss else np.array(-c, dtype=c.dtype) for c in cots)
        second.call("another instance's backward", lambda: b.backward(*negated))
    if not second.mismatches:
        _, result = second.call("second backward", lambda: first.backward(*cots))
        for arg, where, grad in _grads(row, first, result, second):
            second.value(where, arg.name, ref.grads[arg.name], grad, None)
    for mismatch, ev in zip(second.mismatches, second.evidence, strict=True):
        message = (
            f"{mismatch.check} is wrong on the second use of the same instance, interleaved with another "
            f"instance (forward A, forward B, backward B, backward A): {mismatch.message}"
        )
        found.add(
            replace(ev, kind="stateful"),
            message,
            **{k: getattr(mismatch, k) for k in ("index", "expected", "actual", "max_abs", "max_rel")},
        )


def _unmutated(before: dict[str, Any], callers: dict[str, Any], found: _Findings) -> None:
    for name, old in before.items():
        if not _unchanged(old, callers[name]) and not any(m.check == name for m in found.mismatches):
            where = "backward() wrote into" if name.startswith("dout") else "the layer modified"
            found.add(Evidence(name, name, "mutated"), f"{where} the caller's {name} in place")


def check_example(row: Row | str, layer: type, example: Example) -> Measured:
    """Check ``layer`` on one example against ``row``'s reference; raise ``LayerMismatch`` on any failure."""
    row = get_row(row) if isinstance(row, str) else row
    dtype = np.dtype(example.dtype)
    values, cots = example.values, example.cotangents
    callers = {**values, **{("dout" if len(cots) == 1 else f"dout{i}"): c for i, c in enumerate(cots)}}
    before = {k: _copy(v) for k, v in callers.items()}
    found = _Findings(row.tolerance(dtype))

    trace = _run(row, layer, values, cots, found)
    instance = trace.instance
    if trace.out is not None:
        # the reference sees the arrays as the caller passed them, even if the layer changed them since
        pristine = {k: before[k] for k in values}
        pristine_cots = tuple(before[k] for k in callers if k not in values)
        ref = reference_vjp(row, _with_capture(row, pristine, instance), pristine_cots, dtype)
        if len(trace.out) != len(row.outputs):
            message = f"returned {len(trace.out)} outputs, expected {len(row.outputs)}"
            found.add(Evidence("forward", "forward", "arity"), message)
        for name, expected, actual in zip(row.outputs, ref.outputs, trace.out, strict=False):
            found.value(name, name, expected, actual, None if row.loss else dtype)
        for name, old, new in zip(row.outputs, trace.out, _outputs(row, trace.live), strict=False):
            if not _unchanged(old, new):
                message = f"backward() modified the forward output {name} that the caller holds"
                found.add(Evidence(name, name, "mutated"), message)
        if not any(m.check == "backward" for m in found.mismatches):
            found.measured.convention = convention(row, instance)
            grads = _grads(row, instance, trace.result, found)
            for arg, where, grad in grads:
                found.value(where, arg.name, ref.grads[arg.name], grad, dtype)
                found.not_aliased(where, arg.name, grad, callers)
            for i, (_, where, grad) in enumerate(grads):
                found.not_aliased(where, "", grad, {w: g for _, w, g in grads[i + 1 :]}, "gradient ")
    _unmutated(before, callers, found)
    if trace.out is not None and not found.mismatches:
        _second_round(row, layer, example, instance, ref, found)
        _unmutated(before, callers, found)
    if not found.mismatches:
        return found.measured
    diagnosed = []
    for mismatch, ev in zip(found.mismatches, found.evidence, strict=True):
        d = diagnose(row, ev, values, found.tol, functools.partial(_rerun, row, layer, example))
        diagnosed.append(replace(mismatch, diagnosis=d.code, explanation=d.sentence, hint=d.hint))
    label = f"{layer.__module__}.{layer.__qualname__}"
    failure = Failure(label, row.name, example, example.shapes(row.outputs), diagnosed)
    failure.evidence = found.evidence
    failure.convention = convention(row, instance) if instance is not None else ""
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
    hypothesis_settings: settings | None = None,
) -> LayerReport:
    """Check ``layer`` against the registry row ``against`` on Hypothesis-drawn examples.

    Returns a ``LayerReport``; its ``failure`` holds the shrunk smallest failing example, if any.
    Runs are reproducible: the same seed draws the same examples. ``hypothesis_settings`` (for example
    a loaded profile) is the parent of the settings used; the oracle keeps what its report relies on:
    no example database, no deadline, one bug reported, and the generate and shrink phases.
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
        hypothesis_settings,
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
        report.convention = report.convention or measured.convention
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
