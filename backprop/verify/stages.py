"""The check stages, in the order they run on every example.

1. ``first_use``: build, forward, backward with a random cotangent; every output and gradient against
   ``jax.vjp``, with its shape and dtype; nothing of the caller's mutated or aliased; book 2's ``grads``
   written in place.
2. ``usual_calls``: the calls real code makes, on a fresh instance under another global random state: the
   same example again (it must give the same result: ``nondeterministic``), dout of all ones (``dout_one``),
   and for a loss ``backward()`` with its own default (``default_dout``).
3. ``training``: a short training-like sequence on one instance: forward on another batch, then forward
   and backward on this one (``stale`` if it answers for the other), the parameters updated in place as an
   optimizer does, then forward and backward on new values (``param_copy`` if it still uses the old
   parameters, ``stale`` otherwise).
4. ``second_use``: the first instance used again next to another (forward A, forward B, backward B,
   backward A): a module-level cache or ``dW +=`` shows here (``stateful``).

A stage runs only when the ones before it found nothing new.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from backprop.verify.diagnose import Evidence
from backprop.verify.findings import Findings, as_array, kink_bounds, snapshot, unchanged
from backprop.verify.row import Read, Row
from backprop.verify.runner import Reference, epsilon_loss, reference_vjp
from backprop.verify.vocabulary import Convention, Kind

STAGES = ("first_use", "usual_calls", "training", "second_use")
# the steps a failure can come from, stamped on its evidence so that the printed program replays them
THIS_BATCH, NEXT_STEP, SECOND_USE = "training: this batch", "training: next step", "second use"
TEST_AFTER_TRAIN, AFTER_RESET = "training: then test mode", "training: after reset_state()"


@dataclass(frozen=True)
class Case:
    """One example as the stages see it: the row, the class, the pristine values and cotangents."""

    row: Row
    layer: type
    values: Mapping[str, Any]
    cotangents: tuple[Any, ...]
    dtype: np.dtype[Any]
    grad_names: Mapping[str, str] = field(default_factory=dict)
    epsilon: float | None = None
    """The eps of a ``-log(y + eps)`` loss that ``--allow epsilon`` accepted on the first use: every later
    output is judged against that formula, every gradient still against the exact reference."""

    def fresh(self) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """Copies of the values and cotangents for the layer to receive (it may write into them)."""
        return {k: snapshot(v) for k, v in self.values.items()}, tuple(snapshot(c) for c in self.cotangents)

    def reference(self, values: Mapping[str, Any], cotangents: tuple[Any, ...], instance: Any) -> Reference:
        try:
            ref = reference_vjp(self.row, with_capture(self.row, values, instance), cotangents, self.dtype)
        except Exception:
            # without the state (a test-mode forward draws no mask) a reference that needs none still runs
            if self.row.capture is None or instance is None:
                raise
            try:
                self.row.capture(instance)
            except Exception as exc:
                raise StateUnreadable(str(exc)) from exc
            raise
        return self.allowed(ref, values, instance)

    def allowed(self, ref: Reference, values: Mapping[str, Any], instance: Any) -> Reference:
        """``ref`` with its loss as ``-log(y + eps)`` once that form is allowed (``epsilon``)."""
        if self.epsilon is None:
            return ref
        loss = epsilon_loss(self.row, with_capture(self.row, values, instance), self.epsilon)
        if loss is None:
            return ref
        (out,) = ref.outputs  # a row with an epsilon form has one output: its loss
        return replace(ref, outputs=(replace(out, value=loss),))


class StateUnreadable(Exception):
    """The row's ``capture`` could not read the hidden state the reference needs from the layer (no mask,
    or one that cannot be right): the layer's finding, in the capture's words."""


def _unreadable(found: Findings, exc: Exception) -> None:
    message = f"after forward(), the row could not read the state its reference needs: {exc}"
    found.add(Evidence("state", "state", Kind.MISSING, where="forward()"), message)


@dataclass
class FirstUse:
    """What the first stage leaves for the others: the instance, its outputs, gradients and reference."""

    instance: Any
    outputs: tuple[Any, ...]
    grads: dict[str, Any]
    ref: Reference
    values: Mapping[str, Any] = field(default_factory=dict)
    """The very arrays the instance was built with (book 2's ``params`` are found by identity)."""
    calls: list[Call] = field(default_factory=list)
    """The calls that made it: a later stage that uses the instance again, or compares with it, goes on
    from them."""


def with_capture(row: Row, values: Mapping[str, Any], instance: Any) -> dict[str, Any]:
    """The example's values, with the state carried from a previous call computed from the others (so a
    stage that moves the values moves it too), plus any hidden state the layer drew in forward (a dropout
    mask)."""
    values = row.complete(values)
    if row.capture is None or instance is None:
        return values
    try:
        return {**values, **row.capture(instance)}
    except Exception:  # the layer lacks the declared state: the comparison will show what is wrong
        return dict(values)


# ---- the pieces every stage uses ----------------------------------------------------------------------------


def _later(case: Case, kind: Kind) -> Kind:
    """What a later stage calls a wrong value it finds: its own kind (stale, dout_one, ...), unless the
    layer redraws hidden state on every call (a dropout mask). Then the first call's mask may simply
    have hidden the mistake, which is a plain wrong value, not a sign of state kept between calls."""
    return Kind.VALUE if case.row.redraws_state else kind


Op = Literal["build", "forward", "backward", "read", "update", "reset", "seed"]


@dataclass(frozen=True)
class Expect:
    """What a call's results are judged against: the reference at ``values`` and ``cotangents``."""

    values: Mapping[str, Any]
    cotangents: tuple[Any, ...]
    kind: Kind = Kind.VALUE
    """The kind of a wrong value (``stale`` in the training stage, ...)."""
    outputs: bool = True
    """Whether forward's outputs are judged (else only the gradients the ``read`` call reads)."""
    dtype: np.dtype[Any] | None = None
    """The dtype every result must have (the first use's); None: values only."""
    reference: Reference | None = None
    """A reference already computed at these values (the first use's), for a row that captures no state."""


@dataclass(frozen=True)
class Call:
    """One call of the layer as a stage makes it, with the concrete values it is given; the program printed
    with a failure renders the calls recorded (``program.snippet``). Besides ``build``, ``forward``,
    ``backward`` and ``read`` (of the gradients): ``update`` writes ``values`` into the arrays the layer
    holds (an optimizer's step, a batch buffer refilled), ``reset`` calls ``reset_state()``, and ``seed``
    seeds ``random`` and ``np.random`` (the stage restores them afterwards)."""

    op: Op
    values: Mapping[str, Any] | None = None
    """build: the values the instance is built with (None: the trace's own dict, not copied); forward: those it receives (None: the build's own
    dict, whose parameters a network's build replaced with its own arrays); read: the values whose arrays
    identify book 2's parameters (None: the build's). Copied for the layer, which may write into them."""
    cotangents: tuple[Any, ...] | None = None
    """backward: the cotangents it receives (copied); None calls ``backward()`` with the layer's default."""
    label: str = ""
    """Where the call is made, as the guard names it (``training, next step: ``)."""
    expect: Expect | None = None
    """forward: compute the reference right after it (from the state it drew) and judge the outputs;
    read: judge the gradients against that reference."""
    raised: Kind = Kind.EXCEPTION
    """The kind of an exception raised by this call: a later stage's own (an exception on a later use only is
    a cache from an earlier call)."""
    alone: bool = False
    """forward: from whatever state the layer holds, without ``set_state`` and the previous call."""
    copied: bool = True
    """forward and backward: False gives the very arrays of ``values`` or ``cotangents`` (a training loop's
    batch buffers, refilled in place; the caller's arrays, watched for writes), not copies."""
    who: str = "layer"
    """The instance the call is made on, as the printed program names it (``other``: a second instance)."""
    seed: int = 0

    def recorded(self, values: Mapping[str, Any]) -> Call:
        """This call as the trace keeps it: with a copy, taken before the layer can write into them, of the
        values the instance is built with and of the caller's very arrays. A forward on the build's own dict
        (``values`` None) stays so: the program passes the instance the very variables it was built with,
        as the stage does."""
        if (self.op == "build" and self.values is None) or (self.op == "forward" and not self.copied):
            given = values if self.values is None else self.values
            return replace(self, values={k: snapshot(v) for k, v in given.items()})
        if self.op == "backward" and not self.copied and self.cotangents is not None:
            return replace(self, cotangents=tuple(snapshot(c) for c in self.cotangents))
        return self


@dataclass
class Trace:
    """What one instance did under a list of calls: the calls that ran, and what they returned."""

    calls: list[Call] = field(default_factory=list)
    """The calls as they ran: this instance's, after those it goes on from (its first use; a second instance's,
    interleaved, share the list). They reproduce whatever fails here."""
    instance: Any = None
    values: dict[str, Any] = field(default_factory=dict)
    """The very dict the instance was built with (a network's build puts its own arrays in it)."""
    outs: tuple[Any, ...] | None = None
    ok: bool = False
    """Whether the last backward returned."""
    result: Any = None
    ref: Reference | None = None
    reads: list[Read] = field(default_factory=list)
    right: bool = True
    """Whether every judged result matched its reference."""
    done: bool = False
    """Whether every call ran (none failed, no judged result was wrong)."""


def drive(case: Case, calls: list[Call], found: Findings, trace: Trace | None = None) -> Trace:
    """The one driver: make ``calls`` in order (continuing ``trace``'s instance when given), each under the
    guard, and stop at the first that fails or returns a wrong judged result."""
    trace = trace if trace is not None else Trace()
    trace.done = False
    found.log = trace.calls  # a failure found from here on is reproduced by these calls
    for call in calls:
        trace.calls.append(call.recorded(trace.values))
        if not _make(case, call, trace, found):
            return trace
    trace.done = True
    return trace


def _make(case: Case, call: Call, trace: Trace, found: Findings) -> bool:
    """One call of the layer under the guard, into ``trace``; False when it failed or judged wrong. A
    constructor that fails ends the trace even when its failure is one set aside (a search for the next
    mistake ignores the known ones): nothing more can be asked of the instance."""
    row, instance, what, raised = case.row, trace.instance, call.label, call.raised
    if call.op == "seed":
        random.seed(call.seed)
        np.random.seed(call.seed)
        return True
    if call.op == "update":
        for name, value in (call.values or {}).items():
            trace.values[name][...] = value
        return True
    if call.op == "reset":
        return found.call("reset_state()", instance.reset_state, raised)[0]
    if call.op == "build":
        if call.values is not None:
            trace.values = {k: snapshot(v) for k, v in call.values.items()}
        values = trace.values
        ok, trace.instance = found.call(f"{what}constructor", lambda: row.build(case.layer, values), raised)
        return ok
    if call.op == "forward":
        given = trace.values if call.values is None else dict(call.values)
        if call.copied and call.values is not None:
            given = {k: snapshot(v) for k, v in given.items()}
        trace.ok, trace.result, trace.reads = False, None, []  # a new use: no backward of it yet
        method = row.call_alone if call.alone else row.call
        ok, raw = found.call(f"{what}forward()", lambda: method(instance, given), raised)
        trace.outs = row.outputs_of(raw) if ok and raw is not None else None
        if ok and raw is None:
            message = "forward() returned None: is a `return` missing?"
            found.add(Evidence("forward", "forward", Kind.RETURNS_NONE), message)
        if trace.outs is None:
            return False
        expect = call.expect
        if expect is None:
            return True
        trace.ref = expect.reference or case.reference(expect.values, expect.cotangents, instance)
        if expect.outputs:
            trace.right = judge_outputs(case, trace.outs, trace.ref, found, expect.kind, expect.dtype)
        return trace.right
    if call.op == "backward":
        cots = call.cotangents
        if cots is not None and call.copied:
            cots = tuple(snapshot(c) for c in cots)
        trace.ok, trace.result = found.call(f"{what}backward()", lambda: row.backward(instance, cots), raised)
        return bool(trace.ok)
    named = trace.values if call.values is None else call.values
    trace.reads = row.gradients(instance, trace.result, named, case.grad_names)
    expect = call.expect
    if expect is not None and trace.ref is not None:
        # a gradient the first call gave in no usable form is not asked for again (``_first_results``)
        reads = [r for r in trace.reads if r.arg.name in trace.ref.grads]
        trace.right = judge_grads(
            case, reads, trace.ref, expect.values, expect.cotangents, found, expect.kind, expect.dtype
        )
    return trace.right


def use(
    values: Mapping[str, Any],
    cots: tuple[Any, ...] | None,
    label: str = "",
    expect: Expect | None = None,
    raised: Kind = Kind.EXCEPTION,
) -> list[Call]:
    """A fresh instance used once: built on ``values``, forward, backward with ``cots``, gradients read."""
    return [
        Call("build", values, label=label, raised=raised),
        Call("forward", label=label, expect=expect, raised=raised),
        Call("backward", cotangents=cots, label=label, raised=raised),
        Call("read", expect=expect),
    ]


def judge_grads(
    case: Case,
    reads: list[Read],
    ref: Reference,
    values: Mapping[str, Any],
    cots: tuple[Any, ...],
    found: Findings,
    kind: Kind = Kind.VALUE,
    dtype: np.dtype[Any] | None = None,
) -> bool:
    """Every gradient read against the reference; True when all are right."""
    ok = True
    for read in reads:
        if read.problem is not None:
            found.add(Evidence(read.where, read.arg.name, read.problem), read.message)
            ok = False
            continue
        expected = ref.grads[read.arg.name]
        bounds = kink_bounds(case.row, read.arg, values, cots, expected.value)
        ok &= found.value(read.where, read.arg.name, expected, read.value, dtype, kind, bounds)
    return ok


def judge_outputs(
    case: Case,
    outs: tuple[Any, ...],
    ref: Reference,
    found: Findings,
    kind: Kind = Kind.VALUE,
    dtype: np.dtype[Any] | None = None,
) -> bool:
    ok = True
    for name, expected, actual in zip(case.row.outputs, ref.outputs, outs, strict=False):
        ok &= found.value(name, name, expected, actual, None if case.row.loss else dtype, kind)
    return ok


def _missing_gradient(
    case: Case, instance: Any, read: Read, before: Mapping[str, int], found: Findings
) -> bool:
    """A parameter gradient that was never set: name any attribute of the parameter's shape that backward
    set (created or replaced), other than the parameter itself."""
    if read.value is not None or read.problem is not None or read.arg.source not in ("param", "attr"):
        return False
    shape = np.shape(case.values[read.arg.name])
    attrs = vars(instance) if hasattr(instance, "__dict__") else {}
    new = [
        name
        for name, value in attrs.items()
        if isinstance(value, np.ndarray) and value.shape == shape and before.get(name) != id(value)
    ]
    if new:
        message = (
            f"{read.where} was never set, but backward() created {', '.join(new)} of {read.arg.name}'s shape "
            f"{shape}; rename it, or map it with --grad-names {read.arg.grad}={new[0]}"
        )
        found.add(Evidence(read.where, read.arg.name, Kind.MISSING, renamed=new[0]), message)
    else:
        found.add(
            Evidence(read.where, read.arg.name, Kind.MISSING), f"{read.where} was never set by backward()"
        )
    return True


# ---- stage 1 ------------------------------------------------------------------------------------------------


def first_use(case: Case, found: Findings) -> FirstUse | None:
    """Build, forward, backward with the drawn cotangent; judge everything the first call produces."""
    row, dtype = case.row, case.dtype
    values, cots = case.fresh()
    callers = {**values, **dict(zip(dout_names(cots), cots, strict=True))}
    trace = drive(case, [Call("build")], found, Trace(values=values))
    instance = trace.instance
    if not trace.done or found.failed:
        return None
    grads_before = _grads_list(instance)
    outs = drive(case, [Call("forward")], found, trace).outs
    if outs is None:
        _unmutated(case, callers, found)
        return None
    held = tuple(snapshot(o) for o in outs)
    ref = _first_reference(case, instance, found)
    if ref is None:
        _unmutated(case, callers, found)
        return None
    if len(outs) != len(row.outputs):
        found.add(
            Evidence("forward", "forward", Kind.ARITY),
            f"forward() returned {len(outs)} outputs, expected {len(row.outputs)}",
        )
    judge_outputs(case, held, ref, found, dtype=dtype)
    attrs = {k: id(v) for k, v in vars(instance).items()} if hasattr(instance, "__dict__") else {}
    if not _first_backward(case, trace, cots, found):
        _unmutated(case, callers, found)  # test-mode backward is outside this layer's contract: forward
        return None  # was the check
    ok, result = trace.ok, trace.result
    if ok:
        for name, old, new in zip(row.outputs, held, outs, strict=False):
            if not unchanged(old, new):
                found.add(
                    Evidence(name, name, Kind.MUTATED),
                    f"backward() modified the forward output {name} that the caller holds",
                )
        if _judge_backward(case, instance, result, values, ref, attrs, found, callers):
            _grads_rebound(row, instance, grads_before, found)
    _unmutated(case, callers, found)
    if not ok:
        return None
    reads = row.gradients(instance, result, values, case.grad_names)
    grads = {r.arg.name: snapshot(r.value) for r in reads}
    return FirstUse(instance, held, grads, ref, values, trace.calls)


NO_TEST_BACKWARD = (
    "backward() after a test-mode forward ({mode}=False) raised {error} on a fresh instance: test-mode "
    "backward is outside this layer's contract (both books leave it undefined), so test mode is judged on "
    "forward alone"
)


def _first_backward(case: Case, trace: Trace, cots: tuple[Any, ...], found: Findings) -> bool:
    """backward on the first use, with the caller's very cotangents (watched for writes); False when it is
    not judged. After a test-mode forward, a backward that raises says the layer defines no test-mode
    backward (the books' Dropout and BatchNormalization): False, and a note. One that returns is judged
    here, and wherever test mode follows train mode (``_then_test_mode``)."""
    call = Call("backward", cotangents=cots, copied=False)
    if not case.row.test_mode(case.values):
        drive(case, [call], found, trace)
        return True
    probe = found.child()
    drive(case, [call], probe, trace)
    if not trace.ok and probe.mismatches[0].kind == Kind.EXCEPTION:
        error = probe.mismatches[0].message.partition(" raised ")[2].partition(":")[0] or "an exception"
        found.note(NO_TEST_BACKWARD.format(mode=case.row.mode, error=error))
        return False
    found.adopt(probe)  # an exit or a hang is a finding in either mode
    return True


def defines_test_backward(
    case: Case, values: Mapping[str, Any], cots: tuple[Any, ...], found: Findings
) -> bool:
    """Whether a fresh instance returns from backward after a test-mode forward on ``values``."""
    calls = use(values, cots, "fresh: ")[:3]
    return drive(case, calls, found.child(ignore=True)).ok


def _first_reference(case: Case, instance: Any, found: Findings) -> Reference | None:
    """The reference for the first call. When it cannot be computed because the row could not read the
    layer's hidden state (``capture`` raised: no dropout mask after a train-mode forward), that is the
    layer's finding, in the capture's own words; any other failure of the reference is the oracle's."""
    try:
        return case.reference(case.values, case.cotangents, instance)
    except StateUnreadable as exc:
        _unreadable(found, exc)
        return None


def _judge_backward(
    case: Case,
    instance: Any,
    result: Any,
    values: Mapping[str, Any],
    ref: Reference,
    attrs: Mapping[str, int],
    found: Findings,
    callers: Mapping[str, Any],
) -> bool:
    row = case.row
    found.measured.convention = row.convention(instance, case.grad_names).value
    reads = row.gradients(instance, result, values, case.grad_names)
    if row.read_from("return") and result is None:
        found.add(
            Evidence("backward", "backward", Kind.RETURNS_NONE),
            "backward() returned None: is a `return` missing?",
        )
        reads = [r for r in reads if r.arg.source != "return"]
    present = [r for r in reads if not _missing_gradient(case, instance, r, attrs, found)]
    judge_grads(case, present, ref, case.values, case.cotangents, found, dtype=case.dtype)
    for i, read in enumerate(present):
        found.not_aliased(read.where, read.arg.name, read.value, callers)
        others = {r.where: r.value for r in present[i + 1 :]}
        found.not_aliased(read.where, "", read.value, others, "gradient ")
    return not found.failed


def _grads_list(instance: Any) -> list[Any] | None:
    grads = getattr(instance, "grads", None)
    return list(grads) if isinstance(grads, list) else None


def _grads_rebound(row: Row, instance: Any, before: list[Any] | None, found: Findings) -> None:
    """Book 2's optimizer holds the arrays of ``grads``: backward must write into them, not replace them."""
    after = getattr(instance, "grads", None)
    if before is None or not isinstance(after, list) or row.convention(instance) != Convention.BOOK2:
        return
    for i, (old, new) in enumerate(zip(before, after, strict=False)):
        if isinstance(old, np.ndarray) and new is not old:
            message = (
                f"backward() replaced grads[{i}] with a new array; an optimizer holding the old one never sees "
                "the gradient"
            )
            found.add(Evidence(f"grads[{i}]", f"grads[{i}]", Kind.GRADS_REBOUND), message)


def dout_names(cots: tuple[Any, ...]) -> list[str]:
    return ["dout"] if len(cots) == 1 else [f"dout{i}" for i in range(len(cots))]


def _unmutated(case: Case, callers: Mapping[str, Any], found: Findings) -> None:
    pristine = {**case.values, **dict(zip(dout_names(case.cotangents), case.cotangents, strict=True))}
    for name, old in pristine.items():
        if not unchanged(old, callers[name]) and name not in found.failed_checks:
            where = "backward() wrote into" if name.startswith("dout") else "the layer modified"
            found.add(Evidence(name, name, Kind.MUTATED), f"{where} the caller's {name} in place")


# ---- stage 2 ------------------------------------------------------------------------------------------------


@contextmanager
def kept_random_state() -> Iterator[None]:
    """The global random state (``random`` and ``np.random``) restored afterwards: a ``seed`` call inside
    runs the layer under another one (Hypothesis seeds both identically for every example, which would
    freeze a layer's randomness)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextmanager
def other_random_state(seed: int) -> Iterator[None]:
    """Run under the global random state ``seed`` (``random`` and ``np.random``), restored afterwards."""
    with kept_random_state():
        random.seed(seed)
        np.random.seed(seed)
        yield


def ones(case: Case) -> tuple[Any, ...]:
    """Cotangents of all ones (a plain 1.0 for a loss), the call every network makes."""
    return tuple(1.0 if case.row.loss else np.ones_like(c) for c in case.cotangents)


def shifted_cotangents(case: Case, scale: float, offset: float = 0.0) -> tuple[Any, ...]:
    """Every cotangent mapped by c -> scale * c + offset in its own dtype (a plain float for a loss)."""
    moved = [
        np.asarray(
            scale * np.asarray(c) + offset if offset else scale * np.asarray(c), dtype=np.asarray(c).dtype
        )
        for c in case.cotangents
    ]
    return tuple(float(c) if case.row.loss else c for c in moved)


def _has_default_dout(instance: Any) -> bool:
    try:
        params = list(inspect.signature(instance.backward).parameters.values())
    except (AttributeError, TypeError, ValueError):  # no backward: the row drives another method
        return False
    return bool(params) and all(
        p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in params
    )


def _numeric(value: Any) -> Any:
    """``value`` as a float64 array, or None where it is none (None, a tuple of mixed shapes, text)."""
    if value is None:
        return None
    arr, _ = as_array(value)
    return None if arr is None else arr.astype(np.float64)


def _first_results(case: Case, first: FirstUse) -> Expect:
    """The first call's own outputs and gradients as what a call on the same example must give again."""
    earlier = [_numeric(o) for o in first.outputs]
    # an output the first call gave in no usable form (a tuple for one output) was reported there
    usable = all(o is not None for o in earlier)
    outputs = tuple(replace(e, value=o) for e, o in zip(first.ref.outputs, earlier, strict=False))
    grads = {
        k: replace(e, value=got)
        for k, e in first.ref.grads.items()
        if (got := _numeric(first.grads.get(k))) is not None
    }
    same = replace(first.ref, outputs=outputs if usable else first.ref.outputs, grads=grads)
    return Expect(case.values, case.cotangents, Kind.NONDETERMINISTIC, outputs=usable, reference=same)


def usual_calls(case: Case, first: FirstUse, found: Findings, seed: int) -> None:
    """The same example again under another random state, then dout of ones, then ``backward()``."""
    row = case.row
    with kept_random_state():
        # the same results as the first call; a layer that draws hidden state (a dropout mask) is judged on
        # its redrawing instead
        expect = None if row.capture is not None else _first_results(case, first)
        calls = [
            Call("seed", seed=seed, label="usual: "),
            *use(case.values, case.cotangents, "usual: ", expect),
        ]
        trace = drive(case, calls, found, Trace(calls=list(first.calls)))
        if not trace.done:
            return
        if row.redraws_state and not _redraws(case, first, trace, found):
            return
    # each on a fresh instance, so that a layer that accumulates is not mistaken for a special case
    _with_dout(case, ones(case), _later(case, Kind.DOUT_ONE), "dout of ones", found)
    if row.loss and not found.failed and _has_default_dout(trace.instance):
        _with_dout(case, None, Kind.DEFAULT_DOUT, "backward() with its default dout", found)


REDRAWS = 8
"""How many more forward calls on one instance may keep its first draw of hidden state before it is stale,
when fresh instances show that a fair draw repeats that state rarely enough (see ``_often_drawn``)."""
FRESH_DRAWS = 16
"""Fresh instances drawn to estimate how often a right layer draws that very state again."""


def _same_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _redraws(case: Case, first: FirstUse, trace: Trace, found: Findings) -> bool:
    """Whether the trace's instance draws its hidden state (a dropout mask, negative samples) anew on each forward.

    Only asked when the state is random on this example: ``instance``, built under another random state
    than the first call's, drew other state. The same instance must then draw anew on a later forward of
    the same inputs; one that keeps its first draw (cached on self) trains on the same mask or the same
    negatives forever, and its gradients, which match that very state, cannot show it."""
    row, instance = case.row, trace.instance
    assert row.capture is not None  # redraws_state: a network row draws the same masks on purpose
    try:
        drawn, other = row.capture(instance), row.capture(first.instance)
    except Exception:  # no state to read: the first call has reported it
        return True
    if _same_state(drawn, other):
        return True
    for _ in range(REDRAWS):
        if drive(case, [Call("forward", label="usual: ")], found, trace).outs is None:
            return False
        try:
            if not _same_state(drawn, row.capture(instance)):
                return True
        except Exception:
            return True
    if _often_drawn(case, drawn, found):
        return True  # a fair draw repeats this state too often for REDRAWS + 1 equal calls to tell
    names = ", ".join(drawn)
    found.add(
        Evidence("state", "state", Kind.STALE, where="forward()"),
        f"forward() kept the same hidden state ({names}) on {REDRAWS + 1} calls of one instance, though "
        "another instance drew other state: it must draw anew on every call",
    )
    return False


def _often_drawn(case: Case, state: Mapping[str, Any], found: Findings) -> bool:
    """Whether a right layer could well draw ``state`` on REDRAWS + 1 calls in a row: a mask of one
    element kept with probability 0.9 is the same nine times in three runs of seven. The rate at which
    fresh instances, each under its own random state, draw that very state (smoothed: (k + 1) / (n + 2))
    must make such a run less likely than 1 in 10^4 before keeping it is called stale."""
    capture = case.row.capture
    if capture is None:
        return True
    probe = found.child(ignore=True)
    same = 0
    for i in range(FRESH_DRAWS):
        with kept_random_state():
            calls = [Call("seed", seed=7919 * (i + 1)), *use(case.values, None, "fresh: ")[:2]]
            fresh = drive(case, calls, probe)
            if not fresh.done or probe.failed:
                return True  # cannot tell: the other stages judge this layer
        try:
            same += _same_state(state, capture(fresh.instance))
        except Exception:
            return True
    return bool(((same + 1) / (FRESH_DRAWS + 2)) ** REDRAWS > 1e-4)


def _first_use_at(
    case: Case, values: Mapping[str, Any], cots: tuple[Any, ...] | None, found: Findings
) -> bool:
    """A control: whether a fresh instance is right at these values (a plain bug, not this stage's); ``cots``
    None calls ``backward()`` with the layer's default, judged as a dout of ones."""
    unit = cots if cots is not None else tuple(1.0 for _ in case.cotangents)
    trace = drive(case, use(values, cots, expect=Expect(values, unit)), found.child())
    return trace.done


def _with_dout(case: Case, cots: tuple[Any, ...] | None, kind: Kind, label: str, found: Findings) -> None:
    """Forward again, then backward with ``cots`` (None: no argument). A failure counts only when a fresh
    instance is right with a neighbouring call (dout of 1.5, or dout = 1 passed explicitly), so that a plain
    bug hidden by the drawn dout is not mistaken for a special case; that control runs only on failure."""
    probe = found.child()  # the probe sets nothing aside
    unit = tuple(1.0 for _ in case.cotangents) if cots is None else cots
    drive(case, use(case.values, cots, f"{label}: ", Expect(case.values, unit, kind, outputs=False)), probe)
    if not probe.failed:
        return
    neighbour = ones(case) if cots is None else tuple(1.5 * c for c in cots)
    if _first_use_at(case, case.values, neighbour, found):
        found.adopt(probe, kind)


# ---- stage 3 ------------------------------------------------------------------------------------------------


def shifted(case: Case, values: Mapping[str, Any], scale: float, offset: float) -> dict[str, Any]:
    """Every differentiated float value mapped by v -> scale * v + offset, in its own dtype."""
    floats = {a.name for a in case.row.differentiable}
    return {
        k: np.asarray(scale * v + offset, dtype=v.dtype)
        if k in floats and isinstance(v, np.ndarray)
        else snapshot(v)
        for k, v in values.items()
    }


def moved(case: Case, values: Mapping[str, Any], scale: float, offset: float) -> dict[str, Any]:
    """New inputs for the same parameters: ``shifted``, and every input that is not differentiated rolled
    by one sample along its first axis, so that a cache kept by shape (labels, ids) shows too; a roll
    keeps labels, ids and one-hot rows valid."""
    out = shifted(case, values, scale, offset)
    for name, value in out.items():
        if case.row.rolled(name, value):
            out[name] = np.roll(value, 1, axis=0)
    return out


def ramped(v: Any, *, lone: float = 0.0, phase: int = 0) -> Any:
    """A float array ``v`` plus a small ramp that differs between neighbouring elements (multiples of 1/64:
    exact), so that equal elements become unequal; a one-element array is moved by ``lone`` (it has no
    neighbour). ``phase`` shifts the ramp, so that two arrays of zeros moved with different phases differ.
    Anything else is returned as it is."""
    if not isinstance(v, np.ndarray) or v.dtype.kind != "f" or v.size == 0:
        return v
    if v.size == 1:
        return np.asarray(v + lone, dtype=v.dtype) if lone else v
    ramp = ((np.arange(v.size) * 3 + phase) % 7 - 3).reshape(v.shape) / 64
    return np.asarray(v + ramp, dtype=v.dtype)


def other_batch(case: Case) -> dict[str, Any]:
    """Another batch for the same parameters: a different batch size where the row has a batch axis,
    different values otherwise."""
    batch = [a.name for a in case.row.args if a.batch and np.ndim(case.values[a.name])]
    values = moved(case, case.values, 0.75, 0.5)
    if batch:
        n = np.shape(case.values[batch[0]])[0]
        rows = np.arange(n + 1 if n < 4 else n - 1) % n
        values.update({k: np.take(values[k], rows, axis=0) for k in batch})
    return values


TRAINING = "training: "


def training(case: Case, first: FirstUse, found: Findings) -> None:
    """Forward on another batch, forward and backward on this one, update the parameters in place, then
    forward and backward on new values: each result must match the reference for its own values."""
    row, stale = case.row, Kind.STALE
    trace = drive(case, [Call("build", case.values, label=TRAINING, raised=stale)], found)
    if not trace.done or found.failed:
        return
    other = other_batch(case)
    probe = found.child()
    another = Call("forward", other, label="training, another batch: ", raised=stale)
    if drive(case, [another], probe, trace).outs is None:
        if _fresh_forward(case, other, found):
            found.adopt(probe)  # only this instance fails there: a value kept from the first call
        return  # a fresh layer fails on that batch too: a plain bug, for the first stage to find there
    found.stage = THIS_BATCH
    reference = None if row.capture else first.ref
    expect = Expect(case.values, case.cotangents, _later(case, stale), reference=reference)
    this_batch = [
        Call("forward", label=TRAINING, expect=expect, raised=stale),
        Call("backward", cotangents=case.cotangents, label=TRAINING, raised=stale),
        Call("read", expect=expect),
    ]
    if not drive(case, this_batch, found, trace).done or trace.outs is None:
        return
    _next_step(case, trace, found, tuple(snapshot(o) for o in trace.outs))
    if not found.failed:
        _then_test_mode(case, found)
    if not found.failed:
        _after_reset(case, trace, found)


def _after_reset(case: Case, trace: Trace, found: Findings) -> None:
    """``reset_state()`` on the trained instance, then forward and backward without ``set_state`` on the
    last step's values (its parameters as updated): the call must start from zeros, as a new sequence
    does (a kept cell state or a stale h shows here)."""
    row, values = case.row, trace.values
    if row.reset is None or not callable(getattr(trace.instance, "reset_state", None)):
        return
    reset, label = found.child(), "training, after reset_state(): "
    if not drive(
        case, [Call("reset", label=label)], reset, trace
    ).done:  # reset_state() itself fails: that is the finding
        reset.mismatches = [replace(m, where=AFTER_RESET) for m in reset.mismatches]
        found.adopt(reset)
        return
    probe = found.child()
    probe.stage = AFTER_RESET
    pristine = row.reset({k: snapshot(v) for k, v in values.items()})
    expect = Expect(pristine, case.cotangents)
    calls = [
        Call("forward", dict(values), label=label, expect=expect, raised=Kind.STALE, alone=True),
        Call("backward", cotangents=case.cotangents, label=label, raised=Kind.STALE),
        Call("read", values, expect=expect),
    ]
    drive(case, calls, probe, trace)
    # a fresh layer that starts from zeros must be right at these values: else a plain bug, for the first
    # stage to find on its own
    if probe.failed and _first_use_at(case, pristine, case.cotangents, found):
        found.adopt(probe, Kind.STALE)


def _then_test_mode(case: Case, found: Findings) -> None:
    """Train mode, then test mode on one instance, as training and then evaluation run a layer: forward
    and backward in train mode, then forward on new values in test mode (and backward, where the layer
    defines it), judged with the state the train-mode call left (``after_train``: running statistics)."""
    row = case.row
    if not row.mode or row.test_mode(case.values):
        return
    cots = case.cotangents
    trace = drive(case, use(case.values, cots, TRAINING, raised=Kind.STALE)[:3], found)
    if not trace.ok:
        return
    instance = trace.instance
    inputs = {a.name for a in row.placed("forward")}  # new inputs; the parameters stay the layer's
    moved = shifted(case, case.values, 0.5, 0.25)
    later = {**case.values, **{k: moved[k] for k in inputs}, row.mode: False}
    if row.after_train is not None:
        later.update(row.after_train(case.values, instance))
    pristine = {k: snapshot(v) for k, v in later.items()}
    probe = found.child()
    probe.stage = TEST_AFTER_TRAIN
    label, expect = "training, then test mode: ", Expect(pristine, cots)
    trace = drive(case, [Call("forward", later, label=label, expect=expect, raised=Kind.STALE)], probe, trace)
    if trace.outs is None and not probe.failed:
        return
    if trace.done and defines_test_backward(case, later, cots, found):
        calls = [
            Call("backward", cotangents=cots, label=label, raised=Kind.STALE),
            Call("read", later, expect=expect),
        ]
        drive(case, calls, probe, trace)
    if probe.failed and _test_mode_control(case, pristine, cots, found):
        why = "in test mode after a train-mode call on the same instance" + _left_state(case, instance, later)
        probe.mismatches = [replace(m, message=f"{m.message}; {why}") for m in probe.mismatches]
        # no mask redrawn can hide this: test mode draws none, and a fresh instance is right there
        found.adopt(probe, Kind.STALE)


def _left_state(case: Case, instance: Any, expected: Mapping[str, Any]) -> str:
    """What the train-mode call left in the layer's attributes of the ``after_train`` names that differs
    from what it should have left (the running statistics), as words for the report."""
    if case.row.after_train is None:
        return ""
    wrong = []
    for name in case.row.after_train(case.values, instance):
        held = getattr(instance, name, None)
        want = np.asarray(expected[name], dtype=np.float64)
        try:
            got = np.asarray(held, dtype=np.float64)
            differs = got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-8)
        except (TypeError, ValueError):
            differs = True
        if differs:
            wrong.append(f"{name} should be {np.round(want, 6).tolist()}, the layer holds {held!r}")
    return (": " + "; ".join(wrong)) if wrong else ""


