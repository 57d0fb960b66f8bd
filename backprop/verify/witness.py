"""A third witness: finite differences of the reference's forward pass, along one direction.

For phi(p) = sum_o <dout_o, f_o(p)>, the vector-Jacobian product u = J^T dout satisfies
``phi'(p)[v] = <u, v>`` for every direction v. Central differences of phi along v, Richardson-
extrapolated over three step sizes, estimate that number together with an error bound, independently of
both the manual backward pass and of ``jax.vjp``. When the two disagree the direction is their
difference, which separates them as widely as a single direction can.

Steps never cross a kink: elements sitting on a kink are left out of the direction (the declared
convention decides there), and the step is shorter than the distance from any other element to its kink.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from backprop.verify.row import Row
from backprop.verify.runner import reference_runs

Supports = Literal["reference", "manual", "neither", "inconclusive"]

_BASE_STEP = 1e-2


@dataclass(frozen=True)
class Estimate:
    """Finite-difference estimate of phi'(p)[v], its error bound, and the elements left out at kinks."""

    value: float
    error: float
    at_kink: int


def _phi(row: Row, values: dict[str, Any], cotangents: tuple[Any, ...]) -> tuple[float, float]:
    """phi = sum <dout, f(p)> with the compiled reference, and the same on absolute values (its magnitude)."""
    (outs, _), (abs_outs, _) = reference_runs(row, values, cotangents)
    cots = [np.asarray(c, dtype=np.float64) for c in cotangents]
    phi = sum(float(np.sum(np.asarray(o) * c)) for o, c in zip(outs, cots, strict=True))
    mag = sum(float(np.sum(np.abs(np.asarray(o)) * np.abs(c))) for o, c in zip(abs_outs, cots, strict=True))
    return phi, mag


def directional_derivative(
    row: Row, values: dict[str, Any], cotangents: tuple[Any, ...], direction: dict[str, NDArray[np.float64]]
) -> tuple[Estimate, dict[str, NDArray[np.float64]]]:
    """Estimate phi'(p)[v]; returns the estimate and the direction actually used (kink elements zeroed)."""
    base = dict(values)
    base.update({a.name: np.asarray(values[a.name], dtype=np.float64) for a in row.differentiable})
    used: dict[str, NDArray[np.float64]] = {}
    step, at_kink = _BASE_STEP, 0
    for arg in row.differentiable:
        v = np.array(direction.get(arg.name, np.zeros_like(base[arg.name])), dtype=np.float64)
        x = base[arg.name]
        for kink in arg.kinks:
            on = x == kink
            at_kink += int(np.count_nonzero(on & (v != 0)))
            v[on] = 0.0
            moving = v != 0
            if np.any(moving):
                with np.errstate(over="ignore"):  # a tiny component allows any step: inf is right
                    step = min(step, 0.5 * float(np.min(np.abs(x[moving] - kink) / np.abs(v[moving]))))
        used[arg.name] = v

    def central(h: float) -> float:
        plus = {**base, **{k: base[k] + h * v for k, v in used.items()}}
        minus = {**base, **{k: base[k] - h * v for k, v in used.items()}}
        return (_phi(row, plus, cotangents)[0] - _phi(row, minus, cotangents)[0]) / (2 * h)

    d1, d2, d4 = central(step), central(step / 2), central(step / 4)
    r1, r2 = (4 * d2 - d1) / 3, (4 * d4 - d2) / 3
    best = (16 * r2 - r1) / 15
    _, magnitude = _phi(row, base, cotangents)
    rounding = 8 * np.finfo(np.float64).eps * magnitude / (step / 4)
    return Estimate(best, abs(best - r2) + rounding, at_kink), used


@dataclass(frozen=True)
class Witness:
    """What finite differences say about one disagreeing gradient."""

    check: str
    finite_difference: float
    error: float
    manual: float
    reference: float
    supports: Supports
    at_kink: int

    def sentence(self) -> str:
        fd = f"finite differences give {self.finite_difference:.6g} (+/- {self.error:.2g})"
        tail = f" along the difference; manual {self.manual:.6g}, jax.vjp {self.reference:.6g}"
        verdict = {
            "reference": "they support jax.vjp: the manual gradient is wrong",
            "manual": "they support the manual gradient: the reference may be wrong, please report it",
            "neither": "they support neither side",
            "inconclusive": "they cannot tell the two apart on this example",
        }[self.supports]
        kinks = f" ({self.at_kink} element(s) on a kink left out)" if self.at_kink else ""
        return f"{self.check}: {fd}{tail}; {verdict}{kinks}"

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "finite_difference": self.finite_difference,
            "error_estimate": self.error,
            "manual": self.manual,
            "reference": self.reference,
            "supports": self.supports,
            "elements_at_kink": self.at_kink,
        }


def witness(
    row: Row,
    values: dict[str, Any],
    cotangents: tuple[Any, ...],
    primal: str,
    check: str,
    manual: NDArray[np.float64],
    expected: NDArray[np.float64],
) -> Witness:
    """Judge a disagreement on the gradient of ``primal`` between ``manual`` and ``expected`` (jax.vjp)."""
    diff = np.where(np.isfinite(manual), manual - expected, 1.0)
    scale = float(np.max(np.abs(diff), initial=0.0))
    direction = diff / scale if scale > 0 else np.ones_like(expected)
    est, used = directional_derivative(row, values, cotangents, {primal: direction})
    v = used[primal]
    with np.errstate(invalid="ignore", over="ignore"):
        m, j = float(np.sum(manual * v)), float(np.sum(expected * v))
    tol = 4 * est.error + 1e-9 * max(abs(est.value), abs(j))
    near_j, near_m = abs(est.value - j) <= tol, abs(est.value - m) <= tol
    supports: Supports = "neither"
    if near_j and near_m:
        supports = "inconclusive"
    elif near_j or near_m:
        supports = "reference" if near_j else "manual"
    return Witness(check, est.value, est.error, m, j, supports, est.at_kink)
