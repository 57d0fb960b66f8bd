"""Diagnosis for learners: classify a mismatch and explain it in one plain sentence, with a hint.

The codes are a fixed vocabulary that CI can act on (``CODES``). Classification looks only at the
numbers: the manual gradient against ``jax.vjp``, the primal's shape, the row's declared kinks, and,
for ``ignores_dout``, one more run of the layer with a cotangent of ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backprop.verify.registry import Row
from backprop.verify.tolerances import Tolerance, compare

CODES = (
    "scale",
    "sign",
    "transpose",
    "ignores_dout",
    "unbroadcast",
    "shape",
    "in_place",
    "kink",
    "overflow",
    "other",
)


@dataclass(frozen=True)
class Diagnosis:
    code: str
    sentence: str
    hint: str


@dataclass(frozen=True)
class Evidence:
    """What the oracle saw for one failing output or gradient."""

    check: str
    primal: str
    kind: str
    expected: NDArray[np.float64] | None = None
    actual: NDArray[np.float64] | None = None
    expected_shape: tuple[int, ...] | None = None
    actual_shape: tuple[int, ...] | None = None


def _close(a: NDArray[np.float64], b: NDArray[np.float64], tol: Tolerance) -> bool:
    return a.shape == b.shape and compare(b, a, tol).ok


def _batch(row: Row, values: dict[str, Any]) -> int | None:
    """The batch size N: the leading axis of the first forward input."""
    for arg in row.of_kind("input"):
        shape = np.shape(values[arg.name])
        if shape:
            return int(shape[0])
    return None


def _factor(a: NDArray[np.float64], e: NDArray[np.float64], tol: Tolerance) -> float | None:
    """The constant c with a == c * e, when there is one."""
    denom = float(np.sum(e * e))
    if denom == 0 or not np.all(np.isfinite(a)):
        return None
    c = float(np.sum(a * e)) / denom
    return c if _close(a, c * e, tol) else None


def _factor_sentence(check: str, c: float, batch: int | None) -> Diagnosis:
    if batch is not None and batch > 1 and np.isclose(c, batch):
        return Diagnosis(
            "scale",
            f"{check} is {c:g} times too large, exactly the batch size N = {batch}.",
            "Divide by the batch size: the loss is a mean over the batch, so its gradient carries 1/N.",
        )
    if batch is not None and batch > 1 and np.isclose(c, 1 / batch):
        return Diagnosis(
            "scale",
            f"{check} is {batch} times too small, exactly 1/batch size (N = {batch}).",
            "The batch size is divided out once too often, or a sum over the batch was replaced by a mean.",
        )
    return Diagnosis(
        "scale",
        f"{check} is off by a constant factor: it is {c:.6g} times the correct gradient.",
        "Look for a stray constant in the derivative (a 2 from a square, a 1/2 that was dropped).",
    )


def _at_kinks(row: Row, ev: Evidence, values: dict[str, Any], tol: Tolerance) -> str | None:
    """The kink value, when every element that differs sits on one of the primal's declared kinks."""
    arg = next((a for a in row.args if a.name == ev.primal), None)
    if arg is None or not arg.kinks or ev.actual is None or ev.expected is None:
        return None
    x = np.asarray(values[ev.primal])
    if x.shape != ev.actual.shape:
        return None
    scale = float(np.max(np.abs(ev.expected), initial=0.0))
    wrong = np.abs(ev.actual - ev.expected) > tol.atol + tol.rtol * scale
    for kink in arg.kinks:
        if np.any(wrong) and np.all(x[wrong] == kink):
            return f"{ev.primal} == {kink:g}"
    return None


_OTHER = {
    "exception": (
        "{check}() raised an exception on this example.",
        "Run the snippet below to see the traceback.",
    ),
    "arity": (
        "{check}() returned the wrong number of values.",
        "The book's API: backward returns dx alone for one input and (dx, dy) for two.",
    ),
    "dtype": (
        "{check} does not keep its input's dtype.",
        "Avoid mixing float64 arrays or np.float64 constants into float32 work; cast with .astype(x.dtype).",
    ),
    "missing": ("{check} was never set.", "Set it in backward (self.dW = ..., or self.grads[i][...] = ...)."),
    "type": ("{check} is not a numeric array.", "Return NumPy arrays (or numbers) from backward."),
}


