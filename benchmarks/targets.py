"""Targets 1-5 of issue 19 for this tree beside the same figures for a baseline (the previous main), in one run.

Each measurement runs in a child process with ``PYTHONPATH`` set to its tree (ahead of the venv's editable
install) and a compilation cache directory of that tree's own, so that warm means warm for each. The trees
alternate within every repeat, swapping order on each, so load from other processes hits both alike. A
line gives the median [range] over the repeats; a measurement that fails in a tree prints ``failed:`` and
the run goes on. Only the CLI and stable public names (``verify``, ``check_example``, ``get_row``,
``Example``) are used, so one script measures both engines.

1. ``backprop-verify --layer benchmarks/learner/book_layers.py:CLASS --against ROW``, both dtypes, 100
   examples each, warm (run once first), whole process, against a bare start (numpy, hypothesis and jax
   imported, one jitted op); in-process ``verify(Affine, "affine")`` per dtype, the same check run before.
2. ``check_example`` of ``backprop.Affine`` at (N, D, H) = (32, 64, 32), float64, every stage, against the
   layer calls it made (recorded, then replayed alone) and ``jax.test_util.check_grads``.
3. ``backprop-verify --quiet``, cold (an emptied cache directory), then warm (the same directory).
4. With ``--suite``: the test command ``.ci/run`` calls the README's, in a ``git clone`` (the last commit).
5. ``backprop-verify --list`` and ``--help``, whole process, with the project's bytecode cached as an
   installed package has it, and whether they import jax or hypothesis.

    python benchmarks/targets.py --baseline ../base [--repeat 5] [--default-repeat 1] [--skip default] [--suite]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

LEARNER = Path(__file__).resolve().parent / "learner" / "book_layers.py"
BIN = Path(sys.executable).parent
LAYERS = {
    "Affine": ("affine", 1.3),
    "Relu": ("relu", 1.3),
    "SoftmaxWithLoss": ("softmax_with_loss", 1.3),
    "Convolution": ("convolution", 2.0),
    "BatchNormalization": ("batch_normalization", 2.0),
    "TimeLSTM": ("time_lstm", 2.0),
    "Attention": ("attention", 2.0),
}
"""The learner's class -> its row, and its bound as a multiple of a bare start."""
BARE = "import numpy, hypothesis, jax; jax.block_until_ready(jax.jit(lambda v: v + 1)(numpy.zeros(3)))"
BARE_MEASURE = "bare start, s"

NOTEBOOK = """
import importlib.util, json, time
from backprop.verify import verify
spec = importlib.util.spec_from_file_location("learner", {path!r})
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
seconds = {{}}
for dtype in ("float64", "float32"):
    verify(module.Affine, "affine", dtype=dtype)  # the earlier check: the cell's first run
    start = time.perf_counter()
    if not verify(module.Affine, "affine", dtype=dtype).passed:
        raise SystemExit(f"Affine failed in {{dtype}}")
    seconds[f"verify(Affine), {{dtype}}, s"] = time.perf_counter() - start
print(json.dumps(seconds))
"""

EXAMPLE = """
import functools, json, statistics, timeit
import jax, jax.numpy as jnp, numpy as np
from jax.test_util import check_grads
import backprop
from backprop.verify import Example, check_example, get_row

def ms(fn, repeat):
    fn()
    return 1e3 * statistics.median(timeit.repeat(fn, number=1, repeat=repeat))

rng = np.random.default_rng(0)
x, W, b, dout = (rng.standard_normal(s) for s in ((32, 64), (64, 32), (32,), (32, 32)))
ex = Example(row="affine", dtype="float64", values={"x": x, "W": W, "b": b}, cotangents=(dout,))
row, calls = get_row("affine"), []
own = lambda v: v.copy() if isinstance(v, np.ndarray) else v

def recorded(name):
    method = getattr(backprop.Affine, name)
    def call(self, *args, **kwargs):
        calls.append((id(self), name, tuple(map(own, args)), {k: own(v) for k, v in kwargs.items()}))
        return method(self, *args, **kwargs)
    return functools.wraps(method)(call)

check_example(row, type("Affine", (backprop.Affine,), {n: recorded(n) for n in ("__init__", "forward", "backward")}), ex)

def replay():
    live = {}
    for key, name, args, kwargs in calls:
        if name == "__init__":
            live[key] = backprop.Affine(*args, **kwargs)
        else:
            getattr(live[key], name)(*args, **kwargs)

def grads():
    with jax.enable_x64(True):
        check_grads(lambda x, W, b: jnp.dot(x, W) + b, (x, W, b), order=1, modes=["rev"])

oracle, alone = ms(lambda: check_example(row, backprop.Affine, ex), 21), ms(replay, 201)
theirs = ms(grads, 21)
print(json.dumps({"layer calls per example": len(calls), "oracle, ms": oracle, "layer calls alone, ms": alone,
    "oracle / layer calls, x": oracle / alone, "check_grads, ms": theirs, "check_grads / oracle, x": theirs / oracle}))
"""

