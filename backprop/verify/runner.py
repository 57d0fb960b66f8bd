"""The reference side: a row's JAX reference, compiled once per shape, differentiated by ``jax.vjp``.

Every expected value comes from here: the float64 reference, the same on absolute values (the magnitude of
the summed terms, which sets the rounding scale) and, for a narrower dtype, the reference run natively in
that dtype. The oracle and the finite-difference witness both use it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backprop.verify import cache
from backprop.verify.mismatch import Node
from backprop.verify.row import Row

# JAX is imported only where a reference is computed: a run whose every reference result is in the result
# cache (``cache.recall``) never imports it, and neither does a module that only names these types.

_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
CACHE_SIZE = 512
"""Compiled references kept at once; the least recently used is dropped beyond this, so memory stays
flat however many examples a run checks."""

Run = tuple[tuple[Any, ...], tuple[Any, ...]]
"""One run of a reference: its outputs and its gradients."""

_compiled: OrderedDict[tuple[Any, ...], Callable[..., Any]] = OrderedDict()


def _leaves(tree: Any) -> Iterator[Any]:
    """The arrays of nested tuples and dicts (keys sorted, as JAX orders them); None holds none."""
    if isinstance(tree, dict):
        for key in sorted(tree):
            yield from _leaves(tree[key])
    elif isinstance(tree, tuple | list):
        for item in tree:
            yield from _leaves(item)
    elif tree is not None:
        yield tree


def _signature(tree: Any) -> tuple[Any, ...]:
    return tuple((np.shape(x), np.asarray(x).dtype.str) for x in _leaves(tree))


def _vjp(row: Row, statics: tuple[tuple[str, Any], ...]) -> Callable[..., Any]:
    """``(diff, consts, cots) -> (outputs, grads)`` of the row's reference, traceable."""
    import jax

    names = [a.name for a in row.differentiable]
    single = len(row.outputs) == 1

    def vjp(diff: tuple[Any, ...], consts: dict[str, Any], cots: tuple[Any, ...]) -> Any:
        def f(*primals: Any) -> Any:
            return row.reference(
                **dict(zip(names, primals, strict=True)), **consts, **dict(statics), **row.eps_keyword
            )

        out, pullback = jax.vjp(f, *diff)
        return out, pullback(cots[0] if single else cots)

    return vjp


def _compile(
    cache_key: tuple[Any, ...], make: Callable[[], Callable[..., Any]], counted: bool = True
) -> Callable[..., Any]:
    """``make()`` jitted and held under ``cache_key`` (least recently used dropped beyond ``CACHE_SIZE``);
    its compilation counted in ``compilations`` unless ``counted`` is False."""
    held = _compiled.get(cache_key)
    if held is not None:
        _compiled.move_to_end(cache_key)
        return held
    import jax

    # These functions run on a handful of small arrays: compile time dominates, so skip the slow passes.
    cache.ensure()
    compiled = jax.jit(make(), compiler_options=_FAST_COMPILE)
    first = counted

    def run(*args: Any) -> Any:
        nonlocal first
        if not first:
            return compiled(*args)
        first = False
        with cache.counting():  # the call that compiles, or reads the compiled program from disk
            return compiled(*args)

    _compiled[cache_key] = run
    while len(_compiled) > CACHE_SIZE:
        _compiled.popitem(last=False)
    return run


def _reference_vjp(
    row: Row, statics: tuple[tuple[str, Any], ...], key: tuple[Any, ...]
) -> Callable[..., Any]:
    cache_key = (row, statics, key)
    held = _compiled.get(cache_key)
    if held is not None:
        return held
    global _misses
    _misses += 1
    return _compile(cache_key, functools.partial(_vjp, row, statics))


_misses = 0
_built: set[tuple[Any, ...]] = set()
"""The shapes (``_shape_key``) whose reference this process compiled."""
_recalled: set[tuple[Any, ...]] = set()
"""The shapes whose results came from the result cache in this process."""


def compiled_count() -> int:
    """How many compiled references are held now (bounded by ``CACHE_SIZE``)."""
    return len(_compiled)


def compilations() -> tuple[int, int]:
    """(references built, of which supplied by a persistent cache) in this process so far: each reference
    built is one XLA compilation, one read of the compilation cache, or, for a shape whose results all
    came from the result cache, none at all."""
    recalled_only = len(_recalled - _built)  # a shape compiled here and also recalled counts once, built
    return _misses + recalled_only, cache.hits() + recalled_only


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


