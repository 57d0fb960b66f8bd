"""The oracle: check one example of a manual layer against ``jax.vjp`` of its row's reference.

``check_example`` is the single harness behind the property tests, the CLI and the Python API. It runs the
check stages of ``backprop.verify.stages`` in order and, when any check failed, raises ``LayerMismatch``
with a ``Failure`` that names every failed check, diagnoses it in the learner's terms and carries a
program that reproduces it. The Hypothesis search around it lives in ``backprop.verify.search``.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import strategies as st

from backprop.verify.culprit import Budget, Judge, locate
from backprop.verify.diagnose import Situation, diagnose
from backprop.verify.draw import Without, cotangent_arrays, without_set
from backprop.verify.findings import Findings, Measured, kink_bounds
from backprop.verify.guard import Guard
from backprop.verify.loader import warning_filters
from backprop.verify.mismatch import Located
from backprop.verify.program import snippet
from backprop.verify.registry import get_row
from backprop.verify.report import Example, Failure
from backprop.verify.row import Row
from backprop.verify.runner import epsilon_loss
from backprop.verify.stages import (
    Case,
    FirstUse,
    drive,
    ones,
    ramped,
    run_stages,
    shifted,
    shifted_cotangents,
    use,
    with_capture,
)
from backprop.verify.vocabulary import DTYPES, Allowance, Feature, Kind

__all__ = ["DTYPES", "LayerMismatch", "Options", "check_example", "examples", "guard_for"]


class LayerMismatch(AssertionError):
    """A manual layer disagreed with its reference; ``.failure`` holds the whole report."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.render())
        self.failure = failure


@dataclass(frozen=True)
class Options:
    """What the user asked of a check beyond the row: see ``verify`` for each field."""

    strict: bool = False
    allow: frozenset[Allowance] = frozenset()
    grad_names: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = 60.0
    ignore: frozenset[tuple[str, str]] = frozenset()
    """(check, kind) pairs already reported: set aside, so the search can find the next mistake."""
    culprit: bool = True
    """Search a failure for the first wrong line of the layer's code (``culprit.locate``)."""


def guard_for(layer: Any, opts: Options) -> Guard:
    """The guard for calls into ``layer``: the time limit asked for, and the warning filters its own module
    installed."""
    return Guard(opts.timeout, warning_filters(layer))


# ---- drawing examples ---------------------------------------------------------------------------------


def examples(
    row: Row | str, dtype: str | np.dtype[Any] = "float64", *, without: Collection[Feature | str] = ()
) -> st.SearchStrategy[Example]:
    """Hypothesis strategy for complete examples of ``row``: arguments plus one cotangent per output,
    drawing none of the features in ``without``."""
    row = get_row(row)
    dt = np.dtype(dtype)
    row.tolerance(dt)  # validate the dtype before anything is drawn
    off = without_set(without)
    return _examples(row, dt, off, row.draw_shapes(off))  # draw_shapes: a row may refuse a combination


def _examples(
    row: Row, dtype: np.dtype[Any], without: Without, shapes: st.SearchStrategy[dict[str, tuple[int, ...]]]
) -> st.SearchStrategy[Example]:
    # One strategy per distinct shape, built on first use: building and validating Hypothesis strategies
    # afresh for every example cost as much as drawing from them.
    at: dict[tuple[tuple[str, tuple[int, ...]], ...], st.SearchStrategy[Example]] = {}

    def of_shape(drawn: dict[str, tuple[int, ...]]) -> st.SearchStrategy[Example]:
        key = tuple(sorted(drawn.items()))
        if key not in at:
            at[key] = _at_shape(row, dtype, without, drawn)
        return at[key]

    return shapes.flatmap(of_shape)


