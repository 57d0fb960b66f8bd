"""What one example revealed: every failed check with its evidence, and the errors of the passed ones.

``Findings`` is the notebook the check stages write into. Its ``value`` method is the one comparison of an
output or gradient against the reference (shape, values with the row's subgradients at kinks, dtype); its
``call`` runs the layer's own code under the guard, so an exception, an exit or a hang becomes a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backprop.verify.guard import Guard
from backprop.verify.mismatch import Evidence, Mismatch
from backprop.verify.row import Arg, Row
from backprop.verify.runner import Expected
from backprop.verify.tolerances import Comparison, Tolerance, compare
from backprop.verify.vocabulary import Kind


@dataclass
class Measured:
    """Errors measured on one passing example, per checked quantity, and what the user should know."""

    errors: dict[str, tuple[float, float]] = field(default_factory=dict)
    convention: str = ""
    notes: list[str] = field(default_factory=list)


def as_array(value: Any) -> tuple[NDArray[Any] | None, str]:
    """``value`` as a NumPy array (JAX arrays, lists and NumPy scalars included), or None and why not."""
    try:
        arr = np.asarray(value)
        if arr.dtype == object:
            return None, f"is not numeric ({type(value).__name__})"
        arr.astype(np.float64)
    except Exception as exc:  # any __array__ may raise anything; the layer's value is simply unusable
        return None, f"is not a numeric array ({type(value).__name__}): {type(exc).__name__}: {exc}"
    return arr, ""


def unchanged(before: Any, after: Any) -> bool:
    """Whether ``after`` still equals the snapshot ``before`` (arrays by value, dtype and shape)."""
    if isinstance(before, np.ndarray):
        if not isinstance(after, np.ndarray):
            return False
        return (
            before.dtype == after.dtype
            and before.shape == after.shape
            and bool(np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))
        )
    if before is after:  # the same object: a scalar (a NaN loss too, though NaN != NaN) cannot have changed
        return True
    try:
        return bool(before == after)
    except Exception:  # an array-like whose comparison is not a bool: compare as arrays
        arr, _ = as_array(after)
        return arr is not None and bool(np.array_equal(np.asarray(before), arr))


def snapshot(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


@dataclass
class Findings:
    """Failed checks with their evidence; checks already known to fail (``ignore``) are set aside."""

    row: Row
    tol: Tolerance
    guard: Guard
    ignore: frozenset[tuple[str, str]] = frozenset()
    strict: bool = False
    mismatches: list[Mismatch] = field(default_factory=list)
    measured: Measured = field(default_factory=Measured)
    failed_checks: set[str] = field(default_factory=set)
    """Every check that failed, set aside or not: later stages do not judge them again."""
    stage: str = ""
    """The step being judged (``training: next step``), stamped on evidence that names no call."""
    log: list[Any] = field(default_factory=list)
    """The calls of the trace being driven (``stages.drive`` sets it): those that reproduce what is found."""
    failing: list[Any] = field(default_factory=list)
    """The calls that reproduce the findings: the log as it stood when the last one was added."""
    hang: list[Any] = field(default_factory=list)
    """The calls up to one that timed out, in whichever notebook it was made (shared with every child)."""

    @property
    def failed(self) -> bool:
        return bool(self.mismatches)

    def child(self, ignore: bool = False) -> Findings:
        """A fresh notebook for a probe or a sub-stage, judging by the same rules."""
        ignored = self.ignore if ignore else frozenset()
        return Findings(self.row, self.tol, self.guard, ignored, self.strict, hang=self.hang)

    def add(self, evidence: Evidence, message: str, **details: Any) -> None:
        if self.stage and not evidence.where:
            evidence = replace(evidence, where=self.stage)
        self.failed_checks.add(evidence.check)
        if (evidence.check, evidence.kind) in self.ignore:
            return
        self.mismatches.append(replace(evidence, message=message, **details))
        self.failing = list(self.log)

    def adopt(self, probe: Findings, kind: Kind | None = None) -> None:
        """A probe's findings as this notebook's, as ``kind`` (None: as they are; an exit or a hang keeps its
        own name), with the calls that reproduce them."""
        before = len(self.mismatches)
        for mismatch in probe.mismatches:  # one record: its worst element and arrays come along
            own = kind is None or mismatch.kind in (Kind.EXIT, Kind.TIMEOUT)
            self.add(mismatch if kind is None or own else replace(mismatch, kind=kind), mismatch.message)
        if len(self.mismatches) > before:
            self.failing = probe.failing

    def note(self, text: str) -> None:
        if text not in self.measured.notes:
            self.measured.notes.append(text)

    def call(self, what: str, fn: Callable[[], Any], raised: Kind = Kind.EXCEPTION) -> tuple[bool, Any]:
        """Run the layer's ``what`` (e.g. ``forward``); a failure of any kind becomes a finding, an exception
        one of kind ``raised`` (the stage's own: an exception only on a later use is that stage's finding,
        a cache from an earlier batch).

        Once a call has timed out, the layer is not called again, since each call of a layer that hangs
        would cost the whole time limit: the call fails with no finding of its own (``hung`` puts the
        timeout on record)."""
        if self.guard.timed_out is not None:
            return False, None
        outcome = self.guard.call(what, fn)
        if outcome.kind is not None:
            if outcome.kind == Kind.TIMEOUT:
                self.hang[:] = self.log
            kind = raised if outcome.kind == Kind.EXCEPTION else outcome.kind
            evidence, message = self._failed_call(what, kind, outcome.message)
            self.add(evidence, message)
            return False, None
        return True, outcome.value

    @staticmethod
    def _failed_call(what: str, kind: Kind, message: str) -> tuple[Evidence, str]:
        stage = what.split("(")[0].split()[-1]
        # the guard's message may name the call already ("backward() did not return within 3 s")
        text = message if message.startswith(what) else f"{what} {message}"
        return Evidence(stage, stage, kind, where=what), text

    def hung(self) -> bool:
        """Whether a call of the layer timed out. Its finding is then in this notebook, even when a probe
        that set its findings aside made the call, or the search had set that check aside: a hang ends the
        check, whatever else was found."""
        timed_out = self.guard.timed_out
        if timed_out is None:
            return False
        if not any(m.kind == Kind.TIMEOUT for m in self.mismatches):
            what, outcome = timed_out
            evidence, message = self._failed_call(what, Kind.TIMEOUT, outcome.message)
            self.failed_checks.add(evidence.check)
            self.mismatches.append(replace(evidence, message=message))
        self.failing = list(self.hang) or self.failing  # the program must hang where the check did
        return True

    def value(
        self,
        check: str,
        primal: str,
        ref: Expected,
        actual: Any,
        dtype: np.dtype[Any] | None,
        kind: Kind = Kind.VALUE,
        bounds: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
    ) -> bool:
        """Shape, values and dtype of one output or gradient against the reference; True when right.

        ``kind`` names a value mismatch (``stale`` in the training stage, ...); ``bounds`` are the valid
        subgradients: an element between them passes, with a note naming the convention chosen."""
        if check in self.failed_checks:
            return False
        arr = self._usable(check, primal, ref.value, actual)
        if arr is None:
            return False
        as_f64 = arr.astype(np.float64)
        judged = self._at_kinks(check, primal, ref.value, as_f64, bounds)
        if (
            dtype is not None
            and arr.dtype != dtype
            and not _wider_float(arr.dtype, dtype)
            and self._narrower_but_right(arr, ref.value, judged, ref)
        ):
            # right to the precision of its own, narrower dtype: the dtype is the one mistake
            return self._wrong_dtype(check, primal, arr, dtype)
        cmp = compare(ref.value, judged, self.tol, ref.terms, ref.native, ref.batched)
        if not cmp.ok and ref.native is None and ref.later is not None and self.tol.native:
            cmp = compare(ref.value, judged, self.tol, ref.terms, ref.native_run(), ref.batched)
        if not cmp.ok:
            self._values_differ(check, primal, ref.value, as_f64, cmp, kind)
            return False
        old = self.measured.errors.get(check, (0.0, 0.0))
        self.measured.errors[check] = (max(old[0], cmp.max_abs), max(old[1], cmp.max_rel))
        if dtype is not None and arr.dtype != dtype:
            if _wider_float(arr.dtype, dtype):
                # right, in a wider float (the book allocates float64 buffers): no precision is lost, so
                # training is unaffected; only memory and speed are
                self.note(
                    f"{check}: returned as {arr.dtype} for {dtype} input (values right); "
                    f"{arr.dtype} buffers or labels promote it, which costs memory, not correctness"
                )
                return True
            return self._wrong_dtype(check, primal, arr, dtype)
        return True

    def _usable(
        self, check: str, primal: str, expected: NDArray[np.float64], actual: Any
    ) -> NDArray[Any] | None:
        """``actual`` as an array of the expected shape, or None with the finding that says why not."""
        if actual is None:
            self.add(Evidence(check, primal, Kind.MISSING), f"{check} is None")
            return None
        arr, why = as_array(actual)
        if arr is None:
            self.add(Evidence(check, primal, Kind.TYPE), f"{check} {why}")
            return None
        if arr.shape != expected.shape:
            whose = f"the reference's {primal}" if primal == check else primal
            message = f"{check} has shape {arr.shape} but {whose} has shape {expected.shape}"
            evidence = Evidence(
                check, primal, Kind.SHAPE, expected_shape=expected.shape, actual_shape=arr.shape
            )
            self.add(evidence, message, expected_shape=expected.shape, actual_shape=arr.shape)
            return None
        return arr

    def _values_differ(
        self,
        check: str,
        primal: str,
        expected: NDArray[np.float64],
        actual: NDArray[np.float64],
        cmp: Comparison,
        kind: Kind,
    ) -> None:
        nonfinite = not np.isfinite(cmp.actual) and np.isfinite(cmp.expected)
        what = "is NaN or infinite where the reference is finite" if nonfinite else "values differ"
        shapes = (expected.shape, actual.shape)
        evidence = Evidence(check, primal, Kind.NAN if nonfinite else kind, expected, actual, *shapes)
        self.add(
            evidence,
            f"{what} (tolerance {self.tol.atol:g} + {self.tol.rtol:.3g} * magnitude)",
            expected_shape=expected.shape,
            actual_shape=actual.shape,
            index=cmp.index,
            worst_expected=cmp.expected,
            worst_actual=cmp.actual,
            max_abs=cmp.max_abs,
            max_rel=cmp.max_rel,
        )

    def _wrong_dtype(self, check: str, primal: str, arr: NDArray[Any], dtype: np.dtype[Any]) -> bool:
        self.add(
            Evidence(check, primal, Kind.DTYPE),
            f"{check} has dtype {arr.dtype} but {primal} has dtype {dtype}",
        )
        return False

    def _narrower_but_right(
        self, arr: NDArray[Any], expected: NDArray[np.float64], judged: NDArray[np.float64], ref: Expected
    ) -> bool:
        if arr.dtype.kind != "f" or arr.dtype.name not in self.row.tolerances:
            return False
        tol = self.row.tolerance(arr.dtype)
        native = expected.astype(arr.dtype).astype(np.float64)  # the truth rounded to that dtype
        return compare(expected, judged, tol, ref.terms, native, ref.batched).ok

    def _at_kinks(
        self,
        check: str,
        primal: str,
        expected: NDArray[np.float64],
        actual: NDArray[np.float64],
        bounds: tuple[NDArray[np.float64], NDArray[np.float64]] | None,
    ) -> NDArray[np.float64]:
        """``actual`` with every element that lies in the subdifferential at a kink replaced by the
        reference's choice, and a note saying which value the layer chose there (strict: unchanged)."""
        if bounds is None or self.strict:
            return actual
        left, right = bounds  # the gradient with the left and with the right one-sided derivative
        low, high = np.minimum(left, right), np.maximum(left, right)
        slack = self.tol.atol + self.tol.rtol * np.abs(high - low)
        at_kink = low != high
        inside = at_kink & (actual >= low - slack) & (actual <= high + slack)
        if self.row.subgradient_sum and np.any(inside):
            # each valid choice keeps the total: elementwise bounds alone would let a tie's dout be
            # given to every tied element at once
            total = self.tol.atol * expected.size + self.tol.rtol * float(
                np.sum(np.abs(expected) + high - low)
            )
            if abs(float(np.sum(actual)) - float(np.sum(expected))) > total:
                return actual
        differs = inside & (np.abs(actual - expected) > slack)
        if np.any(differs):
            share = np.unique(np.round((actual[differs] - left[differs]) / (right - left)[differs], 3))
            chosen = self.row.kink_note.format(t=share[0]) if share.size == 1 else "varying subgradients"
            reference = self.row.conventions[0] if self.row.conventions else "its own one-sided derivative"
            self.note(
                f"{check}: at the kink of {primal} your layer uses {chosen}; the reference uses {reference}. "
                "Both are valid subgradients (--strict makes this a failure)."
            )
        return np.where(inside, expected, actual)

    def not_aliased(
        self, check: str, primal: str, grad: Any, others: Mapping[str, Any], whose: str = "caller's "
    ) -> None:
        for name, other in others.items():
            if (
                isinstance(grad, np.ndarray)
                and isinstance(other, np.ndarray)
                and np.shares_memory(grad, other)
            ):
                message = f"{check} shares memory with the {whose}{name}; return a new array"
                self.add(Evidence(check, primal, Kind.ALIASED), message)


def _wider_float(got: np.dtype[Any], wanted: np.dtype[Any]) -> bool:
    """Whether ``got`` is a float type that holds every value of the float type ``wanted`` and more."""
    return got.kind == "f" and wanted.kind == "f" and got.itemsize > wanted.itemsize


def kink_bounds(
    row: Row, arg: Arg, values: Mapping[str, Any], cotangents: tuple[Any, ...], expected: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """The valid subgradients of ``arg``'s gradient, when the row declares them and kinks exist."""
    if row.subgradient is None:
        return None
    try:
        low, high = row.subgradient(values, cotangents, arg.grad, expected)
    except (ValueError, KeyError, IndexError):
        return None
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