JAX_FREE = """
import contextlib, io, sys
from backprop.verify.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["--list"]), main(["--help"])
print(int("jax" in sys.modules), int("hypothesis" in sys.modules))
"""


class Failed(Exception):
    """A measurement that did not complete: its one-line reason."""


@dataclass
class Tree:
    name: str
    root: Path
    work: Path
    """Scratch: the children's working directory and the tree's own cache directories."""

    def run(
        self,
        argv: list[str],
        cache: Path | None = None,
        clone: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> tuple[float, str]:
        """Seconds of one child process and its stdout; ``Failed`` on a non-zero exit."""
        # the oracle's compilation cache, and any other that a user's cache directory would hold
        cache = cache or self.work / "cache"
        env = dict(os.environ, PYTHONPATH=str(clone or self.root), BACKPROP_CACHE_DIR=str(cache / "jax"))
        env |= extra_env or {}
        env["XDG_CACHE_HOME"] = str(cache / "user")
        start = time.perf_counter()
        try:
            done = subprocess.run(
                argv, env=env, cwd=clone or self.work, capture_output=True, text=True, timeout=3600
            )
        except subprocess.TimeoutExpired as exc:
            raise Failed(f"timed out after {exc.timeout:.0f} s") from None
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            raise Failed(f"exit {done.returncode}: {lines[-1].strip() if lines else ''}")
        return seconds, done.stdout

    def python(self, code: str) -> dict[str, float]:
        """The JSON object that a child running ``code`` prints last."""
        return dict(json.loads(self.run([sys.executable, "-c", code])[1].splitlines()[-1]))


Bound = tuple[str, float]
"""("<=" or ">=", limit)."""


def le(limit: float) -> Bound:
    return ("<=", limit)


@dataclass
class Target:
    key: str
    """The name ``--skip`` takes."""
    number: int
    measures: dict[str, Bound | None]
    run: Callable[[Tree], dict[str, float]]
    warm: bool = False
    """Run once untimed in each tree before the timed repeats."""
    slow: bool = False
    """Repeated ``--default-repeat`` times instead of ``--repeat``."""


def timed(argv: list[str], measure: str, tree: Tree) -> dict[str, float]:
    """Seconds of one run of a program of the venv."""
    return {measure: tree.run([str(BIN / argv[0]), *argv[1:]])[0]}


def default_run(cold: bool, tree: Tree) -> dict[str, float]:
    """``backprop-verify --quiet``; cold empties the tree's cache directory for it, warm reuses it."""
    cache, argv = tree.work / "default-cache", [str(BIN / "backprop-verify"), "--quiet"]
    if cold:
        shutil.rmtree(cache, ignore_errors=True)
    elif not cache.exists():  # no cold run before this one: warm the directory first
        tree.run(argv, cache)
    return {f"default run, {'cold' if cold else 'warm'}, s": tree.run(argv, cache)[0]}


def suite(tree: Tree) -> dict[str, float]:
    """The test command that ``.ci/run`` calls the README's, in a fresh clone with an empty cache."""
    scratch = Path(tempfile.mkdtemp(dir=tree.work))
    try:
        subprocess.run(["git", "clone", "--quiet", str(tree.root), str(scratch / "clone")], check=True)
        lines = (scratch / "clone" / ".ci" / "run").read_text().splitlines()
        marks = [i for i, line in enumerate(lines) if line.startswith("# The README's test command")]
        command = next((line for line in lines[marks[-1] + 1 :] if line.strip()), "") if marks else ""
        argv = ["bash", "-c", command or "HYPOTHESIS_PROFILE=ci pytest"]
        return {SUITE: tree.run(argv, scratch / "cache", scratch / "clone")[0]}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def cli(tree: Tree) -> dict[str, float]:
    # The project's bytecode is cached (in the scratch directory), as an installed package has it: under
    # PYTHONDONTWRITEBYTECODE=1 each run would compile the modules it imports, about 0.1 s more per run.
    # The first run, JAX_FREE, imports what --list and --help do, and so writes the cache they read.
    cached = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(tree.work / "pycache")}
    jax, hypothesis = tree.run([sys.executable, "-c", JAX_FREE], extra_env=cached)[1].split()[-2:]
    return {
        "--list, s": tree.run([str(BIN / "backprop-verify"), "--list"], extra_env=cached)[0],
        "--help, s": tree.run([str(BIN / "backprop-verify"), "--help"], extra_env=cached)[0],
        "--list/--help import jax": float(jax),
        "--list/--help import hypothesis": float(hypothesis),
    }