def diagnose(
    row: Row,
    ev: Evidence,
    values: dict[str, Any],
    tol: Tolerance,
    rerun: Callable[[str, str], tuple[Any, Any] | None] | None = None,
) -> Diagnosis:
    """Classify one failing check.

    ``rerun(mode, check)`` runs the layer again on a variant of the example ("ones": every cotangent
    one; "shifted": every input and cotangent moved) and gives (actual, expected) for ``check``.
    """
    again = rerun or (lambda mode, check: None)
    check, primal = ev.check, ev.primal
    if ev.kind in ("mutated", "aliased"):
        what = "writes into" if ev.kind == "mutated" else "returns memory shared with"
        return Diagnosis(
            "in_place",
            f"The layer {what} the caller's {check if ev.kind == 'mutated' else 'arrays'}.",
            "Never modify dout or x in place; build a new array (np.where(mask, 0, dout) or dout.copy()).",
        )
    if ev.kind == "stateful":
        return Diagnosis(
            "other",
            f"{check} is right the first time but wrong when the layer is used again next to another one.",
            "Keep every cached array on self (not in a module or class variable), and assign gradients "
            "(self.dW = ...) instead of accumulating them (self.dW += ...).",
        )
    if ev.kind == "nan":
        big = max(
            (float(np.max(np.abs(v))) for v in values.values() if isinstance(v, np.ndarray) and v.size),
            default=0,
        )
        return Diagnosis(
            "overflow",
            f"{check} is NaN or infinite where the correct value is finite (inputs reach |{big:g}|).",
            "exp() overflows for large inputs: subtract the max before exponentiating, or use a stable form.",
        )
    if ev.kind == "shape" and ev.expected_shape is not None and ev.actual_shape is not None:
        exp_shape, act_shape = ev.expected_shape, ev.actual_shape
        if len(exp_shape) >= 2 and act_shape == exp_shape[::-1]:
            return Diagnosis(
                "transpose",
                f"{check} has shape {act_shape}, the transpose of {primal}'s shape {exp_shape}.",
                "Swap the operands of the matrix product or transpose the result (dW = x.T @ dout).",
            )
        try:
            grown = np.broadcast_shapes(exp_shape, act_shape) == act_shape
        except ValueError:
            grown = False
        if grown:
            return Diagnosis(
                "unbroadcast",
                f"{check} has shape {act_shape} but {primal} has shape {exp_shape}: "
                "it is not summed over the broadcast axes.",
                f"Sum the gradient over the axes that broadcasting stretched, back down to {exp_shape}.",
            )
        squeezed = tuple(n for n in act_shape if n != 1) == tuple(n for n in exp_shape if n != 1)
        return Diagnosis(
            "shape",
            f"{check} has shape {act_shape} but {primal} has shape {exp_shape}.",
            f"Reshape the gradient back to the input's shape, {check}.reshape({primal}.shape)"
            + (", or sum with keepdims=True." if squeezed else "."),
        )
    if ev.kind != "value" or ev.actual is None or ev.expected is None:
        sentence, hint = _OTHER.get(ev.kind, ("{check} is wrong ({kind}).", "See the message above."))
        return Diagnosis("other", sentence.format(check=check, kind=ev.kind), hint)
    a, e = ev.actual, ev.expected
    kink = _at_kinks(row, ev, values, tol)
    if kink is not None:
        conventions = "; ".join(row.conventions) or "the reference's one-sided derivative"
        return Diagnosis(
            "kink",
            f"{check} differs only where {kink}, a point where the function has no derivative.",
            f"This project's convention there is {conventions}.",
        )
    ones = again("ones", check)
    if ones is not None and _close(*ones, tol):
        return Diagnosis(
            "ignores_dout",
            f"{check} is right when dout is 1 but wrong for other dout: it ignores the incoming gradient.",
            "Chain rule: multiply the local derivative by dout.",
        )
    c = _factor(a, e, tol)
    if c is not None and abs(c - 1) < 1e-3:
        c = None  # a factor this close to one is a small error somewhere, not a stray constant
    shifted = again("shifted", check) if c is not None else None
    if c is not None and shifted is not None and _close(shifted[0], c * shifted[1], tol):
        # the same factor on a second example: a constant, not a coincidence of one element
        if np.isclose(c, -1.0):
            return Diagnosis(
                "sign", f"{check} has the wrong sign.", "Check the sign of the local derivative."
            )
        return _factor_sentence(check, c, _batch(row, values))
    if a.ndim == 2 and a.shape[0] == a.shape[1] and _close(a, e.T, tol):
        return Diagnosis(
            "transpose",
            f"{check} is the transpose of the correct gradient.",
            "Swap the operands of the matrix product or transpose the result (dW = x.T @ dout).",
        )
    return Diagnosis(
        "other", f"{check} is wrong, with no simple pattern.", "Re-derive it on paper for a 1x1 case."
    )
