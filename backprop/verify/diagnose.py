"""Diagnosis for learners: classify a failed check and explain it in one plain sentence, with a hint.

``RULES`` is an ordered table: each rule looks at the evidence (and may run the layer once more on a variant
of the example) and either names a diagnosis code (``vocabulary.SPECIFICITY``) or passes to the next. Forward problems get
forward words; hints speak of the layer at hand, never of another layer's fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backprop.verify.mismatch import Evidence
from backprop.verify.tolerances import Tolerance, compare
from backprop.verify.vocabulary import CODES, Code, DiagnosisCode, Kind

__all__ = ["CODES", "RULES", "Diagnosis", "Evidence", "Situation", "diagnose"]

Rerun = Callable[[str, str], tuple[Any, Any] | None]
ExpectAt = Callable[[str, Mapping[str, Any]], NDArray[np.float64] | None]
"""The reference's value of a check at the example's values with some of them replaced (``{"W": W.T}``,
``{"eps": 1e-7}``); None when the reference cannot be computed there."""


@dataclass(frozen=True)
class Diagnosis:
    code: str
    sentence: str
    hint: str


@dataclass(frozen=True)
class Situation:
    """Everything a rule may look at: the evidence and what the row says about the example."""

    ev: Evidence
    values: Mapping[str, Any]
    tol: Tolerance
    again: Rerun
    outputs: tuple[str, ...]
    batch: int | None
    kinks: Mapping[str, tuple[float, ...]]
    conventions: tuple[str, ...]
    epsilon: Callable[[NDArray[np.float64]], float | None] | None
    """The eps of ``-log(y + eps)`` when the loss matches that formula."""
    at_kinks: NDArray[np.bool_] | None = None
    """Where the gradient has more than one valid value (the row's subgradient bounds differ): a tie of
    max pooling, which no single kink value of the input marks."""
    warned: Callable[[], tuple[str, ...]] | None = None
    """The warnings (NumPy's RuntimeWarning texts) the layer raised when the example is run again."""
    expect_at: ExpectAt | None = None
    eps: float | None = None
    """The eps a normalization row adds to the variance under the square root (the reference's)."""

    @property
    def is_output(self) -> bool:
        return self.ev.check in self.outputs


def _close(a: NDArray[np.float64], b: NDArray[np.float64], tol: Tolerance) -> bool:
    return a.shape == b.shape and compare(b, a, tol).ok


def _factor(a: NDArray[np.float64], e: NDArray[np.float64], tol: Tolerance) -> float | None:
    """The constant c with a == c * e, when there is one."""
    denom = float(np.sum(e * e))
    if denom == 0 or not np.all(np.isfinite(a)):
        return None
    c = float(np.sum(a * e)) / denom
    return c if _close(a, c * e, tol) else None


# ---- rules on the kind of failure ------------------------------------------------------------------------

_BY_KIND: dict[str, tuple[DiagnosisCode, str, str]] = {
    Kind.EXIT: (
        Kind.EXIT,
        "{where} tried to end the program (sys.exit, exit() or a KeyboardInterrupt of its own).",
        "A layer must return its result; raise an exception for bad input instead of calling exit().",
    ),
    Kind.TIMEOUT: (
        Kind.TIMEOUT,
        "{where} did not return in time.",
        "Look for a loop whose condition never changes; raise --timeout if the layer is only slow.",
    ),
    Kind.EXCEPTION: (
        Kind.EXCEPTION,
        "{where} raised an exception on this example.",
        "Run the program below to see the traceback.",
    ),
    Kind.ARITY: (
        Code.OTHER,
        "{check} returned or listed the wrong number of values.",
        "The book's API: backward returns dx alone for one input and (dx, dy) for two; grads follows params.",
    ),
    Kind.TYPE: (Code.OTHER, "{check} is not a numeric array.", "Return NumPy arrays (or numbers)."),
    Kind.STATEFUL: (
        Kind.STATEFUL,
        "{check} is right the first time but wrong when the layer is used again next to another one.",
        "Keep every cached array on self (not in a module or class variable), and assign gradients "
        "(self.dW = ...) instead of accumulating them (self.dW += ...).",
    ),
    Kind.STALE: (
        Kind.STALE,
        "{check} is right on a fresh layer but wrong on a later batch: the layer reused a value from an earlier "
        "call instead of this batch's.",
        "Recompute every cached value (mask, x, out) on each forward call and every gradient on each backward "
        "call, never only the first time; assign gradients (self.dW = ...), never accumulate them (+=).",
    ),
    Kind.DOUT_ONE: (
        Kind.DOUT_ONE,
        "{check} is right for a random dout but wrong when dout is 1, the call every network makes.",
        "Remove the special case for dout == 1: the general formula already covers it.",
    ),
    Kind.DEFAULT_DOUT: (
        Kind.DEFAULT_DOUT,
        "{check} is wrong when backward() is called without an argument, as networks call a loss.",
        "Give dout the default 1 (def backward(self, dout=1)) and use it like any other dout.",
    ),
    Kind.NONDETERMINISTIC: (
        Kind.NONDETERMINISTIC,
        "{check} changes when the same example is run again under another global random state.",
        "A layer's result must not depend on np.random or random: draw any randomness once in forward, keep "
        "it on self, and reuse it in backward.",
    ),
    Kind.PARAM_COPY: (
        Kind.PARAM_COPY,
        "After the parameters were updated in place, as an optimizer does, {check} still follows the old ones: "
        "the layer keeps a copy of its parameters.",
        "Keep the array you were given (self.W = W, not W.copy() or np.array(W)): the optimizer updates it in place.",
    ),
    Kind.GRADS_REBOUND: (
        Kind.GRADS_REBOUND,
        "backward() replaced {check} with a new array instead of writing into it.",
        "Write into the existing array, as the book does: self.grads[0][...] = dW.",
    ),
    Kind.DTYPE: (
        Kind.DTYPE,
        "{check} does not keep its input's dtype.",
        "Avoid mixing float64 arrays or constants, or integer labels (float32 - int32 is float64 in NumPy), "
        "into float32 work (cast with .astype(x.dtype)); a layer meant "
        "for float32 only (book 2 writes dtype='f') should be checked with --dtype float32.",
    ),
}


def _by_kind(s: Situation) -> Diagnosis | None:
    entry = _BY_KIND.get(s.ev.kind)
    if entry is None:
        return None
    code, sentence, hint = entry
    where = s.ev.where or f"{s.ev.check}()"
    return Diagnosis(code, sentence.format(check=s.ev.check, where=where), hint)


def _returns_none(s: Situation) -> Diagnosis | None:
    if s.ev.kind != Kind.RETURNS_NONE:
        return None
    if s.ev.check == "forward":
        return Diagnosis(Kind.RETURNS_NONE, "forward() returned None.", "End forward with `return out`.")
    return Diagnosis(
        Kind.RETURNS_NONE,
        f"backward() returned None where {s.ev.check if s.ev.check != 'backward' else 'gradients'} are due.",
        "End backward with `return dx` (or `return dx, dy` for two inputs).",
    )


def _missing(s: Situation) -> Diagnosis | None:
    if s.ev.kind == Kind.STALE and s.ev.where == "training: then test mode":
        return Diagnosis(
            Kind.STALE,
            f"{s.ev.check} is right in test mode on a fresh layer, but wrong in test mode after a train-mode "
            "call on the same instance: what train mode leaves for test mode (the running statistics, a "
            "mask) is wrong.",
            "In every train-mode forward update running = momentum * running + (1 - momentum) * the batch's "
            "statistic (mean, and the biased variance), and let test mode use only those, never a training mask.",
        )
    if s.ev.kind == Kind.STALE and s.ev.where.startswith("training: after reset_state()"):
        return Diagnosis(
            Kind.STALE,
            f"{s.ev.check} is right on a fresh layer, but after reset_state() the next sequence does not start "
            "from zeros: the layer kept state from the sequence before.",
            "reset_state() must forget every carried state (self.h = None and, in an LSTM, self.c = None), so "
            "that the next forward starts from zeros.",
        )
    if s.ev.kind == Kind.STALE and s.ev.where == "forward()":  # the hidden state a row captures, kept
        return Diagnosis(
            Kind.STALE,
            "forward() reuses the hidden random state of an earlier call (a dropout mask, negative samples) "
            "instead of drawing it anew.",
            "Draw the mask or the negative samples on every forward call, never only the first time.",
        )
    if s.ev.kind != Kind.MISSING:
        return None
    if s.ev.where == "forward()":  # a row's capture found no hidden state (a dropout mask) after forward
        return Diagnosis(
            Code.OTHER,
            "After forward(), the layer does not hold valid state the reference needs (such as a dropout mask "
            "or its negative samples).",
            "Keep it on self under the book's name and with the book's values (self.mask = rand > ratio; "
            "distinct negatives that exclude the target).",
        )
    if s.ev.renamed:
        return Diagnosis(
            Code.RENAMED,
            f"{s.ev.check} was never set, but backward() set {s.ev.renamed}, of the same shape.",
            f"Name it {s.ev.check}, as the book does, or pass --grad-names {s.ev.check}={s.ev.renamed}.",
        )
    if s.ev.check.startswith("grads[") and not s.ev.check[6:7].isdigit():  # a network's dict
        return Diagnosis(
            Code.OTHER,
            f"gradient() returned no {s.ev.check}.",
            f"gradient() must return one entry per key of params, {s.ev.primal!r} included.",
        )
    return Diagnosis(
        Code.OTHER,
        f"{s.ev.check} was never set.",
        "Set it in backward (self.dW = ..., or self.grads[i][...] = ...).",
    )


def _in_place(s: Situation) -> Diagnosis | None:
    if s.ev.kind == Kind.ALIASED:
        return Diagnosis(
            Code.IN_PLACE,
            f"{s.ev.check} shares memory with an array the caller holds.",
            f"Return a new array for {s.ev.check} (for example with .copy()), not a view of dout, x or a parameter.",
        )
    if s.ev.kind != Kind.MUTATED:
        return None
    check = s.ev.check
    if check.startswith("dout"):
        return Diagnosis(
            Code.IN_PLACE,
            f"backward() writes into the caller's {check}.",
            f"Leave {check} as it is: compute the gradient into a new array (multiply, or copy {check} first).",
        )
    if check in s.outputs:
        return Diagnosis(
            Code.IN_PLACE,
            f"backward() changes the {check} that forward returned to the caller.",
            f"Keep your own copy of {check} on self if backward needs to change it.",
        )
    return Diagnosis(
        Code.IN_PLACE,
        f"The layer writes into the caller's {check}.",
        f"Never modify {check} in place: work on a copy ({check} = {check}.copy()) or build a new array.",
    )


def _division(s: Situation) -> Diagnosis | None:
    """NaN or inf from a division NumPy warned about, with no overflowing exp behind it: 0/0 (a constant
    column's zero variance, a count of windows that is 0) or x/0."""
    if s.ev.kind != Kind.NAN or s.warned is None:
        return None
    said = s.warned()
    if any("overflow encountered in exp" in w or "encountered in log" in w for w in said):
        # exp overflowed, or a probability underflowed to 0 and was logged, first (inf / inf and
        # 0 * inf are invalid too): the overflow words
        return None
    hint = (
        "Find the denominator that is 0 on this example, such as a count of windows that is 0 where no "
        "window reaches: col2im adds overlapping windows up (+=), it never averages them."
    )
    if s.eps is not None:  # a normalization row
        hint = (
            f"Add eps to the variance under the square root, np.sqrt(var + {s.eps:g}) as in the book: a "
            "column whose values are all equal has variance 0."
        )
    if any(w.startswith("invalid value encountered in") and "divide" in w for w in said):
        return Diagnosis(
            Code.ZERO_DIVISION,
            f"{s.ev.check} is NaN where the correct value is finite: the layer divides zero by zero "
            "(NumPy warned: invalid value encountered in divide), such as a zero variance or a zero count.",
            hint,
        )
    if any(w.startswith("divide by zero encountered in") and "divide" in w for w in said):
        return Diagnosis(
            Code.ZERO_DIVISION,
            f"{s.ev.check} is infinite or NaN where the correct value is finite: the layer divides by zero "
            "(NumPy warned: divide by zero encountered in divide), such as a zero variance or a zero count.",
            hint,
        )
    return None


def _overflow(s: Situation) -> Diagnosis | None:
    if s.ev.kind != Kind.NAN:
        return None
    big = max(
        (
            float(np.max(np.abs(v)))
            for v in s.values.values()
            if isinstance(v, np.ndarray) and v.size and v.dtype.kind == "f"
        ),
        default=0,
    )
    said = s.warned() if s.warned is not None else ()
    hint = "exp() overflows for large inputs: use a stable form (subtract the max before exponentiating)."
    if said and not any("in exp" in w for w in said):  # NumPy names the operation: no exp is behind it
        hint = f"NumPy warned: {said[0]}. Look for that operation and keep its operands in range."
    elif s.ev.check == "loss":  # a loss is also infinite where a probability underflows to 0 and is logged
        hint = (
            "exp() overflows for large inputs, and a probability far below the largest underflows to 0, "
            "whose log is -inf: subtract the max before exponentiating, and take the log of the "
            "probability as x - max - log(sum(exp(x - max))), not np.log(softmax(x))."
        )
    return Diagnosis(
        Code.OVERFLOW,
        f"{s.ev.check} is NaN or infinite where the correct value is finite (inputs reach |{big:g}|).",
        hint,
    )


# ---- rules on shapes -------------------------------------------------------------------------------------


def _uncropped(s: Situation, exp_shape: tuple[int, ...], act_shape: tuple[int, ...]) -> Diagnosis | None:
    """An image returned with its padding border (H + 2*pad, or the book's buffer H + 2*pad + stride - 1)."""
    pad, stride = s.values.get("pad"), s.values.get("stride", 1)
    if not isinstance(pad, int | np.integer) or not isinstance(stride, int | np.integer) or pad <= 0:
        return None
    if len(exp_shape) != 4 or len(act_shape) != 4 or exp_shape[:2] != act_shape[:2]:
        return None
    grown = [a - e for a, e in zip(act_shape[2:], exp_shape[2:], strict=True)]
    if not all(2 * pad <= g <= 2 * pad + stride - 1 for g in grown):
        return None
    h, w = exp_shape[2:]
    return Diagnosis(
        Kind.SHAPE,
        f"{s.ev.check} has shape {act_shape} but must have shape {exp_shape}: it is the padded image "
        f"(H + 2*pad = {h + 2 * pad}, W + 2*pad = {w + 2 * pad} with pad = {pad}), whose padding was not cropped.",
        "Return the image without its border: img[:, :, pad:H + pad, pad:W + pad].",
    )


def _shape(s: Situation) -> Diagnosis | None:
    ev = s.ev
    if ev.kind != Kind.SHAPE or ev.expected_shape is None or ev.actual_shape is None:
        return None
    exp_shape, act_shape, check = ev.expected_shape, ev.actual_shape, ev.check
    uncropped = _uncropped(s, exp_shape, act_shape)
    if uncropped is not None:
        return uncropped
    if s.is_output:
        return Diagnosis(
            Kind.SHAPE,
            f"forward() returned {check} of shape {act_shape}, but it must have shape {exp_shape}.",
            "Check the axes of forward's computation (the matrix product's operands, a sum's axis, keepdims).",
        )
    if len(exp_shape) >= 2 and act_shape == exp_shape[::-1]:
        return Diagnosis(
            Code.TRANSPOSE,
            f"{check} has shape {act_shape}, the transpose of {ev.primal}'s shape {exp_shape}.",
            f"Swap the operands of the matrix product or transpose the result, so that {check} matches {ev.primal}.",
        )
    try:
        grown = np.broadcast_shapes(exp_shape, act_shape) == act_shape
    except ValueError:
        grown = False
    if grown:
        return Diagnosis(
            Code.UNBROADCAST,
            f"{check} has shape {act_shape} but {ev.primal} has shape {exp_shape}: it is not summed over the "
            "broadcast axes.",
            f"Sum the gradient over the axes that broadcasting stretched, back down to {exp_shape}.",
        )
    squeezed = tuple(n for n in act_shape if n != 1) == tuple(n for n in exp_shape if n != 1)
    return Diagnosis(
        Kind.SHAPE,
        f"{check} has shape {act_shape} but {ev.primal} has shape {exp_shape}.",
        f"Reshape the gradient back to the input's shape, {check}.reshape({ev.primal}.shape)"
        + (", or sum with keepdims=True." if squeezed else "."),
    )


# ---- rules on values -------------------------------------------------------------------------------------


def _values(s: Situation) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    if s.ev.kind != Kind.VALUE or s.ev.actual is None or s.ev.expected is None:
        return None
    return s.ev.actual, s.ev.expected


def _epsilon(s: Situation) -> Diagnosis | None:
    pair = _values(s)
    if pair is None or not s.is_output or s.epsilon is None:
        return None
    actual, expected = pair
    eps = s.epsilon(actual)
    if eps is None:
        return None
    bias = float(np.max(np.abs(actual - expected)))
    return Diagnosis(
        Code.EPSILON,
        f"{s.ev.check} is computed as -log(y + {eps:g}): it is off by {bias:.3g} here, and no sample's loss "
        f"can exceed -log({eps:g}) = {-np.log(eps):.3g}, which hides large losses.",
        "Compute the loss from a stable log-softmax (x - max - log(sum(exp(x - max)))) or log-sigmoid "
        "(-np.logaddexp(0, -x)), or pass --allow epsilon to accept this textbook form.",
    )


NORMALIZATION_EPS = (1e-7, 0.0, 1e-8, 1e-5, 1e-3, 1e-4, 2e-5, 1e-9, 1e-10, 1e-12, 1e-2, 1e-6)
"""The eps values learners write under a normalization's square root, the likeliest first."""


def _normalization_eps(s: Situation) -> Diagnosis | None:
    """A normalization right but for its eps: the reference at another eps matches the layer's numbers."""
    pair = _values(s)
    if pair is None or s.eps is None or s.expect_at is None:
        return None
    key = s.ev.check if s.is_output else s.ev.primal
    for eps in NORMALIZATION_EPS:
        if eps == s.eps:
            continue
        expected = s.expect_at(key, {"eps": eps})
        if expected is None or not _close(pair[0], expected, s.tol):
            continue
        if eps == 0:
            return Diagnosis(
                Code.EPSILON,
                f"{s.ev.check} matches the formula with no eps under the square root (eps = 0), where this "
                f"row, as the book, adds eps = {s.eps:g} to the variance.",
                f"Add eps under the square root, np.sqrt(var + {s.eps:g}) (the book writes 10e-7): without "
                "it a column whose values are all equal divides zero by zero.",
            )
        return Diagnosis(
            Code.EPSILON,
            f"{s.ev.check} matches the formula with eps = {eps:g} under the square root, where this row, as "
            f"the book, uses eps = {s.eps:g}"
            + (" (the book's 10e-7 is 1e-6, not 1e-7)." if eps == 1e-7 else "."),
            f"Use the book's np.sqrt(var + 10e-7), or check the layer at its own eps: --eps {eps:g} "
            f"(verify(..., eps={eps:g})).",
        )
    return None


def _all_zero(s: Situation) -> Diagnosis | None:
    pair = _values(s)
    if pair is None or np.any(pair[0]) or not np.any(pair[1]):
        return None
    if s.is_output and pair[1].ndim == 0:
        return Diagnosis(
            Code.OTHER,
            f"forward() returned {s.ev.check} = 0 where the correct value is {float(pair[1]):.6g}.",
            "Check that forward uses every input in the form it is given (a target may come as integer "
            "labels or one-hot), and returns its result.",
        )
    if s.is_output:
        return Diagnosis(
            Code.OTHER,
            f"forward() returned all zeros for {s.ev.check}.",
            "Check that forward computes and returns its result.",
        )
    return Diagnosis(
        Code.OTHER,
        f"{s.ev.check} is all zeros where the correct gradient is not.",
        f"Check that backward computes {s.ev.check} from dout and the values cached in forward.",
    )


def _kink(s: Situation) -> Diagnosis | None:
    pair = _values(s)
    kinks = s.kinks.get(s.ev.primal, ())
    if pair is None or not (kinks or s.at_kinks is not None):
        return None
    actual, expected = pair
    x = np.asarray(s.values[s.ev.primal])
    if x.shape != actual.shape:
        return None
    scale = float(np.max(np.abs(expected), initial=0.0))
    wrong = np.abs(actual - expected) > s.tol.atol + s.tol.rtol * scale
    conventions = "; ".join(s.conventions) or "the reference's one-sided derivative"
    if (
        np.any(wrong)
        and s.at_kinks is not None
        and s.at_kinks.shape == wrong.shape
        and np.all(s.at_kinks[wrong])
    ):
        return Diagnosis(
            Code.KINK,
            f"{s.ev.check} differs only where {s.ev.primal} has no derivative (a tie), and there it is not a "
            "valid subgradient: the shares given to the tied elements must add up to what one would receive.",
            f"This project's convention there is {conventions}.",
        )
    for kink in kinks:
        if np.any(wrong) and np.all(x[wrong] == kink):
            return Diagnosis(
                Code.KINK,
                f"{s.ev.check} differs only where {s.ev.primal} == {kink:g}, a point where the function has no derivative.",
                f"This project's convention there is {conventions}.",
            )
    return None


def _ignores_dout(s: Situation) -> Diagnosis | None:
    pair = _values(s)
    if pair is None or s.is_output:
        return None
    ones = s.again("ones", s.ev.check)
    # right with dout of ones, and the same with the drawn dout: a small example can make another mistake
    # (a transpose, say) vanish when every dout is one, so being right there is not enough
    if ones is not None and _close(*ones, s.tol) and _close(pair[0], ones[0], s.tol):
        return Diagnosis(
            Code.IGNORES_DOUT,
            f"{s.ev.check} is right when dout is 1 but wrong for other dout: it ignores the incoming gradient.",
            "Chain rule: multiply the local derivative by dout.",
        )
    return None


def _scale(s: Situation) -> Diagnosis | None:
    pair = _values(s)
    if pair is None:
        return None
    c = _factor(*pair, s.tol)
    if c is None or abs(c - 1) < 1e-3 or c == 0:
        return None  # a factor this close to one is a small error somewhere, not a stray constant
    shifted = s.again("shifted", s.ev.check)
    if shifted is None or not _close(shifted[0], c * shifted[1], s.tol):
        return None  # the same factor on a second example: a constant, not a coincidence of one element
    check, n = s.ev.check, s.batch
    what = "output" if s.is_output else "gradient"
    if np.isclose(c, -1.0):
        return Diagnosis(
            Code.SIGN,
            f"{check} has the wrong sign.",
            f"Check the sign of the {'formula' if s.is_output else 'local derivative'}.",
        )
    if n is not None and n > 1 and np.isclose(c, n):
        return Diagnosis(
            Code.SCALE,
            f"{check} is {c:g} times too large, exactly the batch size N = {n}.",
            "Divide by the batch size: the loss is a mean over the batch, so its gradient carries 1/N.",
        )
    if n is not None and n > 1 and np.isclose(c, 1 / n):
        return Diagnosis(
            Code.SCALE,
            f"{check} is {n} times too small, exactly 1/batch size (N = {n}).",
            "The batch size is divided out once too often, or a sum over the batch was replaced by a mean.",
        )
    return Diagnosis(
        Code.SCALE,
        f"{check} is off by a constant factor: it is {c:.6g} times the correct {what}.",
        "Look for a stray constant factor in the formula.",
    )


def _summed_axis(s: Situation) -> Diagnosis | None:
    """The correct gradient summed over one axis and stretched back over it: a sum over the wrong axis
    (``np.sum(dW, axis=0)`` written into ``grads[0][...]``, which broadcasts)."""
    pair = _values(s)
    if pair is None or s.is_output:
        return None
    a, e = pair

    def summed(e: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
        return np.broadcast_to(np.sum(e, axis=axis, keepdims=True), e.shape)

    for axis in range(e.ndim):
        if e.shape[axis] < 2 or not _close(a, summed(e, axis), s.tol):
            continue
        other = s.again("shifted", s.ev.check)  # the same on another example: not a coincidence of this one
        if other is not None and _close(other[0], summed(other[1], axis), s.tol):
            return Diagnosis(
                Kind.SHAPE,
                f"{s.ev.check} holds the correct gradient summed over axis {axis} and repeated along it: a "
                f"sum over the wrong axis, broadcast back to {s.ev.primal}'s shape {e.shape}.",
                f"Compute {s.ev.check} with the shape of {s.ev.primal} directly (for a matrix product, "
                "x.T @ dout sums over the batch already); do not sum it again.",
            )
    return None


def _transposed_operand(s: Situation) -> Diagnosis | None:
    """The formula applied with a square parameter or input transposed (``dout @ W`` for ``dout @ W.T``)."""
    pair = _values(s)
    if pair is None or s.expect_at is None:
        return None
    key = s.ev.check if s.is_output else s.ev.primal
    for name, v in s.values.items():
        if not (isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] == v.shape[1] > 1):
            continue
        if np.allclose(v, v.T):
            continue  # a symmetric matrix: transposing it changes nothing
        expected = s.expect_at(key, {name: np.ascontiguousarray(v.T)})
        if expected is not None and _close(pair[0], expected, s.tol):
            return Diagnosis(
                Code.TRANSPOSE,
                f"{s.ev.check} is what the correct formula gives with {name} transposed: {name} is square "
                "here, so the missing (or extra) .T changes the numbers, not the shape.",
                f"Check each use of {name} in the formula of {s.ev.check}: a matrix product's gradient "
                "takes the other operand transposed (dx = dout @ W.T, dW = x.T @ dout).",
            )
    return None


def _transpose(s: Situation) -> Diagnosis | None:
    pair = _values(s)
    if pair is None:
        return None
    a, e = pair
    square = a.ndim == 2 and a.shape[0] == a.shape[1] and _close(a, e.T, s.tol)
    if square or (a.ndim == 2 and _close(a, e.T.reshape(a.shape), s.tol)):
        return Diagnosis(
            Code.TRANSPOSE,
            f"{s.ev.check} is the transpose of the correct value"
            + ("." if square else ", reshaped to its shape."),
            f"Swap the operands of the matrix product or transpose the result, so that {s.ev.check} matches {s.ev.primal}.",
        )
    return None


def _fallback(s: Situation) -> Diagnosis:
    if s.is_output:
        return Diagnosis(
            Code.OTHER,
            f"forward() computes {s.ev.check} differently from the reference, with no simple pattern.",
            "Compare forward with the formula on a 1x1 example.",
        )
    return Diagnosis(
        Code.OTHER, f"{s.ev.check} is wrong, with no simple pattern.", "Re-derive it on paper for a 1x1 case."
    )


RULES: tuple[Callable[[Situation], Diagnosis | None], ...] = (
    _returns_none,
    _missing,
    _in_place,
    _by_kind,
    _division,
    _overflow,
    _shape,
    _epsilon,
    _normalization_eps,
    _kink,
    _all_zero,
    _ignores_dout,
    _transposed_operand,
    _summed_axis,
    _scale,
    _transpose,
)


def diagnose(s: Situation) -> Diagnosis:
    """The first rule of ``RULES`` that recognises the situation; ``other`` when none does."""
    for rule in RULES:
        found = rule(s)
        if found is not None:
            return found
    return _fallback(s)