def _split(
    row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...], dtype: Any
) -> tuple[tuple[Any, ...], dict[str, Any], tuple[Any, ...], tuple[tuple[str, Any], ...]]:
    """(differentiated, constant arrays, cotangents) in ``dtype``, and the plain values compiled in."""

    def cast(value: Any) -> Any:
        arr = np.asarray(value)
        return arr.astype(dtype) if np.issubdtype(arr.dtype, np.floating) else arr

    differentiated = {a.name for a in row.differentiable}
    diff = tuple(cast(values[a.name]) for a in row.differentiable)
    rest = {k: v for k, v in values.items() if k not in differentiated}
    consts = {k: cast(v) for k, v in rest.items() if _is_array(v)}
    statics = tuple(sorted((k, v) for k, v in rest.items() if not _is_array(v)))
    return diff, consts, tuple(cast(c) for c in cotangents), statics


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
    diff, consts, cots, statics = _split(row, values, cotangents, dtype)
    return _reference_vjp(row, statics, _signature((diff, consts, cots))), diff, consts, cots


def reference_runs(
    row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...], dtype: Any = np.float64
) -> list[Run]:
    """(outputs, gradients) of the compiled reference in float64, as given and on absolute values, and,
    for a narrower ``dtype``, once more natively in that dtype; each from the result cache when it holds
    them."""
    runs = _float64_runs(row, values, cotangents)
    if np.dtype(dtype) != np.float64:
        runs.append(_native_run(row, values, cotangents, dtype))
    return runs


def _cached(
    row: Row,
    values: Mapping[str, Any],
    cotangents: tuple[Any, ...],
    dtype: Any,
    compute: Callable[[], list[Run]],
) -> list[Run]:
    """``compute()``, or what it returned for the same request before (the result cache)."""
    key = _result_key(row, values, cotangents, dtype)
    shape = _shape_key(row, values, cotangents, dtype)
    if key is not None:
        held = cache.recall(key)
        runs = _unpack(held) if held is not None else None
        if runs is not None:
            _recalled.add(shape)
            return runs
    before = _misses
    runs = [
        (tuple(np.asarray(o) for o in outs), tuple(np.asarray(g) for g in grads)) for outs, grads in compute()
    ]
    if _misses > before:
        _built.add(shape)
    if key is not None:
        cache.keep(key, *_pack(runs))
    return runs


def _native_run(row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...], dtype: Any) -> Run:
    def compute() -> list[Run]:
        import reference

        # a carried state is computed natively too: a layer in this dtype carries its own rounding into it
        completed = row.complete(values, native=np.dtype(dtype))
        native, *arguments = reference_inputs(row, completed, cotangents, dtype)
        with reference.x64():
            out, grads = native(*arguments)
        return [((out if isinstance(out, tuple) else (out,)), tuple(grads))]

    return _cached(row, values, cotangents, dtype, compute)[0]


def _float64_runs(row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> list[Run]:
    def compute() -> list[Run]:
        import reference

        # the run on absolute values is a second call of the same compiled function: one program per shape
        # compiles faster than a fused one twice its size (measured: a cold check takes twice as long with
        # the float64, absolute and native runs fused), and compilation dominates a cold run
        fn, diff, consts, cots = reference_inputs(row, values, cotangents)
        with reference.x64():
            runs = [
                fn(diff, consts, cots),
                fn(tuple(np.abs(d) for d in diff), consts, tuple(np.abs(c) for c in cots)),
            ]
        return [(out if isinstance(out, tuple) else (out,), tuple(grads)) for out, grads in runs]

    return _cached(row, values, cotangents, np.float64, compute)


# ---- the result cache's key -----------------------------------------------------------------------------

_PLAIN = (bool, int, float, complex, str, type(None))


def _plain(value: Any) -> str | None:
    """An exact text of a plain value (a stride, a flag, a ``conv_param``), or None for anything else."""
    if type(value) in _PLAIN:
        return f"{type(value).__name__}:{value!r}"
    if type(value) in (tuple, list):
        parts = [_plain(v) for v in value]
        return None if None in parts else f"{type(value).__name__}({','.join(map(str, parts))})"
    if type(value) is dict and all(type(k) is str for k in value):
        parts = [_plain(value[k]) for k in sorted(value)]
        if None in parts:
            return None
        return "dict(" + ",".join(f"{k!r}={p}" for k, p in zip(sorted(value), parts, strict=True)) + ")"
    return None


def _feed(digest: Any, name: str, value: Any) -> bool:
    """Add one value, exactly, to ``digest``; False for a value that cannot be keyed (the run is then not
    cached)."""
    digest.update(f"\x00{name}\x00".encode())
    if _is_array(value):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biufc":
            return False
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.tobytes())  # in C order, whatever the layout
        return True
    text = _plain(value)
    if text is None:
        return False
    digest.update(text.encode())
    return True