def learner(cls: str, row: str, tree: Tree) -> dict[str, float]:
    """The learner's check of one layer, and its ratio to a bare start run just before it (so that the ratio
    sees the same load)."""
    bare = tree.run([str(BIN / "python"), "-c", BARE])[0]
    seconds = tree.run(
        [str(BIN / "backprop-verify"), "--quiet", "--layer", f"{LEARNER}:{cls}", "--against", row]
    )[0]
    return {f"{cls}, s": seconds, f"{cls} / bare start, x": seconds / bare}


SUITE = "README test command, fresh clone, s"
EXAMPLE_MEASURES: dict[str, Bound | None] = {"layer calls per example": None, "oracle, ms": None}
EXAMPLE_MEASURES |= {"layer calls alone, ms": None, "oracle / layer calls, x": le(3), "check_grads, ms": None}
EXAMPLE_MEASURES |= {"check_grads / oracle, x": (">=", 5)}


def targets() -> list[Target]:
    notebook = {f"verify(Affine), {dtype}, s": le(0.3) for dtype in ("float64", "float32")}
    cli_measures = {"--list, s": le(0.3), "--help, s": le(0.3), "--list/--help import jax": le(0)}
    cli_measures |= {"--list/--help import hypothesis": le(0)}
    return [
        Target("learner", 1, {BARE_MEASURE: None}, partial(timed, ["python", "-c", BARE], BARE_MEASURE)),
        *(
            Target(
                "learner",
                1,
                {f"{cls}, s": None, f"{cls} / bare start, x": le(factor)},
                partial(learner, cls, row),
                warm=True,
            )
            for cls, (row, factor) in LAYERS.items()
        ),
        Target("notebook", 1, dict(notebook), lambda tree: tree.python(NOTEBOOK.format(path=str(LEARNER)))),
        Target("example", 2, EXAMPLE_MEASURES, lambda tree: tree.python(EXAMPLE)),
        Target("default", 3, {"default run, cold, s": le(60)}, partial(default_run, True), slow=True),
        Target("default", 3, {"default run, warm, s": le(30)}, partial(default_run, False), slow=True),
        Target("suite", 4, {SUITE: le(300)}, suite, slow=True),
        Target("cli", 5, dict(cli_measures), cli),
    ]


Cell = list[float] | str
"""A measure's values in one tree, or why it failed."""