def _test_mode_control(case: Case, values: Mapping[str, Any], cots: tuple[Any, ...], found: Findings) -> bool:
    """Whether a fresh instance, built with the state training should have left, is right in test mode
    at these values (then a wrong result after training is the training's: a running statistic not
    updated as the book does, a mask kept into test mode); its backward is judged only where defined."""
    probe, expect = found.child(), Expect(values, cots)
    calls = use(values, cots, expect=expect)
    trace = drive(case, calls[:2], probe)
    if not trace.done:
        return False
    if not defines_test_backward(case, values, cots, found):
        return True
    return drive(case, calls[2:], probe, trace).done


def _next_step(case: Case, trace: Trace, found: Findings, before: tuple[Any, ...]) -> None:
    """The optimizer's step: every parameter updated in place; then forward and backward on new values.
    ``before`` holds the outputs of the step before: a forward that returns them again kept them."""
    row, values = case.row, trace.values
    step = moved(case, values, -0.5, 0.25)
    pristine = {k: snapshot(v) for k, v in step.items()}
    # written in place: every parameter (an optimizer's step, on the very arrays the layer was built with),
    # and every input of a batch size that stays (a training loop's batch buffer, refilled)
    held = [a.name for a in row.held if isinstance(values[a.name], np.ndarray)]
    refilled = [
        a.name
        for a in row.placed("forward")
        if isinstance(values[a.name], np.ndarray)
        and isinstance(step[a.name], np.ndarray)
        and values[a.name].shape == step[a.name].shape
    ]
    given = {**step, **{a.name: values[a.name] for a in row.held}, **{k: values[k] for k in refilled}}
    cots = shifted_cotangents(case, -0.5, 0.25)
    probe = found.child()
    probe.stage = NEXT_STEP
    label, expect = "training, next step: ", Expect(pristine, cots)
    calls = [
        Call("update", {k: step[k] for k in held + refilled}, label=label),
        Call("forward", given, label=label, expect=expect, raised=Kind.STALE, copied=False),
        Call("backward", cotangents=cots, label=label, raised=Kind.STALE),
        Call("read", given, expect=expect),
    ]
    drive(case, calls, probe, trace)
    if probe.failed and not _first_use_at(case, pristine, cots, found):
        return  # a fresh layer is wrong here too: a plain bug, for the first stage to find on its own
    if probe.failed:
        outs = trace.outs
        kept = outs is not None and all(unchanged(b, o) for b, o in zip(before, outs, strict=False))
        copied = (
            _copied(case, trace.instance, pristine, cots, outs, trace.result, found)
            if outs and not kept
            else []
        )
        if copied:
            for i, m in enumerate(probe.mismatches):
                probe.mismatches[i] = replace(
                    m, message=f"{m.message}; the layer holds a copy of {', '.join(copied)}"
                )
        found.adopt(probe, _later(case, Kind.PARAM_COPY if copied else Kind.STALE))