def _at_shape(
    row: Row, dtype: np.dtype[Any], without: Without, shapes: dict[str, tuple[int, ...]]
) -> st.SearchStrategy[Example]:
    values = st.fixed_dictionaries({arg.name: arg.strategy(shapes, dtype, without) for arg in row.args})
    low, high = row.cotangent_domain
    # a loss takes a scalar dout: a plain float, as the book passes it
    cots = st.tuples(
        *(cotangent_arrays(shapes[out], dtype, low, high, scalar=row.loss) for out in row.outputs)
    )
    # the state carried from a previous call is computed, not drawn: the example shows its true value
    drawn = st.tuples(values, cots).map(
        lambda drawn: Example(
            row=row.name, dtype=dtype.name, values=row.complete(drawn[0]), cotangents=drawn[1]
        )
    )
    if type(row).judgeable is Row.judgeable:  # every example is judgeable: no filter, whose bookkeeping
        return drawn  # would change the draws of a derandomized run
    return drawn.filter(lambda example: row.judgeable(example.values))


# ---- one example ------------------------------------------------------------------------------------------


def _seed_of(example: Example) -> int:
    """A random state for the repeated calls that differs from example to example (Hypothesis seeds the
    global generators identically for every example) yet is the same whenever this example is rerun."""
    digest = 0
    for value in (*example.values.values(), *example.cotangents):
        digest = zlib.crc32(np.asarray(value).tobytes(), digest)
    return digest


def check_example(
    row: Row | str,
    layer: type,
    example: Example,
    options: Options | None = None,
    *,
    diagnosed: bool = True,
    guard: Guard | None = None,
) -> Measured:
    """Check ``layer`` on one example against ``row``'s reference; raise ``LayerMismatch`` on any failure.

    ``diagnosed=False`` skips the diagnosis (the search diagnoses only the final, shrunk example); a
    ``guard`` shared by many examples summarises their warnings once (otherwise they are this example's
    notes) and, once a call has timed out under it, calls the layer no more: every later example fails
    with that timeout.
    """
    row = get_row(row)
    opts = options or Options()
    dtype = np.dtype(example.dtype)
    case = Case(row, layer, example.values, example.cotangents, dtype, opts.grad_names)
    with contextlib.nullcontext(guard) if guard is not None else guard_for(layer, opts) as active:
        found = Findings(row, row.tolerance(dtype), active, opts.ignore, opts.strict)
        run_stages(
            case, found, _seed_of(example), allow=lambda first, found: _allowed(case, first, found, opts)
        )
        found.hung()  # a call that timed out fails the example, whichever stage or probe made it
        if guard is None:
            found.measured.notes.extend(active.notes())
    if not found.failed:
        return found.measured
    failure = Failure(
        f"{layer.__module__}.{layer.__qualname__}",
        row.name,
        example,
        example.shapes(row.outputs),
        list(found.mismatches),
        convention=found.measured.convention,
        notes=list(found.measured.notes),
        # the calls as they ran, without what they were judged against (a reference holds closures):
        # a failure is data, sent back pickled from an isolated check
        calls=[replace(call, expect=None) for call in found.failing],
    )
    if diagnosed:
        diagnose_failure(failure, row, layer, opts)
    raise LayerMismatch(failure)


def _allowed(case: Case, first: FirstUse, found: Findings, opts: Options) -> float | None:
    """With ``--allow epsilon``, a loss that matches the ``-log(y + eps)`` formula passes, with a note; the
    eps accepted (None when nothing was), for the later stages to judge the loss by."""
    if Allowance.EPSILON not in opts.allow or case.row.epsilon is None:
        return None
    keep, allowed, accepted = [], set(), None
    for mismatch in found.mismatches:
        eps = (
            _epsilon_match(case, mismatch.actual, first.instance)
            if mismatch.check in case.row.outputs and mismatch.kind == Kind.VALUE
            else None
        )
        if eps is None:
            keep.append(mismatch)
        else:
            accepted = eps
            allowed.add(mismatch.check)
            found.note(f"{mismatch.check}: computed as -log(y + {eps:g}), allowed by --allow epsilon")
    found.mismatches = keep
    # an allowed check is judged again by the later stages, against the formula: no longer set aside
    found.failed_checks -= allowed - {m.check for m in found.mismatches}
    return accepted


_EPSILONS = (1e-7, 1e-8, 1e-10, 1e-12, 1e-15, 1e-6, 1e-5)


