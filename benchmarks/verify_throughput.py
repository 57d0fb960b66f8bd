"""Throughput of the oracle, cold, in one run: checked examples per second for every registry row.

"Cold" means a fresh process: every new array shape costs one JAX compilation (tens of ms), after which
the oracle reuses the compiled reference for that shape. The second table is the speed of each manual
layer (forward + backward, NumPy, driven through its row) as a ratio against its compiled JAX reference
(forward + vjp), both measured in this run on the same fixed example, drawn at the largest of a fixed
set of shapes from the row's own strategy: every row, present or future, is timed on moderately large
arrays, so the timing is not only Python call overhead.

    python benchmarks/verify_throughput.py [--examples 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import timeit
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jax
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

import reference
from backprop.verify import ROWS, Example, Row, check_example, examples, reference_inputs, verify
from backprop.verify.vocabulary import DTYPES

DRAWN = 500
"""Shapes drawn (deterministically) from a row's strategy; the example is drawn at the largest of them."""
MAX_ELEMENTS = 1024
"""Elements of the timed example, outputs included: Hypothesis cannot fill much larger arrays element by
element (such draws overrun its buffer and are discarded, by the oracle as here)."""


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


def _elements(shapes: dict[str, tuple[int, ...]]) -> int:
    return sum(math.prod(shape) for shape in shapes.values())


def _fixed_example(row: Row) -> tuple[Row, Example]:
    """The row with its shapes pinned to the largest of ``DRAWN`` drawn from its own strategy (up to
    ``MAX_ELEMENTS``), and an example at those shapes: every row, present or future, is timed on
    moderately large arrays."""
    candidates = sorted(
        (s for s in _drawn(row.draw_shapes(frozenset()), DRAWN) if _elements(s) <= MAX_ELEMENTS),
        key=_elements,
        reverse=True,
    )
    for shapes in candidates:
        pinned = replace(row, shapes=lambda without, shapes=shapes: st.just(shapes))
        try:
            return pinned, _drawn(examples(pinned), 5)[-1]
        except Unsatisfiable:  # too large to fill after all: the next largest
            continue
    raise SystemExit(f"benchmark: no example of {row.name!r} could be drawn")


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
    fn, diff, consts, cots = reference_inputs(row, ex.values, ex.cotangents)

    def run() -> Any:
        with reference.x64():
            return jax.block_until_ready(fn(diff, consts, cots))

    return run


def _shapes(row: Row, ex: Example) -> str:
    return " ".join(f"{k}{list(v)}" for k, v in ex.shapes(row.outputs).items())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(
        f"jax {jax.__version__}, numpy {np.__version__}, {args.examples} examples per layer, seed {args.seed}"
    )
    print(f"{'layer':<18} {'dtype':<8} {'examples':>8} {'shapes':>6} {'seconds':>8} {'examples/s':>10}")
    total_n, total_s = 0, 0.0
    for row in ROWS:
        for dtype in DTYPES:
            report = verify(row.layer, row, max_examples=args.examples, seed=args.seed, dtype=dtype)
            total_n, total_s = total_n + report.examples, total_s + report.seconds
            rate = report.examples / report.seconds
            shapes, seconds = report.distinct_shapes, report.seconds
            print(f"{row.name:<18} {dtype:<8} {report.examples:>8} {shapes:>6} {seconds:>8.2f} {rate:>10.1f}")
    print(f"{'all (cold)':<27} {total_n:>8} {'':>6} {total_s:>8.2f} {total_n / total_s:>10.1f}")

    print("\nforward+backward on one fixed example: NumPy layer vs compiled jax.vjp of the reference")
    print(f"{'layer':<18} {'manual us':>10} {'jax us':>10} {'manual/jax':>10}  shapes")
    for row in ROWS:
        pinned, ex = _fixed_example(row)
        check_example(pinned, row.layer, ex)  # the timed example must be a correct one; also compiles it
        manual, ref = _seconds_per_call(_manual(pinned, ex)), _seconds_per_call(_jax(pinned, ex))
        print(
            f"{row.name:<18} {manual * 1e6:>10.1f} {ref * 1e6:>10.1f} {manual / ref:>10.2f}  {_shapes(row, ex)}"
        )


if __name__ == "__main__":
    main()
