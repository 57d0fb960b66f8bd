"""How often a default run (100 examples) draws each rare feature, per row: the share of seeds whose run
draws it at least once. Drawing only (no layer is checked), so it is quick.

    python benchmarks/rare_shapes.py [--runs 50] [--examples 100]
"""

from __future__ import annotations

import argparse
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from backprop.verify import ROWS, Feature, examples

RARE = (Feature.LARGE, Feature.RANK4, Feature.NEGATIVE_ZERO, Feature.EXTREME, Feature.BATCH)


def _features_per_run(row: Any, seed: int, n: int) -> set[Feature]:
    seen: set[Feature] = set()

    @settings(
        max_examples=n, database=None, phases=(Phase.generate,), suppress_health_check=list(HealthCheck)
    )
    @hypothesis_seed(seed)
    @given(examples(row))
    def draw(example: Any) -> None:
        seen.update(row.features_of(example.values))

    draw()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--examples", type=int, default=100)
    args = parser.parse_args()
    print(f"share of {args.runs} runs of {args.examples} examples that draw each feature at least once")
    print(f"{'row':<18}" + "".join(f"{f.value:>14}" for f in RARE))
    for row in ROWS:
        counts = {f: 0 for f in RARE}
        for seed in range(args.runs):
            for f in _features_per_run(row, seed, args.examples):
                if f in counts:
                    counts[f] += 1
        cells = [f"{counts[f] / args.runs:>14.2f}" if f in row.features else f"{'-':>14}" for f in RARE]
        print(f"{row.name:<18}" + "".join(cells))


if __name__ == "__main__":
    main()