def _epsilon_match(case: Case, actual: Any, instance: Any = None) -> float | None:
    """The eps of ``-log(y + eps)`` that ``actual`` matches; for a row that captures hidden state, only with
    the ``instance`` that drew the state behind ``actual``."""
    if actual is None or (case.row.capture is not None and instance is None):
        return None
    values = with_capture(case.row, case.values, instance)
    tol = case.row.tolerance(case.dtype)
    for eps in _EPSILONS:
        expected = epsilon_loss(case.row, values, eps)
        if expected is not None and np.allclose(actual, expected, rtol=64 * tol.rtol, atol=tol.atol):
            return eps
    return None


# ---- diagnosis ----------------------------------------------------------------------------------------------


def _rerun(
    row: Row, layer: type, example: Example, opts: Options, mode: str, check: str
) -> tuple[Any, Any] | None:
    """Run the layer again on a variant of the example; (actual, expected) for ``check``, or None.

    ``ones``: every cotangent set to one (a layer that ignores dout is right there).
    ``shifted``: every float input and cotangent mapped by v -> 0.75 v + 0.5, which keeps the domain and
    moves every ratio between elements, so a pattern seen on one example is confirmed on another.
    """
    base = Case(
        row, layer, dict(example.values), example.cotangents, np.dtype(example.dtype), opts.grad_names
    )
    if mode == "ones":
        if all(np.all(np.asarray(c) == 1) for c in base.cotangents):
            return None
        case = replace(base, cotangents=ones(base))
    else:
        values = shifted(base, base.values, 0.75, 0.5)
        floats = {a.name for a in row.differentiable}
        # a ramp across the elements as well: v -> 0.75 v + 0.5 keeps equal elements equal, and a pattern
        # that holds only because rows or columns are equal (a sum over the wrong axis reads as a factor
        # N there) must not be confirmed
        values.update({k: ramped(v) for k, v in values.items() if k in floats and isinstance(v, np.ndarray)})
        cots = tuple(ramped(np.asarray(c)) for c in shifted_cotangents(base, 0.75, 0.5))
        case = replace(base, values=values, cotangents=cots)
    with guard_for(layer, opts) as guard:
        run = drive(case, use(case.values, case.cotangents), Findings(row, row.tolerance(case.dtype), guard))
    if run.outs is None:
        return None
    ref = case.reference(case.values, case.cotangents, run.instance)
    if check in row.outputs:
        i = row.outputs.index(check)
        return np.asarray(run.outs[i], dtype=np.float64), ref.outputs[i].value
    if not run.ok:
        return None
    for read in run.reads:
        expected = ref.grads[read.arg.name].value
        if read.where == check and read.value is not None and np.shape(read.value) == expected.shape:
            return np.asarray(read.value, dtype=np.float64), expected
    return None


def _at_kinks(row: Row, example: Example, ev: Any) -> Any:
    """Where the gradient of ``ev`` has more than one valid value, by the row's subgradient; or None."""
    arg = next((a for a in row.differentiable if a.name == ev.primal), None)
    if arg is None or ev.expected is None:
        return None
    bounds = kink_bounds(row, arg, example.values, example.cotangents, ev.expected)
    return None if bounds is None else bounds[0] != bounds[1]


_VALUE_KINDS = frozenset({Kind.VALUE, Kind.NAN, Kind.SHAPE})
"""The failures a line of the layer's own code can be found for: a value, or a shape, that is wrong."""


CALL_LIMIT = 2.0
"""Seconds one call of the layer may take under the culprit search's line tracer."""


