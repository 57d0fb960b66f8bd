"""Throughput of the oracle, cold, in one run: checked examples per second for every registry row.

"Cold" means a fresh process: every new array shape costs one JAX compilation (tens of ms), after which
the oracle reuses the compiled reference for that shape. The second table is the speed of each manual
layer (forward + backward, NumPy) as a ratio against its compiled JAX reference (forward + vjp), both
measured in this run on the same fixed example.

    python benchmarks/verify_throughput.py [--examples 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import reference
from backprop.verify import ROWS, Row, check_example, reference_inputs, verify
from backprop.verify.oracle import DTYPES
from backprop.verify.report import Example


def _fixed_example(row: Row) -> Example:
    """A moderately sized example (64-sample batch), so the timing is not only Python call overhead."""
    rng = np.random.default_rng(0)
    cot: Any = rng.standard_normal((64, 64))
    if row.name in ("mul", "add", "relu", "sigmoid"):
        values: dict[str, Any] = {a.name: rng.standard_normal((64, 64)) for a in row.args}
    elif row.name == "affine":
        values = {
            "W": rng.standard_normal((256, 64)),
            "b": rng.standard_normal(64),
            "x": rng.standard_normal((64, 4, 8, 8)),
        }
    elif row.name == "softmax_with_loss":
        values, cot = {"x": rng.standard_normal((64, 10)), "t": rng.integers(0, 10, 64)}, 0.7
    else:
        raise SystemExit(f"benchmark: add a fixed example for the new row {row.name!r} in _fixed_example")
    return Example(row=row.name, dtype="float64", values=values, cotangents=(cot,))


def _seconds_per_call(fn: Callable[[], Any]) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number


def _manual(row: Row, ex: Example) -> Callable[[], Any]:
    v = ex.values

    def run() -> Any:
        layer = row.layer(*[v[a.name] for a in row.of_kind("param", "init")])
        layer.forward(*[v[a.name] for a in row.of_kind("input", "const")])
        return layer.backward(*ex.cotangents)

    return run


def _jax(row: Row, ex: Example) -> Callable[[], Any]:
    fn, diff, consts, cots = reference_inputs(row, ex.values, ex.cotangents)

    def run() -> Any:
        with reference.x64():
            return jax.block_until_ready(fn(diff, consts, cots))

    return run


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
            report = verify(row.layer, row.name, max_examples=args.examples, seed=args.seed, dtype=dtype)
            total_n, total_s = total_n + report.examples, total_s + report.seconds
            rate = report.examples / report.seconds
            shapes, seconds = report.distinct_shapes, report.seconds
            print(f"{row.name:<18} {dtype:<8} {report.examples:>8} {shapes:>6} {seconds:>8.2f} {rate:>10.1f}")
    print(f"{'all (cold)':<27} {total_n:>8} {'':>6} {total_s:>8.2f} {total_n / total_s:>10.1f}")

    print("\nforward+backward on one fixed example: NumPy layer vs compiled jax.vjp of the reference")
    print(f"{'layer':<18} {'manual us':>10} {'jax us':>10} {'manual/jax':>10}")
    for row in ROWS:
        ex = _fixed_example(row)
        check_example(row, row.layer, ex)  # the timed example must be a correct one; also compiles it
        manual, ref = _seconds_per_call(_manual(row, ex)), _seconds_per_call(_jax(row, ex))
        print(f"{row.name:<18} {manual * 1e6:>10.1f} {ref * 1e6:>10.1f} {manual / ref:>10.2f}")


if __name__ == "__main__":
    main()
