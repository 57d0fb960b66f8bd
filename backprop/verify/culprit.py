"""The culprit search (issue 20): the first wrong line of a failing layer's own forward or backward.

On the failing example, a fresh instance is built, called and differentiated once more (under a fixed
random state) under a line tracer (``sys.settrace``; it also runs on 3.12+, where ``sys.monitoring`` would
be faster) that sees only the layer's own code: frames whose file is not the standard library, an
installed package (NumPy) or the oracle itself. Each executed line's new or changed arrays (locals,
``self.`` attributes, one level into a list or dict, an array computed on the line and passed into one of
the layer's own functions, and what a function returns; the layer's forward and backward returns under
the row's names, ``out`` and ``dx``) are recorded, with an occurrence count for loops.

Each recorded array is matched to the row's nodes (``Node``: the right forward value and the right gradient
of the loss at each node of the book's graph): forward lines to values, backward lines to gradients (``dxc``
is the gradient at ``xc``), up to a reshape of the same size, a broadcast or a sum over broadcast axes (for
the node the variable is named after), a sign and a factor of the batch size N (the book's
BatchNormalization keeps ``dmu`` as minus the gradient at mu; learners hold ``y - t`` before ``/ N``).

The culprit is found by counterfactual repair: the earliest line, in execution order, not matched exactly
(unmatched, or matched only under a convention, a reshape or another node's name), such that putting a
right value in place of the array it assigned (its own node first; a convention swapped for another is no
repair) and running the rest of the layer's own code makes every checked output and gradient right. A line
before the bug changes nothing when repaired; the bug's line fixes everything. The repair must also work
on the example with a small ramp added (no coincidence of a shrunk example's zeros), and the line must read
no array that no node tells right or wrong (else the mistake may lie before it). Otherwise no line is
named, and a sentence says why: a right line is never named. ``simple_rule`` is the rule without repair
(the first unmatched line whose inputs all matched), kept to measure one against the other.

Imports no JAX at module level: the nodes and the reference are computed when a failure is searched.
"""

from __future__ import annotations

import ast
import linecache
import os
import re
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backprop.verify.findings import Findings
from backprop.verify.guard import Guard
from backprop.verify.mismatch import Culprit, Line, Located, Mark, Node
from backprop.verify.report import Example
from backprop.verify.row import Row
from backprop.verify.runner import Reference
from backprop.verify.runner import nodes as runner_nodes
from backprop.verify.stages import (
    Case,
    judge_grads,
    judge_outputs,
    other_random_state,
    ramped,
)
from backprop.verify.tolerances import Tolerance, compare

__all__ = ["Budget", "Judge", "Recording", "locate", "record", "simple_rule"]

Array = NDArray[np.float64]
NodesFn = Callable[[Row, Mapping[str, Any], tuple[Any, ...]], Iterable[Node]]
"""``nodes(row, values, cotangents)``: every node as a ``Node`` record (``runner.nodes``, compiled)."""


SEED = 20
"""The global random state every run of the search starts from, so a dropout mask is the same in each."""


@dataclass(frozen=True)
class Budget:
    """What one search may spend: seconds of repair runs, lines tried and candidate values per line."""

    seconds: float = 1.2
    total: float = 1.8
    """Seconds for the whole search but JAX's own time (the reference, the graph's nodes): every traced run
    and repair. The line tracer stops the layer's code once they are spent, so no run overruns it; the
    repairs stop, and the moved example is not recorded, when its run would."""
    lines: int = 24
    candidates: int = 8
    timeout: float | None = 10.0
    """The time limit of one call into the layer."""


# ---- which code is the layer's own ------------------------------------------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))
_SKIPPED = tuple(
    {
        os.path.abspath(p) + os.sep
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_paths().get(key))
    }
    | {_HERE + os.sep, os.path.join(os.path.dirname(os.path.dirname(_HERE)), "reference") + os.sep}
)
_own: dict[str, bool] = {}


def _is_own(filename: str) -> bool:
    """Whether a file holds the user's code: not the standard library, an installed package or the oracle."""
    held = _own.get(filename)
    if held is None:
        path = os.path.abspath(filename)
        held = _own[filename] = not filename.startswith("<") and not path.startswith(_SKIPPED)
    return held


# ---- recording --------------------------------------------------------------------------------------------


class _OutOfTime(BaseException):
    """Raised by the line tracer into the layer's code once the search's time is spent: a BaseException, so
    that a layer's own ``except Exception`` cannot swallow it."""