def _located(failure: Failure, row: Row, layer: type, opts: Options) -> Located:
    """The culprit search on the failing example; a search that itself fails names no line."""
    if not any(m.kind in _VALUE_KINDS for m in failure.mismatches):
        kinds = ", ".join(sorted({str(m.kind) for m in failure.mismatches}))
        return Located(None, (), f"no line is searched for: the failure is no wrong value ({kinds})")
    try:
        return locate(
            row,
            layer,
            failure.example,
            grad_names=opts.grad_names,
            judge=Judge(opts.ignore, opts.strict),
            # each traced call bounded: a search must cost seconds, never the layer's whole time limit
            budget=Budget(timeout=CALL_LIMIT if opts.timeout is None else min(opts.timeout, CALL_LIMIT)),
        )
    except Exception as exc:  # the search must never cost the report: it says why it found nothing
        return Located(None, (), f"the culprit search could not run ({type(exc).__name__}: {exc})")


def diagnose_failure(failure: Failure, row: Row, layer: type, opts: Options, *, rerun: bool = True) -> None:
    """Give every mismatch of ``failure`` its diagnosis, and the failure its reproducing program.

    The diagnosis may run the layer again on variants of the example, unless ``rerun`` is False or a call
    timed out on it: a layer that hung is not called again, as each call could cost the whole time limit.
    """
    example = failure.example
    tol = row.tolerance(example.dtype)
    hung = not rerun or any(m.kind == Kind.TIMEOUT for m in failure.mismatches)

    def again(mode: str, check: str) -> tuple[Any, Any] | None:
        return None if hung else _rerun(row, layer, example, opts, mode, check)

    def epsilon(actual: Any) -> float | None:
        case = Case(row, layer, dict(example.values), example.cotangents, np.dtype(example.dtype))
        if row.capture is None:
            return _epsilon_match(case, actual)
        if hung:
            return None
        # the loss depends on the state the layer drew (its negatives): match a fresh run's own loss
        with guard_for(layer, opts) as guard:
            run = drive(
                case, use(case.values, case.cotangents), Findings(row, row.tolerance(case.dtype), guard)
            )
        if run.outs is None or len(row.outputs) != 1:
            return None
        return _epsilon_match(case, np.asarray(run.outs[0], dtype=np.float64), run.instance)

    base = Case(
        row, layer, dict(example.values), example.cotangents, np.dtype(example.dtype), opts.grad_names
    )
    said: list[tuple[str, ...]] = []

    def warned() -> tuple[str, ...]:
        if not said:  # run once, and only for a failure whose words depend on it
            with Guard(opts.timeout) as guard:
                drive(base, use(base.values, base.cotangents), Findings(row, tol, guard))
            said.append(tuple(w.message for w in guard.warnings))
        return said[0]

    refs: dict[str, Any] = {}

    def expect_at(name: str, changes: Mapping[str, Any]) -> Any:
        key = repr(sorted((k, np.asarray(v).tolist()) for k, v in changes.items()))
        if key not in refs:  # one reference for every check of the failure at these values
            changes = dict(changes)
            case = replace(base, row=row.at_eps(changes.pop("eps"))) if "eps" in changes else base
            try:
                # only the values are read: the rounding scale of an eps of 0 divides by a zero std
                with np.errstate(divide="ignore", invalid="ignore"):
                    refs[key] = case.reference({**example.values, **changes}, example.cotangents, None)
            except Exception:  # the reference cannot take these values (or needs the layer's hidden state)
                refs[key] = None
        ref = refs[key]
        if ref is None:
            return None
        if name in row.outputs:
            return ref.outputs[row.outputs.index(name)].value
        held = ref.grads.get(name)
        return None if held is None else held.value

    diagnosed = []
    for mismatch in failure.mismatches:
        situation = Situation(
            mismatch,
            example.values,
            tol,
            again,
            row.outputs,
            row.batch_size(example.values),
            {a.name: a.kinks for a in row.args if a.kinks},
            row.conventions,
            epsilon if row.epsilon is not None else None,
            _at_kinks(row, example, mismatch),
            warned,
            expect_at,
            row.eps,
        )
        d = diagnose(situation)
        diagnosed.append(replace(mismatch, diagnosis=d.code, explanation=d.sentence, hint=d.hint))
    failure.mismatches = diagnosed
    if not hung and failure.shrunk and opts.culprit:
        failure.located = _located(failure, row, layer, opts)
    failure.program = snippet(example, row, layer, failure)
