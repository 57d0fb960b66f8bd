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


def _scale(expected: NDArray[np.float64], batched: bool) -> NDArray[np.float64]:
    """max|expected| over the whole array, or over each sample when the leading axis is the batch, so one
    extreme sample cannot widen another sample's tolerance."""
    finite = np.where(np.isfinite(expected), np.abs(expected), 0.0)
    if batched and expected.ndim >= 1:
        peak = np.max(finite, axis=tuple(range(1, expected.ndim)), keepdims=True, initial=0.0)
    else:
        peak = np.max(finite, initial=0.0)
    return np.broadcast_to(peak, expected.shape)


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
    err = np.abs(actual - expected)
    finite = np.isfinite(actual) | ~np.isfinite(expected)
    same_inf = np.isinf(expected) & (actual == expected)
    err = np.where(same_inf, 0.0, np.where(finite, err, np.inf))
    err = np.where(np.isnan(err), np.inf, err)
    if err.size == 0:
        return Comparison(True, 0.0, 0.0, (), 0.0, 0.0)
    scale = np.array(_scale(expected, batched))
    own = np.where(np.isfinite(expected), np.abs(expected), 0.0)
    if terms is not None:
        element_terms = np.broadcast_to(np.where(np.isfinite(terms), np.abs(terms), 0.0), err.shape)
        scale = np.maximum(scale, element_terms)
        own = np.maximum(own, element_terms)
    noise = np.zeros(err.shape)
    if native is not None and tol.native:
        noise = tol.native * np.where(np.isfinite(native), np.abs(native - expected), 0.0)
    bound = tol.atol + tol.rtol * scale + noise
    # the element's own noise: rounding on its own terms, the native run's distance and the floor
    own_noise = tol.atol + tol.rtol * own + noise
    resolvable = np.abs(expected) > SMALL_ELEMENT_MARGIN * own_noise
    bad = (err > bound) | (resolvable & (err > 0.5 * np.abs(expected)))
    bad_err = np.where(bad, err, -1.0)
    flat = int(np.argmax(bad_err)) if bool(np.any(bad)) else int(np.argmax(err))
    index = tuple(int(i) for i in np.unravel_index(flat, err.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        # below atol/rtol the absolute floor decides; XLA also flushes subnormals to zero there
        rel = np.where(err == 0, 0.0, err / np.maximum(scale, tol.atol / tol.rtol))
    return Comparison(
        not bool(np.any(bad)),
        float(np.max(err)),
        float(np.max(rel)),
        index,
        float(expected.flat[flat]),
        float(actual.flat[flat]),
    )
