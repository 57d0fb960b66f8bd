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


def compare(
    expected: NDArray[np.float64],
    actual: NDArray[np.float64],
    tol: Tolerance,
    terms: NDArray[np.float64] | None = None,
    native: NDArray[np.float64] | None = None,
) -> Comparison:
    """Compare same-shape arrays as above; NaN or inf where ``expected`` is finite fails."""
    err = np.abs(actual - expected)
    finite = np.isfinite(actual) | ~np.isfinite(expected)
    same_inf = np.isinf(expected) & (actual == expected)
    err = np.where(same_inf, 0.0, np.where(finite, err, np.inf))
    err = np.where(np.isnan(err), np.inf, err)
    if err.size == 0:
        return Comparison(True, 0.0, 0.0, (), 0.0, 0.0)
    scale = np.full(err.shape, np.max(np.abs(expected), initial=0.0, where=np.isfinite(expected)))
    if terms is not None:
        scale = np.maximum(scale, np.where(np.isfinite(terms), np.abs(terms), 0.0))
    bound = tol.atol + tol.rtol * scale
    if native is not None and tol.native:
        bound = bound + tol.native * np.where(np.isfinite(native), np.abs(native - expected), 0.0)
    flat = int(np.argmax(err))
    index = tuple(int(i) for i in np.unravel_index(flat, err.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        # below atol/rtol the absolute floor decides; XLA also flushes subnormals to zero there
        rel = np.where(err == 0, 0.0, err / np.maximum(scale, tol.atol / tol.rtol))
    ok = bool(np.all(err <= bound))
    return Comparison(
        ok,
        float(err.flat[flat]),
        float(np.max(rel)),
        index,
        float(expected.flat[flat]),
        float(actual.flat[flat]),
    )