def _copied(
    case: Case,
    instance: Any,
    pristine: Mapping[str, Any],
    cots: tuple[Any, ...],
    outs: tuple[Any, ...],
    result: Any,
    found: Findings,
) -> list[str]:
    """The parameters whose in-place update the layer missed: with each one put back to the value it was
    built with (the others updated), the results match the reference."""
    row = case.row
    names = [a.name for a in row.held]
    for group in [[n] for n in names] + ([names] if len(names) > 1 else []):
        old = {**pristine, **{n: case.values[n] for n in group}}
        ref = case.reference(old, cots, instance)
        kept = found.child()
        reads = row.gradients(instance, result, old, case.grad_names) if result is not None else []
        if judge_outputs(case, outs, ref, kept) and judge_grads(
            case, [r for r in reads if r.arg.source == "return"], ref, old, cots, kept
        ):
            return group
    return []


def _fresh_forward(case: Case, values: Mapping[str, Any], found: Findings) -> bool:
    """A control: whether a fresh instance's forward returns on ``values`` (another batch)."""
    probe = found.child()
    return drive(case, use(values, None, "fresh: ")[:2], probe).done and not probe.failed


# ---- stage 4 ------------------------------------------------------------------------------------------------


def second_use(case: Case, first: FirstUse, found: Findings) -> None:
    """Forward A, forward B, backward B, backward A: A's gradients must come out as the first time."""
    row = case.row
    second = found.child(ignore=True)
    second.failed_checks = set(found.failed_checks)
    second.stage = SECOND_USE
    stateful, again = Kind.STATEFUL, "another instance's "
    # A's outputs are not judged (its first call was): the reference is read after its forward, from the
    # state that forward drew
    expect = Expect(case.values, case.cotangents, outputs=False, reference=None if row.capture else first.ref)
    used = Trace(calls=list(first.calls), instance=first.instance, values=dict(first.values))
    drive(case, [Call("forward", case.values, label="second ", expect=expect, raised=stateful)], second, used)
    # independent values, not -x: batch statistics and attention scores are the same for -x, and would
    # hide a cache that the two instances share
    inputs = {a.name for a in row.placed("forward", "keyword")}
    other = {
        k: v if k in inputs else snapshot(case.values[k])
        for k, v in moved(case, case.values, -0.5, 0.25).items()
    }
    b = [
        Call("build", other, label=again, raised=stateful, who="other"),
        Call("forward", label=again, raised=stateful, who="other"),
        Call(
            "backward", cotangents=shifted_cotangents(case, -1.0), label=again, raised=stateful, who="other"
        ),
    ]
    # one record of the calls of both instances, in the order they are made
    if used.outs is not None and drive(case, b, second, Trace(calls=used.calls)).done:
        calls = [
            Call("backward", cotangents=case.cotangents, label="second ", raised=stateful),
            Call("read", expect=expect),
        ]
        drive(case, calls, second, used)
    second.mismatches = [
        replace(
            m,
            kind=_later(case, Kind.STATEFUL) if m.kind in (Kind.VALUE, Kind.NAN) else m.kind,
            message=f"{m.check} is wrong on the second use of the same instance, interleaved with another "
            f"instance (forward A, forward B, backward B, backward A): {m.message}",
        )
        for m in second.mismatches
    ]
    found.adopt(second)


