"""The reference side: a row's JAX reference, compiled once per shape, differentiated by ``jax.vjp``.

Every expected value comes from here: the float64 reference, the same on absolute values (the magnitude of
the summed terms, which sets the rounding scale) and, for a narrower dtype, the reference run natively in
that dtype. The oracle and the finite-difference witness both use it.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from numpy.typing import NDArray

import reference
from backprop.verify import cache
from backprop.verify.row import Row

_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
CACHE_SIZE = 512
"""Compiled references kept at once; the least recently used is dropped beyond this, so memory stays
flat however many examples a run checks."""

_compiled: OrderedDict[tuple[Any, ...], Callable[..., Any]] = OrderedDict()


def _signature(tree: Any) -> tuple[Any, ...]:
    leaves = jax.tree_util.tree_leaves(tree)
    return tuple((np.shape(x), np.asarray(x).dtype.str) for x in leaves)


def _reference_vjp(
    row: Row, statics: tuple[tuple[str, Any], ...], key: tuple[Any, ...]
) -> Callable[..., Any]:
    cache_key = (row, statics, key)
    held = _compiled.get(cache_key)
    if held is not None:
        _compiled.move_to_end(cache_key)
        return held
    names = [a.name for a in row.differentiable]
    single = len(row.outputs) == 1

    def vjp(diff: tuple[Any, ...], consts: dict[str, Any], cots: tuple[Any, ...]) -> Any:
        def f(*primals: Any) -> Any:
            return row.reference(
                **dict(zip(names, primals, strict=True)), **consts, **dict(statics), **row.eps_keyword
            )

        out, pullback = jax.vjp(f, *diff)
        return out, pullback(cots[0] if single else cots)

    # These functions run on a handful of small arrays: compile time dominates, so skip the slow passes.
    cache.ensure()
    compiled = jax.jit(vjp, compiler_options=_FAST_COMPILE)
    first = True

    def run(*args: Any) -> Any:
        nonlocal first
        if not first:
            return compiled(*args)
        first = False
        with cache.counting():  # the call that compiles, or reads the compiled program from disk
            return compiled(*args)

    global _misses
    _misses += 1
    _compiled[cache_key] = run
    while len(_compiled) > CACHE_SIZE:
        _compiled.popitem(last=False)
    return run


_misses = 0


def compiled_count() -> int:
    """How many compiled references are held now (bounded by ``CACHE_SIZE``)."""
    return len(_compiled)


def compilations() -> tuple[int, int]:
    """(references built, of which loaded from the persistent cache) in this process so far: each
    reference built is one XLA compilation, or one read of the disk cache."""
    return _misses, cache.hits()


@dataclass(frozen=True)
class Expected:
    """One reference output or gradient: the float64 value, the magnitude of its summed terms, and the
    same reference run natively in the layer's dtype (None for float64)."""

    value: NDArray[np.float64]
    terms: NDArray[np.float64]
    native: NDArray[np.float64] | None = None
    batched: bool = False
    """Its leading axis is the batch: its scale is taken per sample."""
    later: Callable[[], NDArray[np.float64]] | None = None
    """The native run, computed only when a comparison needs it: most right values pass without it, and
    the native run costs a compilation of its own per shape."""

    def native_run(self) -> NDArray[np.float64] | None:
        return self.native if self.native is not None or self.later is None else self.later()


@dataclass(frozen=True)
class Reference:
    outputs: tuple[Expected, ...]
    grads: dict[str, Expected]


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray | np.generic) or hasattr(value, "__array__")


def reference_inputs(
    row: Row,
    values: Mapping[str, Any],
    cotangents: tuple[Any, ...],
    dtype: Any = np.float64,
    terms: bool = False,
) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], tuple[Any, ...]]:
    """The compiled ``(diff, consts, cots) -> (outputs, grads)`` of the row; its arguments in ``dtype``.

    Arrays that are not differentiated (labels, running statistics, a captured mask) are traced
    constants; only plain Python values (stride, a flag) are compiled in.
    """

    def cast(value: Any) -> Any:
        arr = np.asarray(value)
        return arr.astype(dtype) if np.issubdtype(arr.dtype, np.floating) else arr

    differentiated = {a.name for a in row.differentiable}
    diff = tuple(cast(values[a.name]) for a in row.differentiable)
    rest = {k: v for k, v in values.items() if k not in differentiated}
    consts = {k: cast(v) for k, v in rest.items() if _is_array(v)}
    statics = tuple(sorted((k, v) for k, v in rest.items() if not _is_array(v)))
    cots = tuple(cast(c) for c in cotangents)
    return _reference_vjp(row, statics, _signature((diff, consts, cots))), diff, consts, cots


