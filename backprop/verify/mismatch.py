"""The one record of a failed check: what was checked, what was seen, where, the arrays, the worst element
and the diagnosis. The stages build it (as ``Evidence``), the diagnosis fills in its last three fields, and
the reports render it. A leaf: it imports nothing of the engine, so a report can be read without JAX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from backprop.verify.vocabulary import Code

__all__ = ["Culprit", "Evidence", "Line", "Located", "Mismatch", "Node", "nan_safe", "number"]


@dataclass(frozen=True)
class Mismatch:
    """One check that failed: which output or gradient (``check``) of which input (``primal``), what kind of
    failure, the arrays compared, the worst element and, once diagnosed, its cause in words."""

    check: str
    primal: str
    kind: str
    expected: NDArray[np.float64] | None = field(default=None, repr=False, compare=False)
    """The reference's whole array (None for a failure that is no comparison of values)."""
    actual: NDArray[np.float64] | None = field(default=None, repr=False, compare=False)
    """The layer's whole array, as float64."""
    expected_shape: tuple[int, ...] | None = None
    actual_shape: tuple[int, ...] | None = None
    where: str = ""
    """The call or stage that failed (``forward()``, ``training: backward()``)."""
    renamed: str = ""
    """A new attribute of the missing gradient's shape that backward created instead."""
    message: str = ""
    index: tuple[int, ...] | None = None
    """The worst element: its index, its two values and the largest errors."""
    worst_expected: float | None = None
    worst_actual: float | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    diagnosis: str = Code.OTHER.value
    explanation: str = ""
    hint: str = ""

    def render(self) -> str:
        lines = [f"{self.check}: {self.message}"]
        if self.explanation.rstrip(".") == f"{self.check} {self.message}".rstrip(".") or (
            self.explanation.rstrip(".") == self.message.rstrip(".")
        ):
            lines[0] = f"{self.check}: [{self.diagnosis}] {self.explanation}"
        elif self.explanation:
            lines.append(f"    [{self.diagnosis}] {self.explanation}")
        if self.hint:
            lines.append(f"    hint: {self.hint}")
        if self.index is not None:
            where = f"{self.check}[{', '.join(map(str, self.index))}]" if self.index else self.check
            lines.append(
                f"    worst element {where}: expected {self.worst_expected!r}, actual {self.worst_actual!r}"
            )
        if self.max_abs is not None:
            lines.append(f"    max abs error {self.max_abs:.3g}, max rel error {self.max_rel:.3g}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "kind": self.kind,
            "diagnosis": self.diagnosis,
            "message": self.message,
            "explanation": self.explanation,
            "hint": self.hint,
            "expected_shape": _list(self.expected_shape),
            "actual_shape": _list(self.actual_shape),
            "index": _list(self.index),
            "expected": number(self.worst_expected),
            "actual": number(self.worst_actual),
            "max_abs_error": number(self.max_abs),
            "max_rel_error": number(self.max_rel),
        }


Evidence = Mismatch
"""The name the stages build the record with, before it has a message or a diagnosis."""


# ---- the culprit: the first wrong line of a failing layer's own code (issue 20) -------------------------


@dataclass(frozen=True)
class Node:
    """One node of a row's computational graph, named as the book names it (``xc``, ``var``, ``c_next``): its
    right forward value and the right gradient of the loss at it (what the book calls ``dxc``), in float64,
    at the failing example."""

    name: str
    value: NDArray[np.float64] = field(repr=False, compare=False)
    grad: NDArray[np.float64] | None = field(default=None, repr=False, compare=False)


Mark = Literal["right", "culprit", "unmatched"]


@dataclass(frozen=True)
class Line:
    """One executed line of the layer's forward or backward, as the culprit search saw it: the array it
    assigned (``variable``), and the node it matches (``"xc"`` for a value, ``"the gradient at var"`` for a
    gradient), if any."""

    file: str
    line: int
    source: str
    mark: Mark
    variable: str = ""
    node: str = ""


@dataclass(frozen=True)
class Culprit:
    """The first wrong line: where it is, the array it assigned, the node that array should have been, the
    two values, and the variables of the lines before it that were right."""

    file: str
    line: int
    source: str
    variable: str
    node: str
    expected: NDArray[np.float64] | None = field(default=None, repr=False, compare=False)
    actual: NDArray[np.float64] | None = field(default=None, repr=False, compare=False)
    right: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "source": self.source,
            "variable": self.variable,
            "node": self.node,
        }


@dataclass(frozen=True)
class Located:
    """What the culprit search found on a failing example: the culprit or None, every traced line with its
    mark (for the HTML report), and one sentence (why nothing was found, when nothing was)."""

    culprit: Culprit | None
    lines: tuple[Line, ...] = ()
    note: str = ""


def nan_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as strings so the report stays strict JSON."""
    if isinstance(value, list):
        return [nan_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: nan_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    return value


def number(value: float | None) -> float | str | None:
    return None if value is None else nan_safe(float(value))


def _list(value: tuple[int, ...] | None) -> list[int] | None:
    return None if value is None else list(value)
