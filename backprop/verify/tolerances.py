"""Tolerances keyed by dtype, and the one comparison every check uses.

The expected value is always the float64 reference. Three terms bound a correct layer's error:

1. Rounding in sums. A gradient is a sum of products, so its rounding error scales with the magnitude of
   the summed terms, not with the result: an element that cancels to zero in one summation order keeps a
   residue of ``eps * sum|terms|`` in another. That magnitude is the reference evaluated on absolute
   values, ``terms = |vjp|(|x|, |W|, ...; |dout|)`` (exact for products, sums and matrix products, a sound
   order of magnitude for the activations). ``rtol`` is a multiple of the dtype's machine epsilon:
   about 32 eps allows sums of up to 32 terms at the worst-case bound ``n * eps``.
2. Conditioning. Some textbook formulas lose digits for a reason the layer cannot avoid in its dtype
   (``y * (1 - y)`` for a saturated sigmoid in float32). The same reference, run natively in the layer's
   dtype, shows how far a reputable implementation lands from the float64 truth on *this* example; a
   manual layer may be ``native`` times as far. For float64 the native run is the reference itself.
3. ``atol``: a floor below which no element is judged (XLA flushes subnormals to zero).

Each element must satisfy

    |actual - expected| <= atol + rtol * max(max|expected|, terms) + native * |reference_in_dtype - expected|

The relative error reported is the worst ``|actual - expected| / max(max|expected|, terms, atol/rtol)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    native: float = 0.0


_EPS64 = float(np.finfo(np.float64).eps)
_EPS32 = float(np.finfo(np.float32).eps)

TOLERANCES: dict[str, Tolerance] = {
    # 1e-9 = 4.5e6 eps: far above summation noise, far below any derivation bug (an O(1) error)
    "float64": Tolerance(rtol=4.5e6 * _EPS64, atol=1e-12),
    "float32": Tolerance(rtol=32 * _EPS32, atol=1e-6, native=4.0),
}


@dataclass(frozen=True)
class Comparison:
    ok: bool
    max_abs: float
    max_rel: float
    index: tuple[int, ...]
    expected: float
    actual: float


SMALL_ELEMENT_MARGIN = 100.0
"""An element larger than this many times its own rounding noise must also be right to within half its
value: a sign flip or a lost factor of an element far below the array's largest is still a bug."""


def compare(
    expected: NDArray[np.float64],
    actual: NDArray[np.float64],
    tol: Tolerance,
    terms: NDArray[np.float64] | None = None,
    native: NDArray[np.float64] | None = None,
    batched: bool = False,
) -> Comparison:
    """Compare same-shape arrays as above; NaN or inf where ``expected`` is finite fails."""
    if expected.size == 0:
        return Comparison(True, 0.0, 0.0, (), 0.0, 0.0)
    # This runs a couple of dozen times per example: nearly every comparison is of finite arrays, so the
    # masks for NaN and inf are built only when needed, and the relative error needs no mask there.
    finite = bool(np.isfinite(expected).all() and np.isfinite(actual).all())
    if finite:
        err = np.abs(actual - expected)
        own = magnitude = np.abs(expected)
    else:
        err, own = _nonfinite_error(expected, actual)
        magnitude = np.abs(expected)
    peak = own.max(axis=tuple(range(1, own.ndim)), keepdims=True) if batched and own.ndim >= 1 else own.max()
    if terms is not None:
        # a non-finite term (exp overflowing on |x|) says nothing about the scale: it must not widen it
        own = np.maximum(own, _finite_or_zero(np.abs(terms), terms))  # a new array: magnitude stays
    scale = np.maximum(own, peak)  # the peak, as an array of err's shape
    noise: NDArray[np.float64] | float = 0.0
    if native is not None and tol.native:
        noise = tol.native * _finite_or_zero(np.abs(native - expected), native)
    bound = tol.atol + tol.rtol * scale + noise
    # the element's own noise: rounding on its own terms, the native run's distance and the floor
    limit = SMALL_ELEMENT_MARGIN * (tol.atol + tol.rtol * own + noise)
    bad = err > bound
    bad |= (magnitude > limit) & (err > 0.5 * magnitude)
    any_bad = bool(bad.any())
    flat = int((np.where(bad, err, -1.0) if any_bad else err).argmax())
    index = tuple(int(i) for i in np.unravel_index(flat, err.shape))
    if finite:
        # below atol/rtol the absolute floor decides; XLA also flushes subnormals to zero there
        worst = float((err / np.maximum(scale, tol.atol / tol.rtol)).max())
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            worst = float(np.where(err == 0, 0.0, err / np.maximum(scale, tol.atol / tol.rtol)).max())
    return Comparison(
        not any_bad,
        float(err.max()),
        worst,
        index,
        float(expected.flat[flat]),
        float(actual.flat[flat]),
    )


def _finite_or_zero(values: NDArray[np.float64], source: NDArray[np.float64]) -> NDArray[np.float64]:
    """``values`` with 0 wherever ``source`` is NaN or infinite."""
    return values if np.isfinite(source).all() else np.where(np.isfinite(source), values, 0.0)


def _nonfinite_error(
    expected: NDArray[np.float64], actual: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(error, |expected|) when either holds NaN or inf: a non-finite actual where the reference is finite
    is an infinite error, the same infinity is none, and a non-finite expected counts as 0 in the scale."""
    with np.errstate(invalid="ignore"):
        err = np.abs(actual - expected)
    finite = np.isfinite(actual) | ~np.isfinite(expected)
    same_inf = np.isinf(expected) & (actual == expected)
    err = np.where(same_inf, 0.0, np.where(finite, err, np.inf))
    err = np.where(np.isnan(err), np.inf, err)
    return err, np.where(np.isfinite(expected), np.abs(expected), 0.0)