def attempt(target: Target, tree: Tree, results: dict[str, dict[str, Cell]], record: bool = True) -> None:
    """One run of ``target`` in ``tree``, its values kept unless it is the warm-up; once a target failed in a
    tree it is not run there again."""
    cells = {m: results.setdefault(m, {}).setdefault(tree.name, []) for m in target.measures}
    if any(isinstance(cell, str) for cell in cells.values()):
        return
    try:
        values = target.run(tree)
        missing = [m for m in target.measures if m not in values]
        if missing:
            raise Failed(f"no value for {', '.join(missing)}")
        for measure, cell in cells.items():
            if record and isinstance(cell, list):
                cell.append(values[measure])
    except (Failed, OSError, ValueError, KeyError, IndexError, subprocess.CalledProcessError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        results.update({m: {**results[m], tree.name: why} for m in target.measures})
        print(f"{tree.name}: {next(iter(target.measures))}: failed: {why}", file=sys.stderr)
        return
    print(f"{tree.name}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()), file=sys.stderr)


def show(cell: Cell | None, notes: list[str]) -> str:
    """The median [range] of ``cell``; a failure's reason goes to ``notes``, and its number to the cell."""
    if isinstance(cell, str):
        notes += [cell] if cell not in notes else []
        return f"failed [{notes.index(cell) + 1}]"
    if not cell:
        return "-"
    median = statistics.median(cell)
    return f"{median:.3g}" if len(cell) == 1 else f"{median:.3g} [{min(cell):.3g}-{max(cell):.3g}]"


def met(cell: Cell | None, op: str, limit: float | None) -> str:
    if limit is None or not isinstance(cell, list) or not cell:
        return "-"
    median = statistics.median(cell)
    return "yes" if (median <= limit if op == "<=" else median >= limit) else "no"


def report(chosen: list[Target], results: dict[str, dict[str, Cell]]) -> None:
    notes: list[str] = []
    print(f"{'':<2} {'measure':<36} {'this tree':<26} {'baseline':<26} {'bound':<20} met (this/base)")
    for target in chosen:
        for measure, bound in target.measures.items():
            op, limit = bound or ("", 0.0)
            label, at = (f"{op} {limit:g}", limit) if bound else ("-", None)
            this, base = results.get(measure, {}).get("this"), results.get(measure, {}).get("base")
            shown = [show(this, notes), show(base, notes)]
            print(
                f"{target.number:<2} {measure:<36} {shown[0]:<26} {shown[1]:<26} {label:<20} {met(this, op, at)}/{met(base, op, at)}"
            )
    for number, why in enumerate(notes, 1):
        print(f"[{number}] failed: {why}")


def describe(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return f"{root} ({done.stdout.strip() or 'not a git checkout'})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the previous main")
    here = Path(__file__).resolve().parents[1]
    parser.add_argument("--tree", type=Path, default=here, help="the tree measured (default: this checkout)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each measurement per tree (5)")
    parser.add_argument("--default-repeat", type=int, default=1, help="timed runs of targets 3 and 4 (1)")
    keys = sorted({t.key for t in targets()})
    parser.add_argument("--skip", action="append", default=[], choices=keys, help="leave a measurement out")
    parser.add_argument("--suite", action="store_true", help="run target 4, the suite (many minutes each)")
    args = parser.parse_args()
    if args.repeat < 1 or args.default_repeat < 1:
        parser.error("--repeat and --default-repeat must be at least 1")
    for root in (args.tree, args.baseline):
        if not (root / "backprop" / "verify").is_dir():
            parser.error(f"{root} is not a checkout of backprop")
    chosen = [t for t in targets() if t.key not in args.skip and (t.key != "suite" or args.suite)]
    work = Path(tempfile.mkdtemp(prefix="backprop-targets-"))
    trees = [
        Tree("this", args.tree.resolve(), work / "this"),
        Tree("base", args.baseline.resolve(), work / "base"),
    ]
    print(f"this tree: {describe(trees[0].root)}\nbaseline:  {describe(trees[1].root)}")
    print(
        f"repeats: {args.repeat}, targets 3 and 4: {args.default_repeat}; load average {os.getloadavg()[0]:.1f}"
    )
    results: dict[str, dict[str, Cell]] = {}
    try:
        for tree in trees:
            tree.work.mkdir()
        for target in (t for t in chosen if t.warm):
            for tree in trees:
                attempt(target, tree, results, record=False)
        for r in range(max(args.repeat, args.default_repeat)):
            for target in (t for t in chosen if r < (args.default_repeat if t.slow else args.repeat)):
                for tree in trees if r % 2 == 0 else trees[::-1]:
                    attempt(target, tree, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}; median [range] over the repeats")
    report(chosen, results)


if __name__ == "__main__":
    main()
