"""``backprop-verify``: check layers against their JAX references from the command line.

    backprop-verify                        every registered layer
    backprop-verify relu affine            only these
    backprop-verify --list                 the registered names and their signatures
    backprop-verify --layer my_layers.py:Affine --against affine
                                           a class of your own, against a registered reference
    backprop-verify ... --html report.html also write one self-contained HTML page: heat maps of
                                           every wrong gradient, each passing layer's error histogram

Exit status: 0 every layer passed, 1 some layer failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from backprop.verify.vocabulary import DTYPES, Allowance, Feature

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.progress import Progress
    from rich.table import Table
    from rich.text import Text

    from backprop.verify.report import LayerReport, RunReport
    from backprop.verify.row import Row

# Everything past the argument parser is imported where it is used: --help needs only argparse and the
# vocabulary, --list the registry (NumPy), and neither imports JAX, Hypothesis or Rich
# (tests/test_imports.py).

PROG = "backprop-verify"
MIN_WIDTH = 100


class UsageError(Exception):
    """Bad command-line arguments: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True)
class Target:
    """One class to check, the registry row to check it against, and how to name and rerun it; ``specs``
    are the command-line specs (``--layer``, ``--against``) a child process loads them from again."""

    layer: type
    against: str | Row
    label: str
    reproduce: str
    dtype: str = "float64"
    specs: tuple[str, str] | None = None


# ---- arguments ---------------------------------------------------------------------------------------------


MAX_EXAMPLES = 1_000_000
DEFAULT_TIMEOUT = 60.0


def _int_at_least(
    low: int, what: str, high: int | None = None, unit: str = "examples per layer"
) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"at most {high:,} {unit}, got {text!r}")
        return value

    return parse