def reference_runs(
    row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...], dtype: Any = np.float64
) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(outputs, gradients) of the compiled reference in float64, as given and on absolute values, and,
    for a narrower ``dtype``, once more natively in that dtype."""
    runs = _float64_runs(row, values, cotangents)
    if np.dtype(dtype) != np.float64:
        runs.append(_native_run(row, values, cotangents, dtype))
    return runs


def _native_run(
    row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...], dtype: Any
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    # a carried state is computed natively too: a layer in this dtype carries its own rounding into the call
    values = row.complete(values, native=np.dtype(dtype))
    native, *arguments = reference_inputs(row, values, cotangents, dtype)
    with reference.x64():
        out, grads = native(*arguments)
    return (out if isinstance(out, tuple) else (out,)), tuple(grads)


def _float64_runs(
    row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...]
) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    # the run on absolute values is a second call of the same compiled function: one program per shape
    # compiles faster than a fused one twice its size, and compilation dominates
    fn, diff, consts, cots = reference_inputs(row, values, cotangents)
    with reference.x64():
        runs = [
            fn(diff, consts, cots),
            fn(tuple(np.abs(d) for d in diff), consts, tuple(np.abs(c) for c in cots)),
        ]
    return [(out if isinstance(out, tuple) else (out,), tuple(grads)) for out, grads in runs]


def _per_sample_max(value: NDArray[np.float64], batched: bool) -> NDArray[np.float64]:
    finite = np.where(np.isfinite(value), np.abs(value), 0.0)
    if batched and value.ndim >= 1:
        return np.asarray(np.max(finite, axis=tuple(range(1, value.ndim)), keepdims=True, initial=0.0))
    return np.asarray(np.max(finite, initial=0.0))


def _part(which: int, i: int, run: tuple[tuple[Any, ...], tuple[Any, ...]]) -> Any:
    """The ``i``-th output (``which`` 0) or gradient (1) of a run."""
    return run[which][i]


def _shared_floor(row: Row, grads: tuple[Any, ...], floor: Mapping[str, Any]) -> dict[str, Any]:
    """Each gradient's magnitude floor raised to the largest finite element of any of the row's gradients
    (``Row.shared_scale``)."""
    largest = max(
        (float(_per_sample_max(np.asarray(g, dtype=np.float64), False)) for g in grads), default=0.0
    )
    return {
        a.name: np.maximum(np.asarray(floor.get(a.name, 0.0), dtype=np.float64), largest)
        for a in row.differentiable
    } | {k: v for k, v in floor.items() if k not in {a.name for a in row.differentiable}}


def reference_vjp(
    row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...], dtype: Any = np.float64
) -> Reference:
    """Every reference output and gradient, with the magnitude of its terms (see ``reference_runs``); the
    native run for a narrower ``dtype`` is computed on first use."""
    runs = _float64_runs(row, values, cotangents)
    condition = row.condition(values) if row.condition else {}
    floor = row.magnitude({**values, **row.eps_keyword}, cotangents) if row.magnitude else {}
    batch_args = {a.name for a in row.args if a.batch}
    native = functools.cache(lambda: _native_run(row, values, cotangents, dtype))
    narrow = np.dtype(dtype) != np.float64

    def expected(name: str, parts: list[Any], batched: bool, pick: Callable[[Any], Any]) -> Expected:
        value, terms = (np.asarray(p, dtype=np.float64) for p in parts)
        if name in floor:
            terms = np.maximum(terms, np.asarray(floor[name], dtype=np.float64))
        if name in condition:
            terms = np.maximum(terms, _per_sample_max(value, batched)) * np.asarray(condition[name])

        def later() -> NDArray[np.float64]:
            return np.asarray(pick(native()), dtype=np.float64)

        return Expected(value, terms, None, batched and value.ndim >= 1, later if narrow else None)

    batched_outputs = bool(batch_args)
    if row.shared_scale:
        floor = _shared_floor(row, runs[0][1], floor)
    return Reference(
        outputs=tuple(
            expected(n, [r[0][i] for r in runs], batched_outputs, functools.partial(_part, 0, i))
            for i, n in enumerate(row.outputs)
        ),
        grads={
            a.name: expected(
                a.name, [r[1][i] for r in runs], a.name in batch_args, functools.partial(_part, 1, i)
            )
            for i, a in enumerate(row.differentiable)
        },
    )


_epsilon_compiled: dict[Row, Callable[..., Any]] = {}


def epsilon_loss(row: Row, values: Mapping[str, Any], eps: float) -> NDArray[np.float64] | None:
    """The row's loss as written with ``-log(y + eps)`` (``Row.epsilon``), in float64; None for a row without
    that formula. Compiled once per shape and plain values (sizes, switches, a ``conv_param``), which are
    compiled in as the reference's are; arrays and ``eps`` are traced, so the eps tried in turn share it."""
    if row.epsilon is None:
        return None
    compiled = _epsilon_compiled.get(row)
    if compiled is None:
        epsilon = row.epsilon

        def loss(arrays: dict[str, Any], eps: Any, statics: tuple[tuple[str, Any], ...]) -> Any:
            return epsilon(**arrays, **dict(statics), eps=eps)

        compiled = _epsilon_compiled[row] = jax.jit(loss, static_argnums=2, compiler_options=_FAST_COMPILE)
    arrays = {k: np.asarray(v) for k, v in values.items() if _is_array(v)}
    statics = tuple(sorted((k, v) for k, v in values.items() if not _is_array(v)))
    with reference.x64():
        return np.asarray(compiled(arrays, np.float64(eps), statics), dtype=np.float64)
