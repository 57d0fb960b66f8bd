"""Building blocks for the rows' strategies: values and cotangents that honour ``without``.

Shapes come from each row's pool (``Row.shapes``); within a shape the values vary freely, reaching the
rare cases a layer may get wrong (-0.0, magnitudes up to 1e4, exact zeros and bounds) with a fair
probability per run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st

# Hypothesis (0.2 s to import, ``hypothesis.extra.numpy`` 0.3 s more) is imported where a strategy is
# built, not here, so that the registry (``backprop-verify --list``) does without it.

Without = frozenset[Feature]
NONE: Without = frozenset()

EXTREME = 1e3  # |v| at or above this is the ``extreme`` feature
SMALL_AXIS = 27  # axes up to this are small; past it, or a batch past 8, is ``large``


def without_set(without: Collection[Feature | str]) -> Without:
    """``without`` as a set of features; ValueError naming the known ones otherwise."""
    out = set()
    for name in without:
        try:
            out.add(Feature(name))
        except ValueError:
            known = ", ".join(f.value for f in Feature)
            raise ValueError(f"unknown feature {name!r}; known: {known}") from None
    return frozenset(out)


def _below_extreme(dtype: np.dtype[Any]) -> float:
    """The largest magnitude drawn without ``extreme``: just under 1e3 in ``dtype``."""
    return float(np.nextafter(EXTREME, 0, dtype=dtype))


def float_elements(
    low: float, high: float, dtype: np.dtype[Any], without: Without = NONE
) -> st.SearchStrategy[float]:
    """Finite floats in [low, high] representable in ``dtype``.

    Subnormals are left out: XLA flushes them to zero on CPU, which would move relu's kink. Without
    ``extreme`` the range is cut below 1e3 in magnitude; without ``negative_zero`` -0.0 becomes 0.0.
    """
    from hypothesis import strategies as st

    if Feature.EXTREME in without:
        bound = _below_extreme(dtype)
        low, high = max(low, -bound), min(high, bound)
    widths: dict[int, Literal[16, 32, 64]] = {2: 16, 4: 32, 8: 64}
    floats = st.floats(low, high, width=widths[dtype.itemsize], allow_subnormal=False)
    if Feature.NEGATIVE_ZERO in without:
        return floats.map(lambda v: 0.0 if v == 0 else v)
    return floats


NEGATIVE_ZERO_ONE_IN = 12


def _with_negative_zero(drawn: tuple[Any, int]) -> Any:
    array, k = drawn
    # the last k, not 0: Hypothesis shrinks towards 0, and a shrunk example should not keep a -0.0
    if k == NEGATIVE_ZERO_ONE_IN - 1 and array.size:
        array = array.copy()
        array.flat[-1] = -0.0  # the last element, so that shrinking towards [[0.0, ...]] keeps the rest
    return array


ELEMENTWISE_LIMIT = 64
"""Arrays up to this size are drawn element by element, so shrinking ends at values like [[0.0, 1.0]];
larger ones come from a seeded generator at a drawn magnitude, with a few elements chosen by Hypothesis
(past a few hundred elements, element-by-element drawing overruns Hypothesis's buffer and is thrown away)."""


def _draw_seeded_array(
    draw: st.DrawFn, shape: tuple[int, ...], low: float, high: float, dtype: np.dtype[Any], without: Without
) -> Any:
    from hypothesis import strategies as st

    seed = draw(st.integers(0, 2**32 - 1))
    top = max(abs(low), abs(high))
    if Feature.EXTREME in without:
        top = min(top, _below_extreme(dtype))
    magnitude = draw(st.sampled_from(sorted({m for m in (1.0, 10.0, 100.0, top) if m <= top})))
    values = np.random.default_rng(seed).uniform(-magnitude, magnitude, size=shape)
    array = np.clip(values, low, high).astype(dtype)
    special = float_elements(low, high, dtype, without)
    for _ in range(draw(st.integers(0, 4))):  # a few exact values (0.0, the bounds) where Hypothesis likes
        array.flat[draw(st.integers(0, array.size - 1))] = draw(special)
    return array


@functools.cache
def _composite_seeded_array() -> Callable[..., st.SearchStrategy[Any]]:
    """``_draw_seeded_array`` as a strategy function, made once, on first use: ``st.composite`` needs
    Hypothesis, and takes about 5 ms."""
    from hypothesis import strategies as st

    return st.composite(_draw_seeded_array)


def _seeded_array(
    shape: tuple[int, ...], low: float, high: float, dtype: np.dtype[Any], without: Without
) -> st.SearchStrategy[Any]:
    """Arrays from a seeded generator at a drawn magnitude, with a few elements chosen by Hypothesis."""
    return _composite_seeded_array()(shape, low, high, dtype, without)


KINK_ONE_IN = 4


def _with_kinks(drawn: tuple[Any, int, int, float]) -> Any:
    array, k, at, kink = drawn
    if k == KINK_ONE_IN - 1 and array.size:
        array = array.copy()
        array.flat[at % array.size :: 2] = kink  # every other element from ``at``: a mask sees both kinds
    return array


def float_arrays(
    shape: tuple[int, ...],
    low: float,
    high: float,
    dtype: np.dtype[Any],
    without: Without = NONE,
    kinks: tuple[float, ...] = (),
    elementwise: bool = True,
) -> st.SearchStrategy[Any]:
    """Arrays of ``float_elements``; about one in 12 holds a -0.0 (set once per array, not drawn per
    element, which would double the cost of drawing) unless ``negative_zero`` is off or 0 is out of range;
    about one in 4 has every other element at one of ``kinks`` (relu's 0), which drawn floats hit rarely.
    ``elementwise=False`` draws even a small array from the seeded generator: Hypothesis's small arrays
    repeat a few values (a fill), which a deep network turns into tied pooling windows everywhere."""
    from hypothesis import strategies as st

    if int(np.prod(shape)) > ELEMENTWISE_LIMIT or not elementwise:
        arrays = _seeded_array(shape, low, high, dtype, without)
    else:
        from hypothesis.extra import numpy as hnp

        arrays = hnp.arrays(dtype, shape, elements=float_elements(low, high, dtype, without))
    inside = [k for k in kinks if low <= k <= high]
    if inside:
        size = max(1, int(np.prod(shape)))
        arrays = st.tuples(
            arrays, st.integers(0, KINK_ONE_IN - 1), st.integers(0, size - 1), st.sampled_from(inside)
        ).map(_with_kinks)
    if Feature.NEGATIVE_ZERO in without or not low <= 0.0 <= high:
        return arrays
    return st.tuples(arrays, st.integers(0, NEGATIVE_ZERO_ONE_IN - 1)).map(_with_negative_zero)


def cotangent_arrays(
    shape: tuple[int, ...], dtype: np.dtype[Any], low: float, high: float, *, scalar: bool = False
) -> st.SearchStrategy[Any]:
    """Random incoming gradients in [low, high], never all ones (the oracle checks ones separately);
    ``scalar`` draws a plain float, the dout of a loss."""
    plain = frozenset({Feature.NEGATIVE_ZERO})
    elements = float_elements(low, high, dtype, plain)
    if scalar:
        return elements.filter(lambda g: g != 1.0)
    if int(np.prod(shape)) > ELEMENTWISE_LIMIT:
        arrays = _seeded_array(shape, low, high, dtype, plain)
    else:
        from hypothesis.extra import numpy as hnp

        arrays = hnp.arrays(dtype, shape, elements=elements)
    return arrays.filter(lambda g: g.size == 0 or not np.all(g == 1))


def generic_features(values: dict[str, Any], floats: Collection[str]) -> set[Feature]:
    """Features any row can read off its values: extreme magnitudes, -0.0, rank 4, large axes."""
    found: set[Feature] = set()
    for name, value in values.items():
        if not isinstance(value, np.ndarray):
            continue
        if value.ndim == 4:
            found.add(Feature.RANK4)
        if any(n > SMALL_AXIS for n in value.shape) or (value.ndim and value.shape[0] > 8):
            found.add(Feature.LARGE)
        if name in floats and value.size:
            if np.max(np.abs(value)) >= EXTREME:
                found.add(Feature.EXTREME)
            if np.any((value == 0) & np.signbit(value)):
                found.add(Feature.NEGATIVE_ZERO)
    return found