def _grad_names(text: str) -> dict[str, str]:
    """``dW=d_w,db=d_b`` as a mapping from the row's gradient names to the layer's attribute names."""
    names: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        ours, _, theirs = pair.partition("=")
        if not (ours.strip().isidentifier() and theirs.strip().isidentifier()):
            raise argparse.ArgumentTypeError(
                f"expected NAME=ATTRIBUTE pairs such as dW=d_w,db=d_b, got {text!r}"
            )
        names[ours.strip()] = theirs.strip()
    return names


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _shard(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    try:
        shard = int(k), int(n)
    except ValueError:
        shard = (0, 0)
    if not 1 <= shard[0] <= shard[1]:
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, such as 2/4; got {text!r}")
    return shard


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Check hand-written backprop layers against jax.vjp of independent JAX references.",
        epilog="Exit status: 0 all layers passed, 1 a layer failed, 2 bad arguments.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="registered layers to check (default: all)")
    parser.add_argument("--list", action="store_true", help="list the registered layers and exit")
    parser.add_argument("--layer", metavar="FILE.py:CLASS", help="your own class (or MODULE:CLASS) to check")
    parser.add_argument(
        "--against",
        metavar="NAME",
        help="the registered layer whose reference --layer must match, or a Row of your own (MODULE:ROW)",
    )
    parser.add_argument(
        "--examples",
        type=_int_at_least(1, "positive", MAX_EXAMPLES),
        default=100,
        metavar="N",
        help="examples per layer (100)",
    )
    parser.add_argument(
        "--seed", type=_int_at_least(0, "non-negative"), default=0, metavar="S", help="random seed (0)"
    )
    parser.add_argument(
        "--dtype",
        choices=(*DTYPES, "all"),
        default="all",
        help="dtype the layers run in; 'all' checks each layer once per dtype (all)",
    )
    _add_check_options(parser)
    parser.add_argument(
        "--isolate",
        action="store_true",
        help="check each layer in a child process, so that even os._exit or a crash in C code is a failure",
    )
    parser.add_argument(
        "--jobs",
        type=_int_at_least(1, "positive", 256, "jobs"),
        default=None,
        metavar="N",
        help="check rows in N worker processes at once (default: the number of cores; one layer, or "
        "--isolate, runs one check at a time)",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="K/N",
        help="check only the K-th of N equal shares of the rows (1 <= K <= N), for a CI matrix",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="compile every reference afresh: do not read or write the persistent compilation cache",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON ('-' for stdout)")
    parser.add_argument(
        "--html",
        metavar="PATH",
        help="also write the report as one self-contained HTML page: heat maps of every wrong gradient",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return parser


def _add_check_options(parser: argparse.ArgumentParser) -> None:
    """What to check and how strictly: scope, kinks, allowances, gradient names, time limit."""
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=[f.value for f in Feature],
        metavar="FEATURE",
        help="draw no example with this feature (repeatable); the verdict then holds only in that scope",
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail another valid subgradient at a kink instead of noting it"
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        choices=[a.value for a in Allowance],
        metavar="NAME",
        help="accept a documented deviation: epsilon (a loss computed as -log(y + eps))",
    )
    parser.add_argument(
        "--grad-names",
        type=_grad_names,
        default={},
        metavar="dW=d_w,db=d_b",
        help="the attribute names your layer uses for the row's gradients",
    )
    parser.add_argument(
        "--eps",
        type=float,
        default=None,
        metavar="EPS",
        help="check a batch normalization at the eps it uses under the square root (the book's is 10e-7)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="fail a call into the layer that does not return within this many seconds (60)",
    )


def _options(args: argparse.Namespace, dtype: str) -> str:
    extra = [f"--without {f}" for f in args.without] + [f"--allow {a}" for a in args.allow]
    if args.strict:
        extra.append("--strict")
    if args.grad_names:
        extra.append("--grad-names " + ",".join(f"{k}={v}" for k, v in args.grad_names.items()))
    if args.timeout != DEFAULT_TIMEOUT:
        extra.append(f"--timeout {args.timeout:g}")
    if args.eps is not None:
        extra.append(f"--eps {args.eps:g}")
    if args.isolate:
        extra.append("--isolate")
    return " ".join([f"--seed {args.seed} --examples {args.examples} --dtype {dtype}", *extra])


def _per_dtype(
    args: argparse.Namespace,
    layer: type,
    against: str | Row,
    label: str,
    command: str,
    specs: tuple[str, str] | None = None,
) -> list[Target]:
    from backprop.verify.registry import get_row

    # a row checked in fewer dtypes (a network is float64 only) is left out of the others, and so is a
    # class the row checks in fewer (a model written as the book's allocates float32)
    row = get_row(against)
    own = row.dtypes_for(layer)
    dtypes = own if args.dtype == "all" else tuple(d for d in (args.dtype,) if d in own)
    return [Target(layer, against, label, f"{command} {_options(args, d)}", d, specs) for d in dtypes]


def _check_name(name: str, option: str = "") -> str:
    from backprop.verify.registry import get_row

    try:
        return get_row(name).name
    except ValueError as exc:
        raise UsageError(f"{option}{exc}") from None


def _against(spec: str) -> str | Row:
    """A registered name, or a row of the user's own (``mypkg.rows:SWISH``, ``rows.py:SWISH``)."""
    if ":" not in spec:
        return _check_name(spec, "--against: ")
    from backprop.verify.loader import LoadError, load_row

    try:
        row: Row = load_row(spec)
    except LoadError as exc:
        raise UsageError(f"--against: {exc}") from None
    return row


def _targets(args: argparse.Namespace) -> list[Target]:
    """What to check; raises UsageError for any inconsistent or unresolvable argument."""
    from backprop.verify.draw import without_set
    from backprop.verify.registry import get_row

    targets = _named_targets(args)
    for target in targets:
        row = get_row(target.against)
        try:
            row.draw_shapes(without_set(args.without))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return targets


def _named_targets(args: argparse.Namespace) -> list[Target]:
    from backprop.verify.registry import get_row, names

    if args.layer is not None:
        from backprop.verify.loader import LoadError, load_class

        if args.names:
            raise UsageError(
                f"layer names ({' '.join(args.names)}) cannot be combined with --layer {args.layer}"
            )
        if args.shard is not None:
            raise UsageError("--shard splits the registry's rows; it cannot be combined with --layer")
        if args.against is None:
            raise UsageError(f"--layer {args.layer} needs --against NAME; known: {', '.join(names())}")
        # a registered row may drive other methods than forward/backward (a network's loss and gradient)
        known = args.against in names()
        methods = get_row(args.against).methods if known else None
        function = known and get_row(args.against).function is not None  # im2col: the book's function
        try:
            # first, so that its module keeps the file's own name
            cls = load_class(args.layer, methods, function)
        except LoadError as exc:
            raise UsageError(str(exc)) from None
        against = _against(args.against)
        name = against if isinstance(against, str) else against.name
        label = f"{cls.__module__}.{cls.__qualname__} vs {name}"
        command = f"{PROG} --layer {shlex.quote(args.layer)} --against {shlex.quote(args.against)}"
        targets = _per_dtype(args, cls, against, label, command, (args.layer, args.against))
        if not targets:
            raise UsageError(get_row(against).dtype_refusal(cls, args.dtype))
        return targets
    if args.against is not None:
        raise UsageError(f"--against {args.against} needs --layer FILE.py:CLASS or MODULE:CLASS")
    chosen = [_check_name(n) for n in dict.fromkeys(args.names)] if args.names else list(names())
    if args.shard is not None:
        k, n = args.shard
        chosen = chosen[k - 1 :: n]  # by row, in registry order: the same split on every machine
        if not chosen:
            raise UsageError(f"--shard {k}/{n}: no rows left (there are fewer rows than shards)")
    targets = [t for n in chosen for t in _per_dtype(args, get_row(n).layer, n, n, f"{PROG} {n}")]
    missing = [n for n in chosen if not any(t.against == n for t in targets)]
    if args.names and missing:  # a row named explicitly in a dtype it lacks; unnamed ones are skipped
        row = get_row(missing[0])
        raise UsageError(row.dtype_refusal(row.layer, args.dtype))
    return targets


def _check_output_path(path: str | None, option: str = "--json") -> None:
    """Fail before the run, not after it, when the report could not be written."""
    if path is None or (path == "-" and option == "--json"):
        return
    if path == "-":
        raise UsageError(f"{option} writes a file: give a path such as report.html, not -")
    if not path.strip():
        stdout = " (or - for stdout)" if option == "--json" else ""
        raise UsageError(f"{option} needs a file path{stdout}, got an empty string")
    parent = Path(path).parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: no such directory: {parent}")
    if Path(path).is_dir():
        raise UsageError(f"{option} {path}: is a directory")
    existed = Path(path).exists()
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write("\n")  # a device that refuses data (/dev/full) fails here, before the run
            f.flush()
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write: {exc.strerror or exc}") from None
    if not existed and Path(path).is_file():
        Path(path).unlink()


# ---- running ---------------------------------------------------------------------------------------------


def _progress(console: Console, live: bool) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=not live,
    )


def run_targets(targets: Sequence[Target], args: argparse.Namespace, err: Console) -> RunReport:
    """Verify every target, showing live progress on a terminal or one line per layer otherwise; the rows
    go to worker processes when there are several and ``--jobs`` allows it."""
    from backprop.verify.report import RunReport, after_timeout

    live = not args.quiet and err.is_terminal
    run = RunReport(seed=args.seed, max_examples=args.examples)
    width = max(len(f"{t.label} {t.dtype}") for t in targets)
    groups = _groups(targets)
    workers = args.jobs or os.cpu_count() or 1
    with _progress(err, live) as progress:
        tasks = [
            progress.add_task(
                f"{t.label} {t.dtype}".ljust(width), total=args.examples, start=False, status=""
            )
            for t in targets
        ]
        if workers > 1 and len(groups) > 1 and not args.isolate:
            run.layers.extend(_run_parallel(targets, groups, args, err, (progress, tasks), workers))
            return run
        # the engine (JAX) is imported before the first "checking" line: a Ctrl-C during that import can
        # land in one of JAX's garbage-collection callbacks, where Python ignores it; once the check runs,
        # the guard watches for it
        importlib.import_module("backprop.verify.search")
        hung: dict[str, LayerReport] = {}  # by label: a layer that timed out is not called again
        for target, task in zip(targets, tasks, strict=True):
            progress.start_task(task)
            if target.label in hung:
                report = after_timeout(hung[target.label], target.dtype)
            else:
                if not args.quiet and not live:
                    # said before the run, so that a layer that hangs can be seen in a CI log
                    err.print(f"checking {target.label} {target.dtype} ...", markup=False, highlight=False)
                report = _verify_one(target, args, _ticker(progress, task, args.examples))
                if report.timed_out:
                    hung[target.label] = report
            run.layers.append(report)
            _finished(target, report, args, err, (progress, task))
    return run


def _groups(targets: Sequence[Target]) -> list[list[int]]:
    """The targets' positions, one group per row or layer (its dtypes): a worker takes a whole group, so
    the dtypes share its compiled references."""
    by_label: dict[str, list[int]] = {}
    for i, target in enumerate(targets):
        by_label.setdefault(target.label, []).append(i)
    return list(by_label.values())


def _finished(
    target: Target, report: LayerReport, args: argparse.Namespace, err: Console, shown: tuple[Progress, Any]
) -> None:
    """A target's report is in: its failures get the target's own reproduce command (the report knows only
    the ``verify`` call), its progress bar completes, and a summary line goes to a log."""
    for failure in report.failures:
        failure.reproduce = target.reproduce
    progress, task = shown
    progress.update(task, total=report.examples, completed=report.examples, status=report.verdict)
    if not args.quiet and not err.is_terminal:
        err.print(_summary_line(target, report), markup=False, highlight=False, soft_wrap=True)


def _run_parallel(
    targets: Sequence[Target],
    groups: list[list[int]],
    args: argparse.Namespace,
    err: Console,
    shown: tuple[Progress, list[Any]],
    workers: int,
) -> list[LayerReport]:
    """Each group in a worker process; progress moves a layer at a time, in the order they finish."""
    from backprop.verify.parallel import Job, run_groups

    progress, tasks = shown
    name = {i: t.against if isinstance(t.against, str) else t.against.name for i, t in enumerate(targets)}
    jobs = [
        [
            Job(
                targets[i].specs,
                name[i],
                f"{targets[i].layer.__module__}.{targets[i].layer.__qualname__}",
                targets[i].dtype,
                _keywords(args, targets[i].dtype),
            )
            for i in group
        ]
        for group in groups
    ]
    if not args.quiet and not err.is_terminal:
        labels = ", ".join(dict.fromkeys(t.label for t in targets))
        processes = min(workers, len(groups))
        err.print(f"checking {labels} ({len(targets)} runs) in {processes} processes ...", markup=False)
    for task in tasks:
        progress.start_task(task)
    reports: dict[int, LayerReport] = {}

    def done(g: int, finished: list[LayerReport]) -> None:
        for i, report in zip(groups[g], finished, strict=True):
            reports[i] = report
            _finished(targets[i], report, args, err, (progress, tasks[i]))

    run_groups(jobs, workers, done, quiet_stdout=args.json == "-")
    return [reports[i] for i in range(len(targets))]


def _ticker(progress: Progress, task: Any, total: int) -> Callable[[str], None]:
    """Advance ``task`` once per generated example; say so once Hypothesis starts shrinking a failure."""
    shrinking = False

    def tick(phase: str) -> None:
        nonlocal shrinking
        if phase == "generate":
            progress.advance(task)
        elif not shrinking:
            shrinking = True
            progress.update(task, status="shrinking a failure")

    return tick


def _keywords(args: argparse.Namespace, dtype: str) -> dict[str, Any]:
    return {
        "max_examples": args.examples,
        "seed": args.seed,
        "dtype": dtype,
        "without": args.without,
        "strict": True if args.strict else None,
        "allow": args.allow,
        "grad_names": args.grad_names,
        "timeout": args.timeout,
        "eps": args.eps,
    }


def _verify_isolated(target: Target, args: argparse.Namespace) -> LayerReport:
    from backprop.verify.isolate import ChildDied, run_isolated
    from backprop.verify.parallel import verify_job
    from backprop.verify.report import LayerReport

    name = target.against if isinstance(target.against, str) else target.against.name
    keywords = _keywords(args, target.dtype)
    result = run_isolated(verify_job, target.specs, name, keywords, args.json == "-", fresh=True)
    if isinstance(result, ChildDied):
        layer = f"{target.layer.__module__}.{target.layer.__qualname__}"
        return LayerReport(name=name, layer=layer, against=name, dtype=target.dtype, error=result.message)
    return result


def _verify_one(target: Target, args: argparse.Namespace, tick: Callable[[str], None]) -> LayerReport:
    if args.isolate:
        return _verify_isolated(target, args)
    from backprop.verify.search import verify

    return verify(target.layer, target.against, **_keywords(args, target.dtype), on_example=tick)


def _summary_line(target: Target, report: LayerReport) -> str:
    scope = report.scope_sentence()
    return (
        f"{target.label} {target.dtype}: {report.verdict} ({report.examples} examples, "
        f"{report.distinct_shapes} distinct shapes, {report.seconds:.1f} s)" + (f"; {scope}" if scope else "")
    )


# ---- output ----------------------------------------------------------------------------------------------


def make_console(file: IO[str], fit: RenderableType | None = None) -> Console:
    """A console on ``file``, MIN_WIDTH wide or more; when piped, wide enough that ``fit`` never wraps."""
    from rich.console import Console
    from rich.measure import Measurement

    probe = Console(file=file)
    width = max(MIN_WIDTH, probe.width)
    if fit is not None and not probe.is_terminal:
        width = max(width, Measurement.get(probe, probe.options.update_width(10_000), fit).maximum)
    return Console(file=file, width=width)


def _error(value: float) -> str:
    return f"{value:.3g}"


def results_table(targets: Sequence[Target], run: RunReport) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"backprop-verify (seed {run.seed}, {run.max_examples} examples per layer)")
    table.add_column("layer", overflow="fold")
    table.add_column("dtype", no_wrap=True)
    for column in ("examples", "distinct shapes", "compiles", "max abs error", "max rel error"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    if any(r.scope or r.passes_without or r.notes for r in run.layers):
        table.add_column("scope and notes", overflow="fold")
    for target, report in zip(targets, run.layers, strict=True):
        style = "bold green" if report.passed else "bold red"
        table.add_row(
            Text(target.label),
            target.dtype,
            str(report.examples),
            str(report.distinct_shapes),
            _compiles(report),
            _error(report.max_abs),
            _error(report.max_rel),
            Text(report.verdict, style=style),
            *([_scope_cell(report)] if len(table.columns) > 8 else []),
        )
    return table


def _compiles(report: LayerReport) -> str:
    """References this layer's run needed anew, and how many the persistent cache supplied."""
    return f"{report.compiles} ({report.cached} cached)" if report.cached else str(report.compiles)


def _scope_cell(report: LayerReport) -> Text:
    from rich.text import Text

    parts = [report.scope_sentence()] if report.scope_sentence() else []
    if report.notes:
        parts.append(f"{len(report.notes)} note(s) below")
    return Text("; ".join(parts))


def print_results(targets: Sequence[Target], run: RunReport, file: IO[str]) -> None:
    table = results_table(targets, run)
    console = make_console(file, fit=table)
    console.print(table)
    for target, report in zip(targets, run.layers, strict=True):
        scope = report.scope_sentence()
        if report.notes:
            notes = "\n".join(f"  note: {n}" for n in report.notes)
            _plain(console, f"\n{target.label} {target.dtype}:\n{notes}")
        for i, failure in enumerate(report.failures):
            count = f" (failure {i + 1} of {len(report.failures)})" if len(report.failures) > 1 else ""
            _plain(console, "\n" + failure.render(blob=False) + count)
        if report.failures and scope:
            _plain(console, f"  scope: {scope}")
        if report.error is not None:
            heading = "TIMEOUT" if report.timed_out else "ERROR"
            _plain(
                console,
                f"\n{heading} {target.label} {target.dtype}: {report.error}\n  reproduce: {target.reproduce}",
            )
    failed = [f"{t.label} {t.dtype}" for t, r in zip(targets, run.layers, strict=True) if not r.passed]
    total = len(run.layers)
    verdict = f"{len(failed)} of {total} failed: {', '.join(failed)}" if failed else f"all {total} passed"
    _plain(console, f"\n{verdict}")


def _plain(console: Console, text: str) -> None:
    """Print verbatim: no markup (``dx[1, 0]`` is not a tag), no highlighting, no wrapping."""
    console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


def print_list(only: Sequence[str] = ()) -> None:
    """Each registered name with its signature and conventions (only the named ones, if any)."""
    from backprop.verify.registry import ROWS

    rows = [row for row in ROWS if not only or row.name in only]
    width = max(len(row.name) for row in rows)
    for row in rows:
        print(f"{row.name:<{width}}  {row.signature}")
        if row.features:
            print(f"{'':<{width}}  features: {', '.join(f.value for f in row.features)}")
            for feature, (_, wrong) in row.feature_words.items():  # a feature in this row's own sense
                print(f"{'':<{width}}  {feature.value}: {wrong}")
        for convention in row.conventions:
            print(f"{'':<{width}}  convention: {convention}")


def write_html(run: RunReport, path: str, command: str) -> None:
    """The self-contained HTML page of the run (``backprop.verify.html``)."""
    from backprop.verify.html import document

    with open(path, "w", encoding="utf-8") as f:
        f.write(document(run, command))


def write_json(run: RunReport, path: str, stdout: IO[str]) -> None:
    if path == "-":
        json.dump(run.to_json(), stdout, indent=2, allow_nan=False)
        stdout.write("\n")
        return
    with open(path, "w", encoding="utf-8") as f:
        json.dump(run.to_json(), f, indent=2, allow_nan=False)
        f.write("\n")


# ---- entry point -------------------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[Target]]:
    args = build_parser().parse_args(argv)
    if args.list:
        if args.layer is not None or args.against is not None:
            raise UsageError("--list cannot be combined with --layer or --against")
        for name in args.names:
            _check_name(name)
        return args, []
    _check_output_path(args.json)
    _check_output_path(args.html, "--html")
    targets = _targets(args)
    if args.eps is not None:
        from backprop.verify.registry import get_row

        for target in targets:
            try:
                get_row(target.against).at_eps(args.eps)
            except ValueError as exc:
                raise UsageError(f"--eps: {exc}") from None
    return args, targets


@contextlib.contextmanager
def _stdout_kept_for_json(enabled: bool) -> Iterator[None]:
    """With ``--json -`` anything a user's layer prints goes to stderr, so stdout stays valid JSON."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 passed, 1 failed, 2 bad arguments)."""
    try:
        args, targets = _parse(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version-style exits from argparse
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    if args.list:
        print_list(args.names)
        return 0
    if args.no_cache:
        from backprop.verify import cache

        os.environ[cache.OFF] = "1"  # this process and any --isolate child
    stdout = sys.stdout
    json_to_stdout = args.json == "-"
    err = make_console(sys.stderr)
    try:
        with _stdout_kept_for_json(json_to_stdout):
            run = run_targets(targets, args, err)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    print_results(targets, run, sys.stderr if json_to_stdout else stdout)
    if args.json is not None:
        try:
            write_json(run, args.json, stdout)
        except OSError as exc:
            print(f"{PROG}: error: cannot write --json {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    if args.html is not None:
        command = shlex.join([PROG, *(sys.argv[1:] if argv is None else argv)])
        try:
            write_html(run, args.html, command)
        except OSError as exc:
            print(f"{PROG}: error: cannot write --html {args.html}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return 0 if run.passed else 1


if __name__ == "__main__":
    sys.exit(main())