def run_stages(
    case: Case,
    found: Findings,
    seed: int,
    on_stage: Callable[[str], None] | None = None,
    allow: Callable[[FirstUse, Findings], float | None] | None = None,
) -> FirstUse | None:
    """Every stage in order, each only while the ones before found nothing new. ``allow`` sets aside the
    first use's documented deviations (``--allow epsilon``'s loss) before the later stages and returns the
    eps it accepted: every later stage then judges the loss against that very ``-log(y + eps)`` and every
    gradient against the exact reference, as on a layer with no deviation."""
    first = first_use(case, found)
    if first is None:
        return None
    if allow is not None and found.failed:
        eps = allow(first, found)
        if eps is not None:
            case = replace(case, epsilon=eps)
            first.ref = case.allowed(first.ref, case.values, first.instance)
    later: tuple[tuple[str, Callable[[], None]], ...] = (
        ("usual_calls", lambda: usual_calls(case, first, found, seed)),
        ("training", lambda: training(case, first, found)),
        ("second_use", lambda: second_use(case, first, found)),
    )
    for name, stage in later:
        if found.failed:
            break
        if on_stage is not None:
            on_stage(name)
        try:
            stage()
        except StateUnreadable as exc:  # a later forward left state the row cannot read
            _unreadable(found, exc)
    return first
