"""Throughput of the oracle against a naive Hypothesis loop, cold and warm, in one process and one run.

1. For every registry row, in float64: the oracle's checked examples per second (``verify``), and those of
   a naive baseline written here, a plain ``@given`` test that draws from the oracle's own strategy
   (``examples(row)``) with the same ``max_examples``, seed and settings, builds the layer through the
   row, runs forward and backward with the drawn cotangent, computes the reference with one ``jax.jit``
   of ``jax.vjp`` per row and compares the outputs and every gradient with
   ``numpy.testing.assert_allclose`` at the row's nominal rtol/atol. The oracle does much more per
   example (four stages, a reference on absolute values, a tolerance scaled to the summed terms); the
   naive loop compares once and counts the examples where plain ``assert_allclose`` disagrees ("flagged":
   the layers are right, so these would be false alarms). The two draw the same examples until
   Hypothesis's mutator, which weighs the ``target()`` score the oracle reports on every example, takes
   another turn (after 12-30 examples; never for relu, whose errors are all zero): the shapes and value
   domains are the same, and each loop's distinct shapes (one compilation each) are shown.
2. The first pass is cold: nothing compiled in the process yet and, unless ``--keep-cache``, the oracle's
   persistent compile cache pointed at a fresh temporary directory (``BACKPROP_CACHE_DIR``, removed at
   exit). The naive loop shares JAX's process-wide cache setting, so cold it only pays the writes. The
   second pass runs both loops again on the same seeds and examples: warm, everything compiled.
3. One check of affine at (N, D, H) = (32, 64, 32), warm: the oracle's ``check_example`` against
   ``jax.test_util.check_grads(order=1, modes=["rev"])`` of the reference on the same arrays.
4. The CI cost of every row: the seconds of its default run (float64 then float32, as ``backprop-verify``
   runs them) in the cold pass, with the once-per-process cost of imports and of starting JAX.

The last table is the speed of each manual layer (forward + backward, NumPy, driven through its row) as a
ratio against its compiled JAX reference (forward + vjp), both on the same fixed example, drawn at the
largest of a fixed set of shapes from the row's own strategy: every row, present or future, is timed on
moderately large arrays, so the timing is not only Python call overhead.

    python benchmarks/verify_throughput.py [--examples 100] [--seed 0] [--keep-cache]
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import shutil
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

if TYPE_CHECKING:
    from backprop.verify import Example, LayerReport, Row

# JAX, ``reference`` and ``backprop.verify`` are imported inside the functions: ``main`` chooses the
# persistent cache directory (an environment variable) and times the imports before anything loads them.

DTYPE = "float64"
DRAWN = 500
"""Shapes drawn (deterministically) from a row's strategy; the example is drawn at the largest of them."""
MAX_ELEMENTS = 1024
"""Elements of the timed example, outputs included: kept moderate, so every row's strategy can fill it."""
AFFINE_NDH = (32, 64, 32)
"""(N, D, H) of the single affine check against ``check_grads``."""
REPEATS = 9
"""Timed repeats of the single check (after one warm-up); the median is reported."""


# ---- drawing --------------------------------------------------------------------------------------------


