"""Power of the search: for every broken layer of the catalogue, how many examples the oracle draws before
the first failure (same seeds every run), so a change to the drawing can be shown not to weaken it.

    python benchmarks/power.py [--examples 100] [--json out.json] [--compare before.json]

A layer counts as caught when the first failing example comes within ``--examples``; ``--compare`` prints
the figures of an earlier run beside this one, with the median and maximum of both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the catalogue lives in tests/

from backprop.verify import verify
from tests.catalogue.broken import BROKEN
from tests.catalogue.learner import LEARNER
from tests.catalogue.training import TRAINING

SEEDS = (0, 1)


def _cases() -> list[tuple[str, type, str, str, dict[str, Any]]]:
    """(name, layer, row, dtype, options) of every broken layer: the broken catalogue, and the learner's
    and the training catalogue's layers whose pinned verdict is a failure."""
    cases = [(c.name, c.layer, c.against, c.dtype, dict(c.options)) for c in BROKEN]
    for e in LEARNER + TRAINING:
        if e.verdict == "fail":
            name = "-".join([e.layer.__name__, e.dtype, *sorted(e.options)])
            cases.append((name, e.layer, e.against, e.dtype, dict(e.options)))
    return cases


def _first_failure(
    layer: type, row: str, dtype: str, options: dict[str, Any], seed: int, n: int
) -> int | None:
    """The number of examples drawn up to and including the first failing one; None when none failed."""
    keep = {k: v for k, v in options.items() if k not in ("max_failures", "scope", "max_examples")}
    report = verify(layer, row, max_examples=n, seed=seed, dtype=dtype, max_failures=1, scope=False, **keep)
    return report.examples if report.failure is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()
    before: dict[str, list[int | None]] = json.loads(args.compare.read_text()) if args.compare else {}
    now: dict[str, list[int | None]] = {}
    print(f"{'broken layer':<42} {'row':<18} " + " ".join(f"{'seed ' + str(s):>13}" for s in SEEDS))
    for name, layer, row, dtype, options in _cases():
        now[name] = [_first_failure(layer, row, dtype, options, s, args.examples) for s in SEEDS]
        cells = []
        for i, got in enumerate(now[name]):
            old = before.get(name, [None] * len(SEEDS))[i] if before else None
            shown = "missed" if got is None else str(got)
            cells.append(f"{(str(old) if old is not None else '-') + ' -> ' if before else ''}{shown:>5}")
        print(f"{name:<42} {row:<18} " + " ".join(f"{c:>13}" for c in cells), flush=True)
    if args.json:
        args.json.write_text(json.dumps(now, indent=1))
    _summary("now", now, args.examples)
    if before:
        _summary("before", before, args.examples)


def _summary(label: str, runs: dict[str, list[int | None]], n: int) -> None:
    counts = [c if c is not None else n + 1 for cs in runs.values() for c in cs]
    missed = sum(c is None for cs in runs.values() for c in cs)
    print(
        f"{label}: {len(counts)} searches, median {statistics.median(counts)}, max {max(counts)}, "
        f"missed {missed}"
    )


if __name__ == "__main__":
    main()
