"""Speed of chapters 6-8's layers against compiled JAX, as ratios measured in one run.

Each line times the library layer's forward + backward and ``jax.jit`` of ``jax.vjp`` of the reference
(compiled first, results blocked on), on the same arrays, as the best of several repeats; a ratio at
or below 1.0 means the hand-written NumPy layer is at least as fast as compiled JAX on this machine.
The whole measurement runs ``--rounds`` times; each line gives the best times over all rounds, their
ratio, and the range of the rounds' own ratios (a 0.1 ms call moves by a third between rounds).

    python benchmarks/layer_speed.py [--repeats 21] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import backprop
import reference

CONVOLUTIONS = ((8, 1, 28, 30, 5), (100, 1, 28, 30, 5), (32, 16, 16, 32, 3))
"""(N, C, H, FN, filter): the shapes the speed target names."""


def _median(fn: Callable[[], Any], repeats: int) -> float:
    """The best of ``repeats`` timed calls after a warm-up: on a shared 2-core machine the other processes
    only ever add time, so the minimum is the steadiest estimate of the code's own cost."""
    fn()  # warm: caches, allocations, a JAX compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _jax(f: Callable[..., Any], args: tuple[Any, ...], cot: Any) -> Callable[[], Any]:
    @jax.jit
    def step(*a: Any) -> Any:
        out, pull = jax.vjp(f, *a)
        return out, pull(cot)

    return lambda: jax.block_until_ready(step(*args))


Timings = dict[str, list[tuple[float, float]]]
"""label -> (ours, jax) seconds, one pair per round."""

TIMINGS: Timings = {}


def _line(label: str, ours: float, theirs: float) -> None:
    TIMINGS.setdefault(label, []).append((ours, theirs))


def _report(timings: Timings) -> None:
    print(f"{'forward + backward':<52} {'ms':>9} {'jax ms':>9} {'ratio':>7}   rounds")
    for label, pairs in timings.items():
        ours, theirs = min(p[0] for p in pairs), min(p[1] for p in pairs)
        ratios = sorted(p[0] / p[1] for p in pairs)
        spread = f"{ratios[0]:.2f}-{ratios[-1]:.2f}" if len(ratios) > 1 else ""
        print(f"{label:<52} {ours * 1e3:>9.2f} {theirs * 1e3:>9.2f} {ours / theirs:>7.2f}   {spread}")


def convolution(repeats: int) -> None:
    rng = np.random.default_rng(0)
    for n, c, h, fn, k in CONVOLUTIONS:
        x = rng.normal(size=(n, c, h, h)).astype(np.float32)
        w = (0.1 * rng.normal(size=(fn, c, k, k))).astype(np.float32)
        b = np.zeros(fn, np.float32)
        layer = backprop.Convolution(w, b)
        dout = np.ones((n, fn, h - k + 1, h - k + 1), np.float32)

        def ours(layer: Any = layer, x: Any = x, dout: Any = dout) -> Any:
            layer.forward(x)
            return layer.backward(dout)

        theirs = _jax(lambda x, w, b: reference.convolution(x, w, b, 1, 0), (x, w, b), dout)
        _line(
            f"Convolution {(n, c, h, h)} x {fn} filters {k}x{k}",
            _median(ours, repeats),
            _median(theirs, repeats),
        )


def pooling_and_batchnorm(repeats: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 16, 24, 24)).astype(np.float32)
    pool = backprop.Pooling(2, 2, stride=2)
    dpool = np.ones((32, 16, 12, 12), np.float32)

    def ours_pool() -> Any:
        pool.forward(x)
        return pool.backward(dpool)

    theirs_pool = _jax(lambda x: reference.pooling(x, 2, 2, 2, 0), (x,), dpool)
    _line(
        "Pooling (32, 16, 24, 24), 2x2 stride 2", _median(ours_pool, repeats), _median(theirs_pool, repeats)
    )
    h = rng.normal(size=(100, 256)).astype(np.float32)
    gamma, beta = np.ones(256, np.float32), np.zeros(256, np.float32)
    bn = backprop.BatchNormalization(gamma, beta)
    dh = np.ones_like(h)

    def ours_bn() -> Any:
        bn.forward(h, train_flg=True)
        return bn.backward(dh)

    stats = (np.zeros(256, np.float32), np.ones(256, np.float32))
    theirs_bn = _jax(lambda h, g, b: reference.batch_normalization(h, g, b, *stats), (h, gamma, beta), dh)
    _line("BatchNormalization (100, 256), train mode", _median(ours_bn, repeats), _median(theirs_bn, repeats))


def two_layer_step(repeats: int) -> None:
    np.random.seed(0)
    net = backprop.TwoLayerNet(784, 50, 10)
    rng = np.random.default_rng(2)
    x, t = rng.random((100, 784)), rng.integers(0, 10, 100)
    params = tuple(net.params[k] for k in ("W1", "b1", "W2", "b2"))

    with reference.x64():
        grad = jax.jit(jax.grad(lambda p, x, t: reference.two_layer_net(*p, x, t)))
        theirs = _median(lambda: jax.block_until_ready(grad(params, x, t)), repeats)
    _line(
        "TwoLayerNet gradient 784-50-10, batch 100, float64",
        _median(lambda: net.gradient(x, t), repeats),
        theirs,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21, help="timed calls per line and round (21)")
    parser.add_argument("--rounds", type=int, default=5, help="times the whole measurement runs (5)")
    args = parser.parse_args()
    if args.repeats < 1 or args.rounds < 1:
        parser.error("--repeats and --rounds must be at least 1")
    for _ in range(args.rounds):
        convolution(args.repeats)
        pooling_and_batchnorm(args.repeats)
        two_layer_step(args.repeats)
    _report(TIMINGS)


if __name__ == "__main__":
    main()