def _drawn(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """The first ``n`` values Hypothesis draws from ``strategy``, the same on every run."""
    drawn: list[Any] = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


def _elements(shapes: Mapping[str, tuple[int, ...]]) -> int:
    return sum(math.prod(shape) for shape in shapes.values())


def _pinned(row: Row, shapes: dict[str, tuple[int, ...]]) -> tuple[Row, Example]:
    """The row with a pool of one shape dict, and the fifth example drawn from it (deterministic)."""
    from backprop.verify import examples

    pinned = replace(row, shapes=(shapes,))
    return pinned, _drawn(examples(pinned, DTYPE), 5)[-1]


def _fixed_example(row: Row) -> tuple[Row, Example]:
    """The row with its shapes pinned to the largest of ``DRAWN`` drawn from its own strategy (up to
    ``MAX_ELEMENTS``), and an example at those shapes."""
    candidates = sorted(
        (s for s in _drawn(row.draw_shapes(frozenset()), DRAWN) if _elements(s) <= MAX_ELEMENTS),
        key=_elements,
        reverse=True,
    )
    for shapes in candidates:
        try:
            return _pinned(row, shapes)
        except Unsatisfiable:  # too large to fill after all: the next largest
            continue
    raise SystemExit(f"benchmark: no example of {row.name!r} could be drawn")


# ---- the naive baseline ---------------------------------------------------------------------------------


@dataclass
class Naive:
    """One naive run: examples checked, seconds, and examples where ``assert_allclose`` disagreed."""

    examples: int = 0
    seconds: float = 0.0
    flagged: int = 0
    shapes: set[tuple[Any, ...]] = field(default_factory=set)
    first: str = ""
    """The first disagreement's message, first line."""


_naive_jit: dict[Row, Callable[..., Any]] = {}
"""One jitted ``jax.vjp`` per row for the whole process (JAX recompiles it per new shape): the warm pass
finds every shape compiled, as the oracle's does."""


def _naive_reference(row: Row) -> Callable[..., Any]:
    """``(diff, consts, cots, statics) -> (outputs, grads)``: jit of ``jax.vjp`` of the row's reference,
    with JAX's default compiler options."""
    import jax

    fn = _naive_jit.get(row)
    if fn is not None:
        return fn
    names = [a.name for a in row.differentiable]
    single = len(row.outputs) == 1

    def vjp(
        diff: tuple[Any, ...], consts: dict[str, Any], cots: tuple[Any, ...], statics: tuple[Any, ...]
    ) -> Any:
        def f(*primals: Any) -> Any:
            return row.reference(**dict(zip(names, primals, strict=True)), **consts, **dict(statics))

        out, pullback = jax.vjp(f, *diff)
        return out, pullback(cots[0] if single else cots)

    fn = _naive_jit[row] = jax.jit(vjp, static_argnums=(3,))
    return fn


def naive(row: Row, n: int, seed: int) -> Naive:
    """The baseline: a plain ``@given`` test over ``examples(row)``, one forward/backward, one jitted
    reference and ``assert_allclose`` on every output and gradient per example (see the module)."""
    import reference
    from backprop.verify import examples
    from backprop.verify.search import _own_constants, search_settings
    from backprop.verify.stages import with_capture

    run = Naive()
    tol = row.tolerance(DTYPE)
    position = {a.name: i for i, a in enumerate(row.differentiable)}
    differentiated = set(position)

    def close(actual: Any, expected: Any, what: str) -> bool:
        try:
            np.testing.assert_allclose(actual, np.asarray(expected), rtol=tol.rtol, atol=tol.atol)
        except AssertionError as exc:
            run.first = run.first or f"{what}: {str(exc).strip().splitlines()[0]}"
            return False
        return True

    # The settings of the oracle's search, so that the same seed draws the same examples (as far as
    # Hypothesis allows: see the module).
    @search_settings(n)
    @hypothesis_seed(seed)
    @given(examples(row, DTYPE))
    def test(ex: Example) -> None:
        run.examples += 1
        run.shapes.add(tuple(sorted(ex.shapes(row.outputs).items())))
        given = dict(ex.values)  # a network's row rebinds its parameters in the dict it builds from
        layer = row.build(row.layer, given)
        raw = row.call(layer, given)
        result = row.backward(layer, ex.cotangents)

        values = with_capture(row, ex.values, layer)  # a dropout mask, if the row reads one
        diff = tuple(np.asarray(values[a.name]) for a in row.differentiable)
        rest = {k: v for k, v in values.items() if k not in differentiated}
        consts = {k: np.asarray(v) for k, v in rest.items() if isinstance(v, np.ndarray | np.generic)}
        statics = tuple(sorted((k, v) for k, v in rest.items() if k not in consts))
        cots = tuple(np.asarray(c, dtype=DTYPE) for c in ex.cotangents)
        with reference.x64():
            out, grads = _naive_reference(row)(diff, consts, cots, statics)
        outs = out if isinstance(out, tuple) else (out,)

        ok = [close(a, e, o) for o, a, e in zip(row.outputs, row.outputs_of(raw), outs, strict=True)]
        for read in row.gradients(layer, result, given):
            ok.append(close(read.value, grads[position[read.arg.name]], read.where))
        run.flagged += not all(ok)

    start = time.perf_counter()
    with _own_constants():  # as the oracle draws: only the rows' domains, not numbers from local modules
        test()
    run.seconds = time.perf_counter() - start
    return run


# ---- the passes -----------------------------------------------------------------------------------------


@dataclass
class Timing:
    """One row in one pass: the oracle in float64 (and float32 when cold), and the naive loop."""

    row: str
    oracle: LayerReport
    naive: Naive
    oracle32: LayerReport | None = None


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else math.nan


def _pass(rows: tuple[Row, ...], n: int, seed: int, cold: bool) -> list[Timing]:
    """Every row through the oracle and the naive loop; cold, the oracle's float32 run too, in the order
    of ``backprop-verify`` (float64 then float32), for the CI cost report."""
    from backprop.verify import verify

    timings = []
    for row in rows:
        oracle = verify(row.layer, row, max_examples=n, seed=seed, dtype=DTYPE)
        oracle32 = verify(row.layer, row, max_examples=n, seed=seed, dtype="float32") if cold else None
        timings.append(Timing(row.name, oracle, naive(row, n, seed), oracle32))
    return timings


def _print_pass(label: str, timings: list[Timing]) -> None:
    print(f"\n{label}: {DTYPE}, checked examples per second, oracle (verify) vs naive @given loop")
    print(
        f"{'layer':<18} {'oracle n':>8} {'shapes':>6} {'s':>7} {'ex/s':>7}"
        f" {'naive n':>8} {'shapes':>6} {'s':>7} {'ex/s':>7} {'flagged':>7} {'oracle/naive':>12}"
    )
    for t in timings:
        o, v = t.oracle, t.naive
        ours, theirs = _rate(o.examples, o.seconds), _rate(v.examples, v.seconds)
        verdict = "" if o.passed else "  (oracle: FAILED)"
        print(
            f"{t.row:<18} {o.examples:>8} {o.distinct_shapes:>6} {o.seconds:>7.2f} {ours:>7.1f}"
            f" {v.examples:>8} {len(v.shapes):>6} {v.seconds:>7.2f} {theirs:>7.1f}"
            f" {v.flagged:>7} {ours / theirs:>12.2f}{verdict}"
        )
    on, os_ = sum(t.oracle.examples for t in timings), sum(t.oracle.seconds for t in timings)
    vn, vs = sum(t.naive.examples for t in timings), sum(t.naive.seconds for t in timings)
    vf = sum(t.naive.flagged for t in timings)
    ours, theirs = _rate(on, os_), _rate(vn, vs)
    print(
        f"{'all':<18} {on:>8} {'':>6} {os_:>7.2f} {ours:>7.1f}"
        f" {vn:>8} {'':>6} {vs:>7.2f} {theirs:>7.1f} {vf:>7} {ours / theirs:>12.2f}"
    )
    for t in timings:
        if t.naive.first:
            print(f"  naive, first flagged of {t.row}: {t.naive.first}")


def _print_costs(cold: list[Timing], warm: list[Timing], n: int, startup: tuple[float, float]) -> None:
    """Seconds of each row's default run (both dtypes), cold, for predicting CI time per added row."""
    note = "" if n == 100 else "  (not the default 100)"
    print(f"\nCI cost per row: its run in both dtypes, {n} examples each, cold (as backprop-verify){note}")
    print(
        f"{'layer':<18} {'float64 s':>9} {'float32 s':>9} {'total s':>8} {'compiles':>8} {'from disk':>9}"
        f" {'warm f64 s':>10}"
    )
    total = 0.0
    for c, w in zip(cold, warm, strict=True):
        r32 = c.oracle32
        s32, n32, d32 = (r32.seconds, r32.compiles, r32.cached) if r32 is not None else (0.0, 0, 0)
        row_total = c.oracle.seconds + s32
        total += row_total
        print(
            f"{c.row:<18} {c.oracle.seconds:>9.2f} {s32:>9.2f} {row_total:>8.2f}"
            f" {c.oracle.compiles + n32:>8} {c.oracle.cached + d32:>9} {w.oracle.seconds:>10.2f}"
        )
    imports, backend = startup
    mean = total / len(cold) if cold else math.nan
    print(f"{'all rows':<18} {'':>9} {'':>9} {total:>8.2f}")
    print(
        f"once per process: imports {imports:.2f} s,"
        f" JAX start (backend, cache, first compile) {backend:.2f} s;"
        f" mean per row {mean:.2f} s: predicted CI time ~ {imports + backend:.1f} + {mean:.1f} s x rows"
    )


# ---- one affine check: check_example against check_grads -----------------------------------------------


def _median_seconds(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    fn()  # warm-up: compiles
    return statistics.median(timeit.repeat(fn, number=1, repeat=repeats))


def _affine_check() -> None:
    import jax
    from jax import test_util

    import reference
    from backprop.verify import check_example, get_row

    try:
        row = get_row("affine")
    except ValueError:
        print("\nno affine row in the registry: the check_grads comparison is skipped")
        return
    n, d, h = AFFINE_NDH
    _, ex = _pinned(row, {"x": (n, d), "W": (d, h), "b": (h,), "out": (n, h)})
    x, w, b = (np.asarray(ex.values[k], dtype=np.float64) for k in ("x", "W", "b"))
    check_grads: Callable[..., None] = test_util.check_grads  # JAX leaves it unannotated

    def oracle() -> Any:
        return check_example(row, row.layer, ex)

    def grads() -> None:
        with reference.x64():
            check_grads(reference.affine, (x, w, b), order=1, modes=["rev"])

    ours, theirs = _median_seconds(oracle), _median_seconds(grads)
    print(
        f"\none affine check at (N, D, H) = {AFFINE_NDH}, {DTYPE}, warm,"
        f" median of {REPEATS} (jax {jax.__version__})"
    )
    print(f"{'check':<66} {'ms':>8}")
    print(f"{'check_example(row, Affine, example)  (the oracle: 4 stages)':<66} {ours * 1e3:>8.2f}")
    print(f"{'jax.test_util.check_grads(reference.affine, order=1, rev)':<66} {theirs * 1e3:>8.2f}")
    print(f"{'ratio check_example / check_grads':<66} {ours / theirs:>8.2f}")


# ---- the manual layer against its reference --------------------------------------------------------------


def _seconds_per_call(fn: Callable[[], Any]) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number


def _manual(row: Row, ex: Example) -> Callable[[], Any]:
    """Build, forward and backward, exactly as the oracle drives the layer (fresh copies are not timed)."""

    def run() -> Any:
        layer = row.build(row.layer, ex.values)
        row.call(layer, ex.values)
        return row.backward(layer, ex.cotangents)

    return run


def _jax(row: Row, ex: Example) -> Callable[[], Any]:
    import jax

    import reference
    from backprop.verify import reference_inputs

    fn, diff, consts, cots = reference_inputs(row, ex.values, ex.cotangents)
    ready: Callable[[Any], Any] = jax.block_until_ready  # unannotated in JAX: called through a typed name

    def run() -> Any:
        with reference.x64():
            return ready(fn(diff, consts, cots))

    return run


def _shapes(row: Row, ex: Example) -> str:
    return " ".join(f"{k}{list(v)}" for k, v in ex.shapes(row.outputs).items())


def _manual_vs_jax(rows: tuple[Row, ...]) -> None:
    from backprop.verify import check_example

    print("\nforward+backward on one fixed example: NumPy layer vs compiled jax.vjp of the reference")
    print(f"{'layer':<18} {'manual us':>10} {'jax us':>10} {'manual/jax':>10}  shapes")
    for row in rows:
        pinned, ex = _fixed_example(row)
        check_example(pinned, row.layer, ex)  # the timed example must be a correct one; also compiles it
        manual, ref = _seconds_per_call(_manual(pinned, ex)), _seconds_per_call(_jax(pinned, ex))
        print(
            f"{row.name:<18} {manual * 1e6:>10.1f} {ref * 1e6:>10.1f} {manual / ref:>10.2f}  {_shapes(row, ex)}"
        )


# ---- main -----------------------------------------------------------------------------------------------


def _startup() -> tuple[float, float, Path | None]:
    """Import JAX, the references, the oracle and the rows, then start JAX: its backend, the persistent
    cache as the oracle sets it up, and XLA's first (trivial) compilation. Returns the seconds of the
    imports, the seconds of the start, and the cache directory in use (None when it is off)."""
    start = time.perf_counter()
    for module in ("jax", "reference", "backprop.verify.search", "backprop.verify.registry"):
        importlib.import_module(module)
    imported = time.perf_counter()
    import jax

    from backprop.verify import cache

    jax.devices()
    where = cache.ensure()
    np.asarray(jax.jit(lambda v: v + 1)(np.zeros(())))  # waits for the result
    return imported - start, time.perf_counter() - imported, where


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep-cache",
        action="store_true",
        help="use the persistent compile cache where it is (cold then means only the in-process caches)",
    )
    args = parser.parse_args()
    fresh = None if args.keep_cache else tempfile.mkdtemp(prefix="backprop-bench-cache-")
    if fresh is not None:
        os.environ["BACKPROP_CACHE_DIR"] = fresh  # before backprop.verify is imported
    try:
        _run(args.examples, args.seed, fresh is not None)
    finally:
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)


def _run(n: int, seed: int, fresh: bool) -> None:
    imports, jax_start, where = _startup()
    import hypothesis
    import jax

    from backprop.verify import ROWS

    state = "off" if where is None else f"{where} ({'fresh, removed at exit' if fresh else 'kept'})"
    print(
        f"jax {jax.__version__}, numpy {np.__version__}, hypothesis {hypothesis.__version__};"
        f" {n} examples per layer, seed {seed}; persistent compile cache: {state}"
    )
    cold = _pass(ROWS, n, seed, cold=True)
    _print_pass("cold (first pass in this process)", cold)
    warm = _pass(ROWS, n, seed, cold=False)
    _print_pass("warm (second pass, same seeds and examples)", warm)
    _affine_check()
    _print_costs(cold, warm, n, (imports, jax_start))
    _manual_vs_jax(ROWS)


if __name__ == "__main__":
    main()
