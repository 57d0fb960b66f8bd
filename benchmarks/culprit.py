"""The culprit's accuracy on the catalogue (issue 20): every broken layer whose class marks its one wrong line
with ``# BUG`` is verified once (seed 0, the catalogue's first failure), and its culprit is placed against
the marked line. Per registry row: the cases, how many culprits are the marked line, after it in the order
the layer ran (must be 0), before it, another line whose order is unknown (the marked line assigned no
array, or sits in another file), none, and the culprit search's own time per failing layer (median and
max; the target is at most 2 s).

    python benchmarks/culprit.py [--rows batch_normalization,lstm] [--cases NAME,...] [--json out.json] [-v]

The cases are read from the catalogue (``tests.catalogue.bug_line``), never listed by hand; the placing is
``tests/test_culprit_accuracy.py``'s, which asserts the same figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the catalogue lives in tests/

from tests.test_culprit_accuracy import COVERED, Outcome, marked_cases, run

TARGET_SECONDS = 2.0
COLUMNS = ("cases", "at", "after", "before", "unordered", "none", "not failed")


def _row_line(row: str, outcomes: list[Outcome]) -> tuple[str, list[float]]:
    counts = defaultdict(int)
    for o in outcomes:
        counts[o.place] += 1
    seconds = [o.seconds for o in outcomes if o.seconds > 0]  # the layers searched (a failure that is
    # no wrong value, an exception say, is not searched)
    median = f"{statistics.median(seconds):.2f}" if seconds else "-"
    worst = f"{max(seconds):.2f}" if seconds else "-"
    cells = [
        len(outcomes),
        counts["at"],
        counts["after"],
        counts["before"],
        counts["unordered"],
        counts["none"],
        counts["passed"] + counts["unsearched"],
    ]
    star = "*" if row in COVERED else " "
    text = f"{row + star:<30}" + "".join(f"{c:>11}" for c in cells) + f"{median:>9}{worst:>9}"
    return text, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="", help="comma-separated registry rows (default: every row)")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: every case)")
    parser.add_argument("--json", type=Path, help="write each case's outcome here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each case as it finishes")
    args = parser.parse_args()
    wanted = {r for r in args.rows.split(",") if r}
    named = {n for n in args.cases.split(",") if n}
    cases = [c for c in marked_cases() if (not wanted or c.row in wanted) and (not named or c.name in named)]
    by_row: dict[str, list[Outcome]] = defaultdict(list)
    started = time.perf_counter()
    for case in cases:
        o = run(case)
        by_row[case.row].append(o)
        if args.verbose:
            print(f"  {case.name:<48} {case.row:<28} {o.place:<10} {o.seconds:6.2f} s {'; '.join(o.lines)}")
    print(
        f"{'row (* issue 20 lists it)':<30}"
        + "".join(f"{c:>11}" for c in COLUMNS)
        + f"{'median s':>9}{'max s':>9}"
    )
    every: list[float] = []
    for row in sorted(by_row):
        text, seconds = _row_line(row, by_row[row])
        every += seconds
        print(text)
    outcomes = [o for os_ in by_row.values() for o in os_]
    at = sum(o.place == "at" for o in outcomes)
    after = sum(o.place == "after" for o in outcomes)
    print(
        f"all: {len(outcomes)} cases, {at} at the marked line ({at / max(len(outcomes), 1):.0%}), "
        f"{after} after it; search time per failing layer: median "
        f"{statistics.median(every) if every else 0:.2f} s, max {max(every, default=0):.2f} s "
        f"(target {TARGET_SECONDS:.0f} s); {time.perf_counter() - started:.0f} s in all"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "case": o.case.name,
                        "row": o.case.row,
                        "place": o.place,
                        "marked": [o.case.file, o.case.line],
                        "culprit": list(o.culprit) if o.culprit else None,
                        "seconds": o.seconds,
                        "note": o.note,
                    }
                    for o in outcomes
                ],
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