def _library(row: Row) -> bool:
    """Whether ``row`` computes its reference with the library's own code (the registered row's reference
    and carried state): only then does the fingerprint of that code stand for it."""
    from backprop.verify.registry import get_row

    try:
        registered = get_row(row.name)
    except ValueError:
        return False
    return registered.reference is row.reference and getattr(registered, "carry", None) is getattr(
        row, "carry", None
    )


_SOURCES = ("runner.py", "row.py", "network.py", "model.py", "lazy.py", "specs")
_VERSIONED = ("jax", "jaxlib", "numpy", "jax-cuda12-plugin", "jax-cuda13-plugin", "jax-rocm-plugin", "libtpu")
_ENVIRONMENT = (
    "JAX_PLATFORMS",
    "JAX_PLATFORM_NAME",
    "XLA_FLAGS",
    "JAX_DEFAULT_MATMUL_PRECISION",
    "JAX_NUMPY_DTYPE_PROMOTION",
    "JAX_DEFAULT_DTYPE_BITS",
    "JAX_ENABLE_X64",
    "CUDA_VISIBLE_DEVICES",
)


@functools.cache
def _fingerprint() -> str:
    """What every cached result depends on besides its example: the source of the references, of the
    rows and of this module, the versions of JAX, jaxlib, NumPy and any accelerator plugin, the machine
    and the environment that chooses JAX's backend. Any change starts a new set of entries."""
    import reference

    digest = hashlib.blake2b(digest_size=16)
    here = Path(__file__).resolve().parent
    roots = [here / name for name in _SOURCES] + [Path(reference.__file__).resolve().parent]
    for root in roots:
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(root.parent)).encode() + b"\x00" + path.read_bytes())
    for name in _VERSIONED:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{name}={version};".encode())
    for name in _ENVIRONMENT:
        digest.update(f"{name}={os.environ.get(name)!r};".encode())
    digest.update(f"{sys.version};{platform.machine()};{platform.system()}".encode())
    return digest.hexdigest()


def _result_key(row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...], dtype: Any) -> str | None:
    """The result cache's key of one reference request: everything its runs depend on, exactly; None
    when the cache is off or the request cannot be keyed (a row with a reference of its own, a value
    that is not an array nor plain)."""
    if not cache.results_enabled() or not _library(row):
        return None
    digest = hashlib.blake2b(digest_size=20)
    for name in sorted(values):
        if not _feed(digest, name, values[name]):
            return None
    for i, cotangent in enumerate(cotangents):
        if not _feed(digest, f"dout{i}", cotangent):
            return None
    names = ",".join(a.name for a in row.differentiable)
    outputs = ",".join(row.outputs)
    return "|".join(
        (
            _fingerprint(),
            row.name,
            names,
            outputs,
            repr(row.eps_keyword),
            np.dtype(dtype).str,
            digest.hexdigest(),
        )
    )


def _shape_key(
    row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...], dtype: Any
) -> tuple[Any, ...]:
    """A request's compiled function, named by its shapes and dtypes as compiled (for ``compilations``)."""
    arrays = {k: v for k, v in values.items() if _is_array(v)}
    plain = tuple(sorted((k, _plain(v)) for k, v in values.items() if not _is_array(v)))
    floats = np.dtype(dtype).str
    signature = tuple(
        (shape, floats if np.dtype(kind).kind == "f" else kind)
        for shape, kind in _signature((arrays, cotangents))
    )
    return (row.name, plain, signature, floats)


def _pack(runs: list[Run]) -> tuple[list[list[int]], list[NDArray[Any]]]:
    """(layout, arrays) of runs, for ``cache.keep``: how many outputs and gradients each run has."""
    layout = [[len(outs), len(grads)] for outs, grads in runs]
    return layout, [np.asarray(a) for outs, grads in runs for a in (*outs, *grads)]


def _unpack(held: tuple[Any, list[NDArray[Any]]]) -> list[Run] | None:
    """The runs ``_pack`` stored, or None for a layout that does not fit its arrays."""
    layout, arrays = held
    runs: list[Run] = []
    at = 0
    try:
        for n_out, n_grad in layout:
            outs, grads = arrays[at : at + n_out], arrays[at + n_out : at + n_out + n_grad]
            if len(outs) != n_out or len(grads) != n_grad:
                return None
            runs.append((tuple(outs), tuple(grads)))
            at += n_out + n_grad
    except (TypeError, ValueError):
        return None
    return runs if at == len(arrays) and runs else None