class _Clock:
    """The whole search's time limit, which the line tracer enforces on every line the layer runs, so that
    no run of a slow layer (a network's, an attention's) takes the search past it; the time JAX spends
    (the reference, the graph's nodes, a first compilation) is not counted."""

    def __init__(self) -> None:
        self.deadline = float("inf")

    @contextmanager
    def limited(self, seconds: float) -> Iterator[None]:
        outer, self.deadline = self.deadline, min(self.deadline, time.perf_counter() + seconds)
        try:
            yield
        finally:
            self.deadline = outer

    @contextmanager
    def paused(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.deadline += time.perf_counter() - began

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def check(self) -> None:
        if time.perf_counter() > self.deadline:
            raise _OutOfTime("the culprit search's time limit was reached")


_CLOCK = _Clock()
"""The running search's clock (one search at a time per process: a guard is not thread-safe either)."""


@dataclass
class Event:
    """One array a line assigned or changed: where, which variable, its occurrence, and a float64 copy."""

    index: int
    file: str
    line: int
    variable: str
    occurrence: int
    backward: bool
    value: Array = field(repr=False)
    matched: Match | None = None
    passed_to: str = ""
    """For an array computed on the line and passed straight into a function: that function's name."""
    top: bool = False
    """What the layer's method returns to the row (named ``dx``, ``out``): its shape is checked too."""
    run: int = 0
    """Which run of its function the line ran in (each call of a function of the layer's own is a run): a
    loop's lines share one, a sublayer's method called once per sublayer has one per call."""
    call: int = 0
    """Which call into the layer's own code, from outside it, the line ran in (each method the row calls)."""
    setup: bool = False
    """Recorded in a call the row makes before the checked one in the same step: a forward on the previous
    batch that sets a time layer's carried state, a network's forward on decoy inputs before
    ``gradient``. Its arrays are no node of the graph, and its lines are no suspects of their own."""


@dataclass(frozen=True)
class Match:
    """The node an array matched, whether its value or its gradient, and under which convention."""

    node: str
    grad: bool
    convention: str = ""
    """'' (as is), 'reshaped' (the same values in another shape: a shape can be the mistake), 'minus',
    'N times', 'minus N times', 'broadcast', 'unsummed', 'sliced' (one slice of the node along an axis,
    named with its index: a right value, though not always the one the line should hold)."""

    misnamed: bool = False
    """The array is named after another node (``dx`` holding the gradient at y): a copy-paste mistake."""

    @property
    def exact(self) -> bool:
        return self.convention == "" and not self.misnamed

    def label(self) -> str:
        what = f"the gradient at {self.node}" if self.grad else self.node
        if self.convention in ("", "broadcast", "reshaped", "sliced"):
            return what
        word, unsummed = (
            self.convention.removesuffix("unsummed").strip(),
            self.convention.endswith("unsummed"),
        )
        said = f"{word} {what}".strip()
        return f"{said}, not yet summed over broadcast axes" if unsummed else said


Key = tuple[str, int, str, int]
"""(file, line, variable, occurrence): one event, the same in every run of the same code."""


def _key(e: Event) -> Key:
    return (e.file, e.line, e.variable, e.occurrence)


@dataclass
class _Repair:
    values: dict[Key, Array]
    """The right value to put at each event: one, or every run of one line (a loop's)."""
    rebind: bool = False
    """Bind the value in the node's own shape rather than write it into the learner's array (whose shape
    may be the mistake)."""
    put: set[Key] = field(default_factory=set)
    failed: bool = False
    returned: Any = None
    """A repaired return value of the layer's method itself, which the driver hands on in its place."""

    @property
    def done(self) -> bool:
        return len(self.put) == len(self.values)

    @property
    def lines(self) -> frozenset[tuple[str, int]]:
        return frozenset((file, line) for file, line, _, _ in self.values)


_BACKWARD = re.compile(r"backward|gradient")
_FORWARD = re.compile(r"forward|predict|loss|__call__")


def _phase(frame: FrameType | None) -> bool:
    """Whether a line runs in the backward pass: the innermost of the layer's functions named as a pass."""
    while frame is not None:
        name = frame.f_code.co_name
        if _is_own(frame.f_code.co_filename):
            if _BACKWARD.search(name):
                return True
            if _FORWARD.search(name):
                return False
        frame = frame.f_back
    return False


_KINDS = "biuf"
"""Float arrays, and the masks and indices a layer keeps (``self.mask``, ``arg_max``): a mask can be the
mistake (a kink taken on the wrong side), and a graph may name it as a node."""


def _arrays(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """The float arrays (and floats) held under ``name``: the value, or one level into a list or dict."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in _KINDS:
            yield name, value
    elif isinstance(value, float) or (isinstance(value, np.generic) and value.dtype.kind in _KINDS):
        yield name, value  # a 0-d input's results are NumPy scalars (``x < 0`` is an np.bool_)
    elif isinstance(value, list | tuple) and len(value) <= 64:
        for i, item in enumerate(value):
            if isinstance(item, np.ndarray) and item.dtype.kind in _KINDS:
                yield f"{name}[{i}]", item
    elif isinstance(value, dict) and len(value) <= 64:
        for k, item in value.items():
            if isinstance(item, np.ndarray) and item.dtype.kind in _KINDS:
                yield f"{name}[{k!r}]", item


def _held(frame: FrameType) -> dict[str, Any]:
    """Every float array a frame's locals and its ``self`` hold, by the name the line would use."""
    found: dict[str, Any] = {}
    f_locals = frame.f_locals
    for name, value in f_locals.items():
        if name != "self":
            found.update(_arrays(name, value))
    me = f_locals.get("self")
    attrs = getattr(me, "__dict__", None)
    if isinstance(attrs, dict):
        for name, value in attrs.items():
            found.update(_arrays(f"self.{name}", value))
    return found


def _same(obj: Any, copy: Any) -> bool:
    if isinstance(obj, np.ndarray):
        return (
            isinstance(copy, np.ndarray)
            and obj.shape == copy.shape
            and bool(np.array_equal(obj, copy, equal_nan=True))
        )
    return bool(obj == copy or (obj != obj and copy != copy))


class _Tracer:
    """Records each line's changed arrays; in a repair run, puts the right value in at one event."""

    def __init__(
        self, repair: _Repair | None = None, tops: Mapping[bool, tuple[str, ...]] | None = None
    ) -> None:
        self.events: list[Event] = []
        self.tops = tops or {}
        """The names the row gives what the layer's forward (False) and backward (True) return: a returned
        array is recorded under its name (``dx``, ``out``)."""
        self.repair = repair
        self.count: dict[tuple[str, int, str], int] = {}
        self.last: dict[FrameType, int] = {}
        self.seen: dict[FrameType, dict[str, tuple[Any, Any]]] = {}
        self.returned: Any = None
        self.attrs: dict[tuple[int, str], tuple[Any, Any]] = {}
        """``self.`` attributes are shared by every frame of one object: a helper's change is its own."""
        self.calls = 0
        """How many calls into the layer's own code have begun from outside it (``Event.call``)."""
        self.entries: list[str] = []
        """The function each of those calls entered, in order."""
        self.runs: dict[FrameType, int] = {}
        """Each traced frame's run number (``Event.run``)."""

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event != "call" or not _is_own(frame.f_code.co_filename):
            return None
        _CLOCK.check()
        if self.repair is not None and self.repair.done:
            return None
        if self.repair is None:  # a repair run takes its baselines at the repaired lines alone (``_local``)
            self.seen[frame] = self._baseline(frame)
            self.runs[frame] = len(self.runs) + 1
        caller = frame.f_back
        if caller is None or not _is_own(caller.f_code.co_filename):
            self.calls += 1
            self.entries.append(frame.f_code.co_name)
        if caller is not None and caller in self.seen:
            self._arguments(frame, caller)
        return self._local

    def _arguments(self, frame: FrameType, caller: FrameType) -> None:
        """An array computed on the caller's line and passed straight into a function of the layer's own
        (``sum_to(-dout * x, shape)``) is that line's array: recorded at the caller's line, before anything
        the function does with it, so the helper's lines that only pass it on are not blamed for it."""
        code = frame.f_code
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        me = id(caller.f_locals.get("self"))
        known = {id(obj) for obj, _ in self.seen[caller].values()}
        known |= {id(obj) for (owner, _), (obj, _) in self.attrs.items() if owner == me}
        f_locals = frame.f_locals
        passed = [
            (name, obj)
            for arg in names
            if arg != "self" and arg in f_locals
            for name, obj in _arrays(arg, f_locals[arg])
            if id(obj) not in known
        ]
        if passed:
            at = (caller.f_code.co_filename, caller.f_lineno)
            self._emit(
                frame,
                at,
                [(name, obj, name) for name, obj in passed],
                _phase(caller),
                code.co_name,
                owner=caller,
            )

    def _baseline(self, frame: FrameType, *, refresh: bool = False) -> dict[str, tuple[Any, Any]]:
        """The frame's arrays as they are now (each with a copy): its own, returned, and its ``self``'s
        attributes, kept in ``attrs`` where no other frame has kept them already, or always with
        ``refresh``."""
        mine: dict[str, tuple[Any, Any]] = {}
        me = id(frame.f_locals.get("self"))
        for name, obj in _held(frame).items():
            entry = (obj, np.array(obj, copy=True) if isinstance(obj, np.ndarray) else obj)
            if not name.startswith("self."):
                mine[name] = entry
            elif refresh:
                self.attrs[(me, name)] = entry
            else:
                self.attrs.setdefault((me, name), entry)
        return mine

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        repair = self.repair
        if repair is not None and repair.done:
            return None
        _CLOCK.check()
        line = self.last.get(frame)
        file = frame.f_code.co_filename
        # a repair run looks only at the lines it repairs, with a baseline taken just before each: what
        # such a line changes is then what the recording saw it change, at a fraction of the cost
        if (
            line is not None
            and event in ("line", "return")
            and (repair is None or (file, line) in repair.lines)
        ):
            self._changes(frame, line, arg if event == "return" else None, event == "return")
        if event == "line":
            if repair is not None and (file, frame.f_lineno) in repair.lines:
                self.seen[frame] = self._baseline(frame, refresh=True)
            self.last[frame] = frame.f_lineno
        elif event == "return":
            self.last.pop(frame, None)
            self.seen.pop(frame, None)
        return self._local

    def _changes(self, frame: FrameType, line: int, returned: Any, returning: bool) -> None:
        held = _held(frame)
        mine = self.seen.setdefault(frame, {})
        me = id(frame.f_locals.get("self"))
        changed: list[tuple[str, Any, str]] = []
        for name, obj in held.items():
            where: dict[Any, tuple[Any, Any]] = self.attrs if name.startswith("self.") else mine
            slot: Any = (me, name) if name.startswith("self.") else name
            before = where.get(slot)
            if before is not None and before[0] is obj and _same(obj, before[1]):
                continue
            where[slot] = (obj, np.array(obj, copy=True) if isinstance(obj, np.ndarray) else obj)
            changed.append((name, obj, name))
        backward = _phase(frame)
        if returning and returned is not None and not any(obj is returned for obj in held.values()):
            self.returned = returned
            caller = frame.f_back
            top = caller is None or not _is_own(caller.f_code.co_filename)
            names = self.tops.get(backward, ()) if top else ()
            for name, obj in _arrays("return", returned):
                index = name[len("return[") : -1]
                # a tuple's element by position; a dict's (a network's gradient()) keeps its key
                at = 0 if name == "return" else int(index) if index.isdigit() else len(names)
                changed.append((names[at] if at < len(names) else name, obj, name))
        self._emit(frame, (frame.f_code.co_filename, line), changed, backward, top=returning)

    def _emit(
        self,
        frame: FrameType,
        at: tuple[str, int],
        changed: list[tuple[str, Any, str]],
        backward: bool,
        passed_to: str = "",
        top: bool = False,
        owner: FrameType | None = None,
    ) -> None:
        """Record each changed array, as (variable, array, where it is held), as an event of the line ``at``
        of ``owner``'s run (``frame``'s by default), or, in a repair run, repair it."""
        file, line = at
        run = self.runs.get(owner or frame, 0)
        for name, obj, held in changed:
            counted = (file, line, name)
            occurrence = self.count.get(counted, 0)
            self.count[counted] = occurrence + 1
            key = (file, line, name, occurrence)
            if self.repair is not None:
                if key in self.repair.values:
                    self._put(frame, held, obj, self.repair, key)
                continue
            value = np.array(obj, dtype=np.float64, copy=True)
            self.events.append(
                Event(
                    len(self.events),
                    file,
                    line,
                    name,
                    occurrence,
                    backward,
                    value,
                    passed_to=passed_to,
                    top=top and name in self.tops.get(backward, ()),
                    call=self.calls,
                    run=run,
                )
            )

    def _put(self, frame: FrameType, name: str, obj: Any, repair: _Repair, key: Key) -> None:
        """The right value in place of ``obj``: written into the array when it has the size, else bound to
        the name (a local through the frame, an attribute by setattr, a list or dict entry)."""
        repair.put.add(key)
        right = repair.values[key]
        fits = obj.shape == right.shape or (obj.size == right.size and not repair.rebind)
        # a view (``d = dout.reshape(...)``) is bound anew: written into, it would change what it views
        if isinstance(obj, np.ndarray) and fits and obj.flags.writeable and obj.base is None:
            obj[...] = right.reshape(obj.shape)
            return
        dtype = obj.dtype if isinstance(obj, np.ndarray | np.generic) else np.float64
        new: Any = np.asarray(right, dtype=dtype)
        if isinstance(obj, float) and new.size == 1:
            new = float(new.reshape(()))
        base, _, index = name.partition("[")
        holder: Any
        if base.startswith("self."):
            me, attr = frame.f_locals.get("self"), base[len("self.") :]
            if not index:
                setattr(me, attr, new)
                return
            holder = getattr(me, attr)
        elif base == "return":
            caller = frame.f_back
            if caller is not None and _is_own(caller.f_code.co_filename):
                repair.failed = True  # returned into the layer's own code: cannot be replaced from here
            elif not index:
                repair.returned = new
            else:
                returned = list(self.returned)
                returned[int(index[:-1])] = new
                repair.returned = type(self.returned)(returned)
            return
        else:
            if not index:
                frame.f_locals[base] = new  # written back to the frame when the trace function returns
                return
            holder = frame.f_locals[base]
        try:
            holder[ast.literal_eval(index[:-1])] = new
        except Exception:
            repair.failed = True


@contextmanager
def _tracing(tracer: _Tracer) -> Iterator[None]:
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(previous)


# ---- one run of the layer ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One fresh instance built, called and differentiated on the example under a tracer."""

    instance: Any = None
    values: dict[str, Any] = field(default_factory=dict)
    outs: tuple[Any, ...] | None = None
    result: Any = None
    backward: bool = False
    """Whether backward returned."""
    error: str = ""
    setup: set[int] = field(default_factory=set)
    """The calls made before the checked one of their step (``Event.setup``)."""


def _setup(entries: list[str], begun: int, ended: int, *, forward: bool) -> set[int]:
    """Of the calls ``begun + 1 .. ended`` into the layer's code (one step of the row's), those made before
    the checked one: in the forward step, a call of a method called again later (``forward(xs_prev)``
    before ``forward(xs)``); in the backward step, a forward pass before the backward one (a network's
    ``loss`` on decoy inputs before ``gradient``)."""
    calls = range(begun + 1, ended + 1)
    return {
        k
        for k in calls
        if any(
            (entries[j - 1] == entries[k - 1]) if forward else bool(_FORWARD.search(entries[k - 1]))
            for j in calls
            if j > k
        )
    }


def _run(case: Case, guard: Guard, tracer: _Tracer) -> Run:
    try:
        return _traced(case, guard, tracer)
    except _OutOfTime as exc:  # raised outside a call of the layer (a finaliser of its own, traced)
        return Run(error=str(exc))


def _traced(case: Case, guard: Guard, tracer: _Tracer) -> Run:
    row, run = case.row, Run()
    values, cots = case.fresh()
    run.values = values
    with other_random_state(SEED), _tracing(tracer):
        built = guard.call("constructor", lambda: row.build(case.layer, values))
        if built.kind is not None:
            run.error = built.message
            return run
        run.instance = built.value
        begun = tracer.calls
        out = guard.call("forward()", lambda: row.call(run.instance, values))
        run.setup = _setup(tracer.entries, begun, tracer.calls, forward=True)
        if out.kind is not None or out.value is None:
            run.error = out.message or "forward() returned None"
            return run
        run.outs = row.outputs_of(_handed_on(tracer, out.value))
        begun = tracer.calls
        back = guard.call("backward()", lambda: row.backward(run.instance, cots))
        run.setup |= _setup(tracer.entries, begun, tracer.calls, forward=False)
    if back.kind is not None:
        run.error = back.message
    else:
        run.backward, run.result = True, _handed_on(tracer, back.value)
    return run


def _handed_on(tracer: _Tracer, value: Any) -> Any:
    """``value``, or the repaired value the layer's method returned in its place."""
    repair = tracer.repair
    if repair is None or repair.returned is None:
        return value
    value, repair.returned = repair.returned, None
    return value


@dataclass(frozen=True)
class Judge:
    """How a run is judged: the checks set aside (already reported) and ``strict`` kinks, as the check was."""

    ignore: frozenset[tuple[str, str]] = frozenset()
    strict: bool = False


def _right(case: Case, run: Run, ref: Reference, guard: Guard, judge: Judge) -> bool:
    """Whether every output and gradient of the run is right (checks already set aside stay aside)."""
    if run.outs is None:
        return False
    found = Findings(case.row, case.row.tolerance(case.dtype), guard, judge.ignore, judge.strict)
    judge_outputs(case, run.outs, ref, found)
    if run.backward:
        reads = case.row.gradients(run.instance, run.result, run.values, case.grad_names)
        reads = [r for r in reads if r.arg.name in ref.grads]
        judge_grads(case, reads, ref, case.values, case.cotangents, found)
    elif case.row.differentiable:
        return False
    return not found.failed


# ---- matching ---------------------------------------------------------------------------------------------


def _loose(tol: Tolerance) -> Tolerance:
    # an intermediate array carries no magnitude of its summed terms: rounding is judged against its peak
    # alone, so the relative tolerance is widened (still far below a derivation bug's O(1) error)
    return replace(tol, rtol=16 * tol.rtol, native=0.0)


def _factors(n: int | None) -> list[tuple[float, str]]:
    out = [(1.0, ""), (-1.0, "minus")]
    if n is not None and n > 1:
        out += [(float(n), "N times"), (-float(n), "minus N times")]
    return out


def _close(target: Array, actual: Array, tol: Tolerance) -> bool:
    if not (np.isfinite(target).all() and np.isfinite(actual).all()):
        return False
    # with no terms and no native run, compare's bound is atol + rtol * peak on every element: an error past
    # it fails there too, which settles most of the thousands of node pairs a recording tries, cheaply
    if float(np.abs(actual - target).max(initial=0.0)) > tol.atol + tol.rtol * float(
        np.abs(target).max(initial=0.0)
    ):
        return False
    return compare(target, actual, tol).ok


def _sums_to(actual: Array, shape: tuple[int, ...]) -> Array | None:
    """``actual`` summed over the axes a broadcast of ``shape`` adds (leading axes, and axes of size 1)."""
    extra = actual.ndim - len(shape)
    if extra < 0:
        return None
    if any(s not in (1, a) for s, a in zip(shape, actual.shape[extra:], strict=True)):
        return None
    g = actual.sum(axis=tuple(range(extra))) if extra else actual
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return np.asarray(g.sum(axis=axes, keepdims=True) if axes else g)


def _fits(
    actual: Array, target: Array, tol: Tolerance, n: int | None, grad: bool, spread: bool = True
) -> str | None:
    """The convention under which ``actual`` holds ``target``, or None. ``spread``: also as a broadcast
    (a value) or before a sum over broadcast axes (a gradient), which only the array's own node may be:
    any array whose rows sum to a node's gradient would match it otherwise (the book's dxc sums to -dmu)."""
    if actual.size == target.size:
        shaped = target.reshape(actual.shape)
        for factor, word in _factors(n):
            if _close(factor * shaped, actual, tol):
                return word or ("" if actual.shape == target.shape else "reshaped")
        return None
    if actual.size == 0 or target.size == 0 or not spread:
        return None
    if not grad and actual.size > target.size:
        try:
            wide = np.broadcast_to(target, actual.shape)
        except ValueError:
            return None
        return "broadcast" if _close(wide, actual, tol) else None
    if grad and actual.size > target.size:
        summed = _sums_to(actual, target.shape)
        if summed is not None:
            for factor, word in _factors(n):
                if _close(factor * target, summed, tol):
                    return f"{word} unsummed".strip()
    return None


def _bare(variable: str) -> str:
    """The name a variable is written as, without ``self.``, an index or a trailing underscore."""
    name = variable.split("[")[0]
    return name[len("self.") :] if name.startswith("self.") else name


def _named(variable: str, backward: bool, nodes: Mapping[str, Node]) -> list[tuple[str, bool]]:
    """The (node, gradient?) a variable is named after: ``dvar`` -> the gradient at var, ``xc`` -> xc."""
    name = _bare(variable)
    out: list[tuple[str, bool]] = []
    if backward and name.startswith("d") and name[1:] in nodes:
        out.append((name[1:], True))
    if name in nodes:
        out.append((name, False))
    if out:
        return out  # the layer's own node of that name: a sublayer's node of the name is another one
    # a sublayer's node by its last name (``h_next`` of ``layers[1].h_next``): a loop's step, or a
    # network's layer, names its arrays as the layer alone does
    for node in nodes:
        last = node.rsplit(".", 1)[-1]
        if last == node:
            continue
        if backward and name.startswith("d") and last == name[1:]:
            out.append((node, True))
        elif last == name:
            out.append((node, False))
    return out


def _target(node: Node, grad: bool) -> Array | None:
    return node.grad if grad else node.value


def match(event: Event, nodes: Mapping[str, Node], tol: Tolerance, n: int | None) -> Match | None:
    """The node ``event``'s array matches, the named node first, then the rest in graph order."""
    named = _named(event.variable, event.backward, nodes)
    kinds = (True, False) if event.backward else (False,)
    others = [(name, grad) for grad in kinds for name in nodes if (name, grad) not in named]
    # a node of the very shape first: an array of zeros (a shrunk example's) matches every zero node
    others.sort(key=lambda node: getattr(_target(nodes[node[0]], node[1]), "shape", ()) != event.value.shape)
    for name, grad in named + others:
        target = _target(nodes[name], grad)
        if target is None:
            continue
        # an array passed into a helper has no name of its own: it may be any node's, spread or unsummed
        spread = (name, grad) in named or bool(event.passed_to)
        convention = _fits(event.value, target, tol, n, grad, spread)
        if convention is not None:
            return Match(name, grad, convention, misnamed=bool(named) and (name, grad) not in named)
    for name, grad in named + others:
        sliced = _slice_of(event.value, _target(nodes[name], grad), tol)
        if sliced is not None:
            return Match(f"{name}[{sliced}]", grad, "sliced")
    return None


def _slice_of(actual: Array, target: Array | None, tol: Tolerance) -> str | None:
    """Where ``actual`` is one slice of ``target`` along one axis (a time layer's ``xs[:, t, :]``, its
    ``dhs[:, t, :]``), written as an index (``:, 1``); else None. A slice of a right node is right."""
    if target is None or target.ndim != actual.ndim + 1 or actual.size < 2:
        return None  # a single element matches too many slices to tell
    for axis in range(target.ndim):
        if target.shape[:axis] + target.shape[axis + 1 :] != actual.shape:
            continue
        for i in range(target.shape[axis]):
            if _close(np.take(target, i, axis=axis), actual, tol):
                return ", ".join([":"] * axis + [str(i)] + [":"] * (target.ndim - axis - 1))
    return None


# ---- the two rules ----------------------------------------------------------------------------------------


@dataclass
class Recording:
    """The events of the recording run, matched, with what the run did."""

    events: list[Event]
    nodes: Mapping[str, Node]
    batch: int | None
    right: bool
    """Whether the traced run was right already (the failure shows only on a later call)."""
    error: str = ""
    inputs: frozenset[str] = frozenset()
    """The row's arguments: an input's value is no repair of an array computed from it, unless the array
    is named after it (``hr := hs`` on a shrunk example can fix a layer by coincidence)."""
    finals: dict[str, Array] = field(default_factory=dict)
    """What forward and backward must return, by the row's names (``out``; ``dx``): a graph may tap a
    node of an input's name in another shape (Affine's x, flattened), which a returned ``dx`` must not
    take as its shape."""
    seconds: float = 0.0
    """How long the traced run took."""


def _source(file: str, line: int) -> str:
    return linecache.getline(file, line).strip()


_IDENT = re.compile(r"self\.\w+|(?<![\w.])[A-Za-z_]\w*")


def _reads(source: str) -> set[str]:
    """The names a line reads (``self.xc`` as one name), from its syntax tree when it parses alone."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(_IDENT.findall(source.split("=", 1)[-1] if re.search(r"[^=!<>]=[^=]", source) else source))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and isinstance(node.ctx, ast.Load)
        ):
            names.add(f"self.{node.attr}")
        elif isinstance(node, ast.AugAssign):
            target = node.target
            if isinstance(target, ast.Name):
                names.add(target.id)
            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                names.add(f"self.{target.attr}")
    return names


def simple_rule(recording: Recording) -> Event | None:
    """The first unmatched event whose line reads only arrays that matched (names with no recorded array,
    such as a function's arguments, are taken as given)."""
    status: dict[str, bool] = {}
    for event in recording.events:
        if event.matched is None:
            reads = _reads(_source(event.file, event.line))
            if all(status.get(_bare(name) if name.startswith("self.") else name, True) for name in reads):
                return event
        status[_bare(event.variable) if event.variable.startswith("self.") else event.variable] = (
            event.matched is not None
        )
    return None


def _candidates(event: Event, recording: Recording, cap: int) -> list[tuple[Match, Array]]:
    """The right values to try for ``event``: what the row must be given first, for a returned array."""
    nodes = recording.nodes
    named = _named(event.variable, event.backward, nodes)
    out = [
        (m, v)
        for m, v in _node_candidates(event, nodes, recording.batch, 4 * cap)
        if m.grad
        or (m.node not in recording.inputs and re.split(r"[.\]]", m.node)[-1] not in recording.inputs)
        or (m.node, False) in named
    ]
    final = recording.finals.get(event.variable) if event.top else None
    if final is not None:
        node, grad = named[0] if named else (event.variable, event.backward)
        out = [(Match(node, grad), final), *out]
    return out[:cap]


def _node_candidates(
    event: Event, nodes: Mapping[str, Node], n: int | None, cap: int
) -> list[tuple[Match, Array]]:
    """Right values to put in place of ``event``'s array. An array that matches a node under a convention
    (a partial product ``y - t``, the book's negated ``dmu``) gets that node's plain value only: a
    convention swapped for another is no repair. An unmatched one gets the node named like its variable
    under every convention, then the other nodes of its size as they are."""
    held = event.matched
    if held is not None and held.convention != "sliced":
        plain = [] if held.convention == "" else [(held.node, held.grad)]  # as it is: no repair
        plain += [
            named
            for named in _named(event.variable, event.backward, nodes)
            if named != (held.node, held.grad)
        ]
        if held.convention == "reshaped":  # the same values laid out otherwise: a node of its very shape
            kinds = (True, False) if event.backward else (False,)
            plain += [
                (name, grad)
                for grad in kinds
                for name in nodes
                if (name, grad) not in plain
                and getattr(_target(nodes[name], grad), "shape", None) == event.value.shape
            ]
        targets = [(Match(name, grad), _target(nodes[name], grad)) for name, grad in plain]
        return [(m, v) for m, v in targets if v is not None][:cap]
    out: list[tuple[Match, Array]] = []
    named = _named(event.variable, event.backward, nodes)
    kinds = (True, False) if event.backward else (False,)
    others = [(name, grad) for grad in kinds for name in nodes if (name, grad) not in named]
    # the nearest first among nodes of one name (each step's ``h_next``)
    for name, grad in sorted(
        named, key=lambda ng: _distance(np.asarray(_target(nodes[ng[0]], ng[1])), event.value)
    ):
        target = _target(nodes[name], grad)
        if target is not None:
            out += [(Match(name, grad, word), factor * target) for factor, word in _factors(n)]
    sized = [
        (Match(name, grad), target)
        for name, grad in others
        if (target := _target(nodes[name], grad)) is not None and target.size == event.value.size
    ]
    # the nearest first: a mistake moves an array off its node (a term left out, a sign), seldom onto a
    # far one, and a large graph (a time layer's steps) has more nodes of one size than are tried
    sized.sort(key=lambda mv: _distance(mv[1], event.value))
    return (out + sized)[:cap]


def _distance(target: Array, actual: Array) -> float:
    """How far ``actual`` lies from ``target``, relative to their size (infinite where either is not finite,
    or the sizes differ)."""
    t, a = np.asarray(target, np.float64).reshape(-1), np.asarray(actual, np.float64).reshape(-1)
    if t.size != a.size:
        return float("inf")
    scale = float(np.abs(t).sum() + np.abs(a).sum())
    d = float(np.abs(t - a).sum())
    return d / scale if np.isfinite(d) and scale > 0 else (0.0 if d == 0 else float("inf"))


def _degenerate(value: Array) -> bool:
    """Whether every element is the same and, for a single one, a value many nodes take (0, 1, -1): a
    shrunk example's zeros, a 1 x 1 batch's unit std match any node of that one value."""
    if value.size == 0:
        return True
    first = value.reshape(-1)[0]
    if value.size == 1:
        return bool(first in (0.0, 1.0, -1.0))
    return bool(np.all(value == first))


def _chance(event: Event, nodes: Mapping[str, Node]) -> bool:
    """A match of a degenerate array to a node it is not named after (``self.running_mean = running_mean``
    matching beta, both zeros): a coincidence, not a sign the line is right."""
    m = event.matched
    if m is None or not _degenerate(event.value):
        return False
    return m.misnamed or (m.node, m.grad) not in _named(event.variable, event.backward, nodes)


def _tops(row: Row) -> dict[bool, tuple[str, ...]]:
    """What forward and backward return, by the names the row gives them (``out``; ``dx``, ``dy``)."""
    return {False: row.outputs, True: tuple(a.grad for a in row.read_from("return"))}


def record(
    case: Case, nodes: NodesFn, guard: Guard, judge: Judge = Judge()
) -> tuple[Recording, Reference | None]:
    """Run the layer once under the tracer and match every array it recorded to the nodes."""
    tracer = _Tracer(tops=_tops(case.row))
    began = time.perf_counter()
    run = _run(case, guard, tracer)
    seconds = time.perf_counter() - began
    if run.outs is None:
        said = run.error or "forward() did not return"
        return Recording([], {}, None, False, f"the layer could not be run again ({said})"), None
    try:
        with _CLOCK.paused():  # JAX's own time (a first compilation) is not the search's
            ref = case.reference(case.values, case.cotangents, run.instance)
    except Exception as exc:  # the state the reference needs cannot be read (a dropout mask that is wrong)
        return Recording([], {}, None, False, f"the reference cannot judge this run: {exc}"), None
    from backprop.verify.stages import with_capture

    values = with_capture(case.row, case.values, run.instance)
    with _CLOCK.paused():
        held = {node.name: node for node in nodes(case.row, values, case.cotangents)}
    n = case.row.batch_size(case.values)
    tol = _loose(case.row.tolerance(case.dtype))
    finals = {a.grad: ref.grads[a.name].value for a in case.row.read_from("return")}
    finals |= {name: out.value for name, out in zip(case.row.outputs, ref.outputs, strict=True)}
    for event in tracer.events:
        event.setup = event.call in run.setup
        event.matched = match(event, held, tol, n)
        final = finals.get(event.variable) if event.top else None
        if final is not None and final.shape != event.value.shape and event.matched is not None:
            event.matched = replace(event.matched, convention="reshaped")  # a wrong shape: the mistake
        if event.matched is not None and _chance(event, held):
            event.matched = None
    right = _right(case, run, ref, guard, judge)
    inputs = frozenset(a.name for a in case.row.args)
    return Recording(tracer.events, held, n, right, run.error, inputs, finals, seconds), ref


# ---- the search -------------------------------------------------------------------------------------------


_POSITION = re.compile(r"\[\d+\]$")


def _positional(event: Event) -> bool:
    """An element of a tuple or list held by position (``self.cache[3]``): its value may be a right node's
    while its position is not the one the code unpacks it from, which no match checks."""
    return not event.variable.startswith("return") and bool(_POSITION.search(event.variable))


def _shown_right(e: Event) -> bool:
    """Whether a line is shown as right: its array is the node's value as it stands (reshaped or broadcast at
    most). A match under a sign or a scale (the book's negated ``dmu``, ``y - t`` before ``/ N``) is not
    shown as right: a sign or a factor of N = 2 can be the very bug."""
    m = e.matched
    return m is not None and not m.misnamed and m.convention in ("", "broadcast") and not _positional(e)


def _marks(events: list[Event], culprit: Event | None) -> tuple[Line, ...]:
    lines: dict[tuple[str, int], Line] = {}
    for e in events:
        at = (e.file, e.line)
        mark: Mark = (
            "culprit"
            if culprit is not None and at == (culprit.file, culprit.line)
            else ("right" if _shown_right(e) else "unmatched")
        )
        held = lines.get(at)
        if held is None:
            lines[at] = Line(
                e.file,
                e.line,
                _source(e.file, e.line),
                mark,
                e.variable,
                e.matched.label() if _shown_right(e) and e.matched is not None else "",
            )
        elif held.mark == "right" and mark == "unmatched":
            lines[at] = replace(held, mark="unmatched", variable=e.variable, node="")
    return tuple(lines.values())


def _culprit(
    event: Event, right: Match, value: Array, before: list[Event], shown: Recording | None = None
) -> Culprit:
    """The culprit record of ``event``; its two values are ``shown``'s (the printed example's) when the
    search ran on another example and the printed one holds the same array and node."""
    expected: Array | None = np.asarray(value, np.float64)
    actual: Array | None = event.value
    if shown is not None:
        same = next((e for e in shown.events if _key(e) == _key(event)), None)
        there = _value_of(right, shown.nodes, shown.batch)
        fits = same is not None and there is not None and there.size == same.value.size
        # the printed example's own two arrays, or none: values of another example would not be its own
        expected, actual = (there, same.value) if fits and same is not None else (None, None)
    reads = _reads(_source(event.file, event.line))
    fine = [e.variable for e in before if _shown_right(e)]
    named = [v for v in dict.fromkeys(fine) if v in reads or _bare(v) in {_bare(r) for r in reads}]
    before_right = named or list(dict.fromkeys(fine))[-4:]
    return Culprit(
        event.file,
        event.line,
        _source(event.file, event.line),
        f"{event.variable} (passed to {event.passed_to})" if event.passed_to else event.variable,
        right.label(),
        expected=expected,
        actual=actual,
        right=tuple(dict.fromkeys(_bare(v) for v in before_right)),
    )


def _variant(case: Case) -> Case:
    """The example with a small ramp added to every float input and cotangent (a loss's dout of 0
    made 0.5): a repair that fixes the layer by coincidence on a shrunk example (zeros, equal logits) does not
    fix it here, while the magnitudes (an overflow) stay."""
    phases = {a.name: i for i, a in enumerate(case.row.differentiable)}
    # each array its own phase: inputs and cotangents shrunk to zeros of one shape must not come out
    # equal, or one would match the other's node by chance
    values = {
        k: ramped(v, lone=0.375 + phases[k] / 32, phase=phases[k]) if k in phases else v
        for k, v in case.values.items()
    }
    if case.row.loss:  # a loss's dout as it was (a learner's dx before `* dout` is right at 1), unless 0
        cots = tuple(0.5 if float(c) == 0 else c for c in case.cotangents)
    else:
        k = len(phases)
        cots = tuple(
            ramped(np.asarray(c), lone=0.375 + (k + i) / 32, phase=k + i)
            for i, c in enumerate(case.cotangents)
        )
    return replace(case, values=case.row.complete(values), cotangents=cots)


def _value_of(right: Match, nodes: Mapping[str, Node], n: int | None) -> Array | None:
    """The value of ``right`` (a node, under a convention) among ``nodes``."""
    node = nodes.get(right.node)
    target = None if node is None else _target(node, right.grad)
    factors = dict((word, factor) for factor, word in _factors(n))
    if target is None or right.convention not in factors:
        return None
    return np.asarray(factors[right.convention] * target)


@dataclass
class _Confirm:
    """The same repair on a second example, computed when a first repair works."""

    case: Case
    nodes: NodesFn
    guard: Guard
    judge: Judge
    held: list[tuple[Recording, Reference | None]] = field(default_factory=list)

    def constant(self, event: Event) -> bool:
        """Whether ``event``'s array is the same on the variant: it does not depend on the inputs (one-hot
        labels, a constant), so no node is needed to know it is right."""
        if not self.held:
            return False
        for other in self.held[0][0].events:
            if _key(other) == _key(event):
                return other.value.shape == event.value.shape and bool(
                    np.array_equal(other.value, event.value)
                )
        return False

    def __call__(self, group: list[tuple[Event, Match]]) -> bool:
        """Whether the repair of ``group`` (each event with its node) makes the moved example right too."""
        if not self.held:
            variant = _variant(self.case)
            try:
                self.held.append((*record(variant, self.nodes, self.guard, self.judge),))
            except Exception:  # the reference cannot take the moved values: nothing to confirm on
                self.held.append((Recording([], {}, None, True), None))
        recording, ref = self.held[0]
        if ref is None or recording.right:
            # the layer is right there (or cannot run there): a repair that cannot be confirmed on a
            # second example may be a coincidence of the first (a dout of 0 hides any dx), so none is named
            return False
        values: list[tuple[Event, Match, Array]] = []
        for event, right in group:
            final = recording.finals.get(event.variable) if event.top else None
            value = _value_of(right, recording.nodes, recording.batch)
            if final is not None and right.convention == "":
                value = final
            if value is None:
                return False
            values.append((event, right, value))
        return _repaired(_variant(self.case), self.guard, ref, self.judge, values)


def _taken(event: Event, right: Match, events: list[Event]) -> bool:
    """Whether another run of ``event``'s line holds ``right``'s node as it stands (a sublayer's method
    whose first call returned the gradient at ``h``): put into this run as well, the node would be two
    runs' value, which no right code makes it; such a repair hides a mistake of the caller's (``=`` for
    ``+=``) behind a line that is right."""
    return any(
        e is not event
        and (e.file, e.line, e.variable) == (event.file, event.line, event.variable)
        and e.matched is not None
        and e.matched.exact
        and (e.matched.node, e.matched.grad) == (right.node, right.grad)
        for e in events
    )


def _repaired(
    case: Case, guard: Guard, ref: Reference, judge: Judge, group: list[tuple[Event, Match, Array]]
) -> bool:
    """Whether the layer, run with each event of ``group`` given its right value, comes out right."""
    event = group[0][0]
    reshaped = event.top or (event.matched is not None and event.matched.convention == "reshaped")
    repair = _Repair({_key(e): np.asarray(v, np.float64) for e, _, v in group}, rebind=reshaped)
    run = _run(case, guard, _Tracer(repair, _tops(case.row)))
    return repair.done and not repair.failed and _right(case, run, ref, guard, judge)


_STEP = re.compile(r"\[(\d+)\]")
"""The first index of a node's path (``layers[2].h_next``): which step or layer of a loop it belongs to."""


def _family(node: str) -> tuple[str, int] | None:
    """A node's path with its first index taken out, and that index; None for a node of no loop."""
    found = _STEP.search(node)
    if found is None:
        return None
    return node[: found.start()] + "[*]" + node[found.end() :], int(found.group(1))


def _siblings(event: Event, right: Match, recording: Recording) -> list[tuple[Event, Match, Array]] | None:
    """The other runs of ``event``'s line (a loop's) that are not right as they stand, each with the node of
    ``right``'s family for its own step: the step follows the runs in order, as a run that matched its
    node as it stands shows (the book's time layers run backward from the last step); else the nearest
    node of the family. None when the line ran once, ``right`` is no node of a loop, or a run has no node."""
    family = _family(right.node)
    if family is None:
        return None
    path, index = family
    # one run of the function only: a loop's; a sublayer's method called once per sublayer is not a loop
    # of the layer's (set right on every sublayer, it would hide the caller's mistake, ``=`` for ``+=``)
    runs = [
        e
        for e in recording.events
        if (e.file, e.line, e.variable, e.run) == (event.file, event.line, event.variable, event.run)
    ]
    step = 0
    for e in runs:
        m = e.matched
        mine = None if m is None or not m.exact or m.grad != right.grad else _family(m.node)
        if mine is not None and mine[0] == path and e.occurrence != event.occurrence:
            step = (index - mine[1]) // (event.occurrence - e.occurrence)
            break
    members = {
        i: name
        for name in recording.nodes
        if (f := _family(name)) is not None and f[0] == path and (i := f[1]) >= 0
    }
    out: list[tuple[Event, Match, Array]] = []
    for e in runs:
        if e is event or (e.matched is not None and e.matched.exact):
            continue
        if step:
            name = members.get(index + step * (e.occurrence - event.occurrence))
            if name is None:
                continue  # a step past the graph's ends (the last step's dc_next, 0): left as it is
        else:
            sized = [
                n
                for n in members.values()
                if getattr(_target(recording.nodes[n], right.grad), "size", -1) == e.value.size
            ]
            name = min(
                sized,
                key=lambda n: _distance(np.asarray(_target(recording.nodes[n], right.grad)), e.value),
                default=None,
            )
        its = None if name is None else Match(name, right.grad, right.convention)
        value = None if its is None else _value_of(its, recording.nodes, recording.batch)
        if its is None or value is None or value.size != e.value.size:
            return None
        out.append((e, its, value))
    return out


def _origin(event: Event, events: list[Event]) -> Event:
    """Where ``event``'s array was made: the return line of the layer's own function whose result the line
    only binds (``dx = self._train_dx(dxn)``), else the event itself."""
    # the events just before it: the line's own (a tuple returned: ``return dx, self._dc_prev(ds, f)``),
    # then the helper's return, each element of a returned tuple (``return dh, dc``)
    returned: tuple[str, int] | None = None
    for j in range(event.index - 1, max(event.index - 16, 0) - 1, -1):
        before = events[j]
        if (before.file, before.line) == (event.file, event.line):
            continue
        if not before.variable.startswith("return") or returned not in (None, (before.file, before.line)):
            break
        returned = (before.file, before.line)
        if before.value.shape == event.value.shape and bool(
            np.array_equal(before.value, event.value, equal_nan=True)
        ):
            return replace(before, matched=event.matched)
    return event


def _unknown_inputs(event: Event, recording: Recording, confirmed: _Confirm) -> list[str]:
    """The arrays the culprit's line reads whose rightness is not known: unmatched and named after no node
    (so no repair could test them) and changing with the inputs; unmatched though named after a node, or
    holding another node's value (wrong already); or matched on the example but not on the moved one (a
    match by chance). A repair of a later line fixes any mistake made before it, so a line reading such
    an array may not be the first wrong one."""
    latest = _latest(recording.events[: event.index])
    moved: dict[str, Event] = {}
    if confirmed.held:
        for i, other in enumerate(confirmed.held[0][0].events):
            if _key(other) == _key(event):
                moved = _latest(confirmed.held[0][0].events[:i])
                break
        else:
            moved = {}
    unknown = []
    for name in sorted(_reads(_source(event.file, event.line))):
        e = latest.get(_bare(name))
        if e is None:
            continue
        again = moved.get(_bare(name))
        if again is not None and again.matched is not None and _known(again.matched):
            continue  # right on the moved example, where a shrunk example's zeros and ones are gone
        named = [
            (node, grad)
            for node, grad in _named(e.variable, e.backward, recording.nodes)
            if getattr(_target(recording.nodes[node], grad), "size", -1) == e.value.size
        ]  # a one-hot ``self.t`` is named after the labels t, but cannot be compared with them
        if e.matched is None and not named and confirmed.constant(e) and not _degenerate(e.value):
            continue  # the same on both examples (one-hot labels): no node is needed to know it
        unknown.append(name)
    return unknown


def _known(m: Match) -> bool:
    """Whether a matched array read by a line is known right: not named after another node, unless its node
    is a loop's (a time layer's ``dh`` is the gradient at ``h`` on the first step and at
    ``layers[t].h_prev`` on the others: the code names one variable, the graph each step's node)."""
    return not m.misnamed or _family(m.node) is not None


def _latest(events: list[Event]) -> dict[str, Event]:
    latest: dict[str, Event] = {}
    for earlier in events:
        latest[_bare(earlier.variable)] = earlier
    return latest


def _control(case: Case, guard: Guard, ref: Reference, judge: Judge) -> bool:
    """Whether the layer, run again with no repair, comes out right: then a repair proves nothing."""
    idle = _Repair({("", 0, "", 0): np.zeros(())})
    return _right(case, _run(case, guard, _Tracer(idle, _tops(case.row))), ref, guard, judge)


def _conventional(event: Event) -> bool:
    """An array the layer keeps under one of the book's conventions (minus, N times), not returned: its
    repair to the plain value works when a later line expects the plain value, and which of the two lines
    is wrong no value can tell."""
    m = event.matched
    return m is not None and not event.top and m.convention in ("minus", "N times", "minus N times")


def _returned(event: Event, recording: Recording) -> bool:
    """Whether ``event`` sets, for the last time, an array named as what the layer returns (``dx``): a
    convention there is no convention but the result."""
    return event.variable in recording.finals and not any(
        e.variable == event.variable and e.backward == event.backward
        for e in recording.events[event.index + 1 :]
        if not e.top
    )


def _ambiguous(event: Event) -> str:
    label = event.matched.label() if event.matched is not None else ""
    return (
        f"line {event.line} of {os.path.basename(event.file)} ({_source(event.file, event.line)}) holds "
        f"{label}, a convention the book uses; a line reading it expects the plain value: either may be "
        "the wrong one, so no line is named"
    )


def _upstream(event: Event, unknown: list[str]) -> str:
    return (
        f"line {event.line} of {os.path.basename(event.file)} ({_source(event.file, event.line)}), set "
        f"right, makes the layer right, but it reads {', '.join(unknown)}, which the graph's nodes do not "
        "show right on both examples: the mistake may be before it, so no line is named"
    )


def _kept(event: Event, events: list[Event]) -> bool:
    """Whether ``event``'s array keeps its shape to the end: what the layer returns, or an attribute's last
    value. A local, or an attribute overwritten later, may be reshaped by a later line: a value put there
    in another layout would make that later line's mistake (a reshape where a transpose is due) come out
    right, so no repair may change its layout."""
    if event.top:
        return True
    if not event.variable.startswith("self."):
        return False
    return not any(
        _bare(e.variable) == _bare(event.variable) and e.backward == event.backward
        for e in events[event.index + 1 :]
    )


def _suspect(event: Event, events: list[Event]) -> bool:
    """Whether a line may be the culprit: not matched exactly."""
    m = event.matched
    return m is None or not m.exact


def search(
    case: Case,
    recording: Recording,
    ref: Reference,
    guard: Guard,
    budget: Budget,
    nodes: NodesFn,
    judge: Judge = Judge(),
    shown: Recording | None = None,
) -> Located:
    """The earliest line whose repair makes every output and gradient right (``Located``), on the example
    and on a moved one, within ``budget.total`` less the traced run's own time. ``shown``: the recording of
    the printed example, when ``case`` is another one, whose values the culprit shows."""
    confirmed = _Confirm(case, nodes, guard, judge)
    events = recording.events
    # a line's first suspect run only: a loop's later runs of it are repaired with it (``_siblings``)
    firsts: dict[tuple[str, int, str], Event] = {}
    for e in events:
        if _suspect(e, events) and not e.setup:
            firsts.setdefault((e.file, e.line, e.variable), e)
    suspects = list(firsts.values())
    repaired_at: Event | None = None
    now = time.perf_counter()
    recorded = recording.seconds  # what the moved example's recording will cost
    # the first search of a process also pays JAX's import and the graph's compilation: not counted
    deadline = now + min(budget.seconds, max(budget.total - recorded, budget.seconds / 4))
    out_of_time = False
    tried = 0
    for event in suspects:
        if tried >= budget.lines:
            break
        # another layout may be put only where the shape is kept, or where the array holds its node's values
        # in another shape (then its shape is the mistake)
        kept = _kept(event, events) or (event.matched is not None and event.matched.convention == "reshaped")
        for right, value in _candidates(event, recording, budget.candidates):
            if time.perf_counter() > deadline or _CLOCK.left() <= 0:
                out_of_time = True
                break
            if not kept and np.shape(value) != event.value.shape and np.size(value) == event.value.size:
                continue  # another layout in an array a later line may reshape (see ``_kept``)
            if np.shape(value) == event.value.shape and bool(np.array_equal(value, event.value)):
                continue  # the array as it was: no repair (a run that comes out right so is no proof)
            if (
                event.matched is None
                and _degenerate(event.value)
                and (right.node, right.grad) not in _named(event.variable, event.backward, recording.nodes)
            ):
                continue  # zeros set to another node's value (a bias made a batch mean): a coincidence
            if (
                event.matched is None
                and bool(np.isin(event.value, (0.0, 1.0)).all())
                and (right.node, right.grad) not in _named(event.variable, event.backward, recording.nodes)
            ):
                continue  # a one-hot or a mask of no node's name (labels made one-hot) set to a node's value
            if _taken(event, right, events):
                continue  # another run of the line is that node already: one node has one value
            if not tried or repaired_at is not event:
                tried, repaired_at = tried + 1, event  # the lines given a repair run count, not skipped ones
            group = [(event, right, np.asarray(value, np.float64))]
            if not _repaired(case, guard, ref, judge, group):
                # a line run once per step of a loop (a time layer's, a network's layers) is wrong on
                # every step: each run is put right, with its own node of the same family
                group += _siblings(event, right, recording) or []
                if len(group) == 1 or time.perf_counter() > deadline:
                    continue
                if not _repaired(case, guard, ref, judge, group):
                    continue
            if not confirmed.held and time.perf_counter() + recorded > deadline + budget.seconds / 4:
                out_of_time = True  # the moved example's recording would overrun the budget
                break
            if confirmed([(e, m) for e, m, _ in group]) and not _control(case, guard, ref, judge):
                if _conventional(event) and not _returned(event, recording):
                    return Located(None, _marks(events, None), _ambiguous(event))
                made = _origin(event, events)
                while (deeper := _origin(made, events)) is not made:  # a helper's helper
                    made = deeper
                unknown = _unknown_inputs(event, recording, confirmed)
                if made is not event:  # the helper's return line must read right arrays too
                    unknown += [u for u in _unknown_inputs(made, recording, confirmed) if u not in unknown]
                if unknown:
                    return Located(None, _marks(events, None), _upstream(made, unknown))
                found = _culprit(made, right, value, events[: made.index], shown)
                return Located(found, _marks(events, made))
        if out_of_time:
            break
    if out_of_time:
        note = f"no line was found within the search's {budget.total:g} s: no line is named"
    elif not suspects:
        note = (
            "every array the layer's own code assigned matches a node of the graph, yet the result is wrong"
        )
    else:
        note = (
            "no single line of the layer's own code, set to a right value, makes the result right: "
            "its code does not follow the graph's nodes closely enough to name a line"
        )
    return Located(None, _marks(events, None), note)


def locate(
    row: Row,
    layer: type,
    example: Example,
    *,
    nodes: NodesFn = runner_nodes,
    grad_names: Mapping[str, str] | None = None,
    judge: Judge = Judge(),
    budget: Budget = Budget(),
) -> Located:
    """The first wrong line of ``layer``'s own code on ``example`` (a failing one), or None and why.

    Runs the layer again (a fresh instance: build, forward, backward with the example's cotangents, under
    a fixed random state) once to record, and once per repair tried, within ``budget``."""
    case = Case(
        row, layer, dict(example.values), example.cotangents, np.dtype(example.dtype), grad_names or {}
    )
    with Guard(budget.timeout) as guard, _CLOCK.limited(budget.total):
        recording, ref = record(case, nodes, guard, judge)
        if ref is None:
            return Located(None, (), f"no line is named: {recording.error}")
        if not recording.events:
            return Located(None, (), "no line of the layer's own code assigned an array to trace")
        if recording.right:
            return Located(
                None,
                _marks(recording.events, None),
                "the layer is right on its first call here: the mistake shows only on a later call, "
                "which the culprit search does not replay",
            )
        moved = _moved(case, nodes, guard, judge)
        if moved is not None:
            # a shrunk example's zeros and ones match many nodes or none (a degenerate array is no
            # evidence): the search runs where the values differ, and the culprit shows the printed ones
            found = search(*moved, guard, budget, nodes, judge, shown=recording)
            if found.culprit is not None or _CLOCK.left() <= 0:
                return found
            # else the shrunk example, in the time left: a repair there may need no moved values
        if not any(e.matched is not None for e in recording.events):
            return Located(
                None,
                _marks(recording.events, None),
                "no array the layer's own code assigned matches a node of the graph: its code is too unlike "
                "the graph to name a line",
            )
        return search(case, recording, ref, guard, budget, nodes, judge)


def _moved(
    case: Case, nodes: NodesFn, guard: Guard, judge: Judge
) -> tuple[Case, Recording, Reference] | None:
    """The example moved off its shrunk values (``_variant``), recorded, when the layer is wrong there too
    and some array matches a node; else None."""
    moved = _variant(case)
    try:
        recording, ref = record(moved, nodes, guard, judge)
    except Exception:  # the reference cannot take the moved values
        return None
    if ref is None or recording.right or not any(e.matched is not None for e in recording.events):
        return None
    return moved, recording, ref
