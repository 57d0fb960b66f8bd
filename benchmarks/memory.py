"""Peak memory of whole ``backprop-verify`` processes, measured with ``/usr/bin/time -v``: the default run,
and one row at growing example counts (it must stay flat: compiled references are kept in a bounded cache).
Each run is one process (``--jobs 1``), so the peak is the whole run's.

    python benchmarks/memory.py [--row affine] [--counts 100 300 1000]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys


def peak(argv: list[str]) -> tuple[float, float]:
    """(peak resident memory in MB, wall seconds) of ``backprop-verify argv``."""
    time_cmd = shutil.which("time") or "/usr/bin/time"
    command = [time_cmd, "-v", sys.executable, "-m", "backprop.verify.cli", "--quiet", "--jobs", "1", *argv]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    wall = re.search(
        r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr
    )
    if rss is None or wall is None:
        raise SystemExit(f"could not read /usr/bin/time -v output:\n{done.stderr[-2000:]}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    return int(rss.group(1)) / 1024, hours * 3600 + minutes * 60 + seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--row", default="affine")
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 300, 1000])
    args = parser.parse_args()
    print(f"{'run':<36} {'peak MB':>8} {'seconds':>8}")
    mb, seconds = peak([])
    print(f"{'default (all rows, both dtypes)':<36} {mb:>8.0f} {seconds:>8.1f}")
    for n in args.counts:
        mb, seconds = peak([args.row, "--examples", str(n)])
        print(f"{f'{args.row} --examples {n}':<36} {mb:>8.0f} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