def _per_sample_max(value: NDArray[np.float64], batched: bool) -> NDArray[np.float64]:
    finite = np.where(np.isfinite(value), np.abs(value), 0.0)
    if batched and value.ndim >= 1:
        return np.asarray(np.max(finite, axis=tuple(range(1, value.ndim)), keepdims=True, initial=0.0))
    return np.asarray(np.max(finite, initial=0.0))


def _part(which: int, i: int, run: Run) -> Any:
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
    native run for a narrower ``dtype`` is computed (or recalled) on first use."""
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

        import jax

        compiled = _epsilon_compiled[row] = jax.jit(loss, static_argnums=2, compiler_options=_FAST_COMPILE)
    import reference

    arrays = {k: np.asarray(v) for k, v in values.items() if _is_array(v)}
    statics = tuple(sorted((k, v) for k, v in values.items() if not _is_array(v)))
    with reference.x64():
        return np.asarray(compiled(arrays, np.float64(eps), statics), dtype=np.float64)


# ---- the nodes of the book's graph, for the culprit search (issue 20) ----------------------------------


def _tapping_outputs(row: Row) -> Callable[..., Any]:
    """The row's graph (or, for a row without one, its reference) with each output tapped under the row's
    output name, unless the graph taps a node of that name itself: every row has its output nodes, whose
    gradient is the cotangent (1 for a loss)."""
    graph = row.graph
    reference = row.reference

    def tapped(tap: Callable[[str, Any], Any], **arguments: Any) -> Any:
        seen: set[str] = set()

        def named(name: str, value: Any) -> Any:
            seen.add(name)
            return tap(name, value)

        out = reference(**arguments) if graph is None else graph(named, **arguments)
        single = len(row.outputs) == 1
        parts = (out,) if single else tuple(out)
        parts = tuple(p if n in seen else tap(n, p) for n, p in zip(row.outputs, parts, strict=True))
        return parts[0] if single else parts

    return tapped


_node_names: dict[tuple[Any, ...], tuple[str, ...]] = {}
"""The names of each compiled graph's nodes, in the order it taps them, written when it is traced."""


def _graph_vjp(row: Row, statics: tuple[tuple[str, Any], ...], key: tuple[Any, ...]) -> Callable[..., Any]:
    """``(diff, consts, cots) -> (values, input grads, node grads)`` of the row's graph, traceable; the
    nodes' names go to ``_node_names[key]`` as it is traced."""
    from reference._graph import pullback

    graph = _tapping_outputs(row)

    def run(diff: dict[str, Any], consts: dict[str, Any], cots: tuple[Any, ...]) -> Any:
        names, values, input_grads, node_grads = pullback(
            graph, {**consts, **dict(statics), **row.eps_keyword}
        )(diff, cots)
        _node_names[key] = names
        return values, input_grads, node_grads

    return run


def nodes(row: Row, values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> tuple[Node, ...]:
    """Every node of the row's computational graph at one example, in float64: its right forward value and
    the right gradient of the loss at it. The graph's nodes in the order it taps them (the outputs among
    them, named as the row names its outputs; a row without a graph has these alone), then the
    differentiated inputs, then the constant arrays (labels, running statistics, masks) with no gradient.
    ``values`` are the example's values as the oracle holds them (carried state completed);
    ``cotangents`` one per output (1 for a loss).

    Compiled as the reference is (measured: on a shape not seen before, running the graph eagerly costs
    several seconds of per-operation compilation, ten times a compilation of the whole)."""
    import reference
    from reference._graph import held_nodes

    diff, consts, cots, statics = _split(row, values, cotangents, np.float64)
    named = dict(zip((a.name for a in row.differentiable), diff, strict=True))
    key = ("nodes", row, statics, _signature((named, consts, cots)))
    fn = _compile(key, functools.partial(_graph_vjp, row, statics, key), counted=False)
    with reference.x64():
        found, input_grads, node_grads = fn(named, consts, cots)
    held = held_nodes(_node_names[key], found, named, input_grads, node_grads)
    for name, value in consts.items():
        held.setdefault(name, (np.asarray(value, np.float64), None))
    return tuple(Node(name, value, grad) for name, (value, grad) in held.items())
