"""The search: Hypothesis draws examples, ``check_example`` judges each, and every failure is shrunk.

``verify`` searches once; when it finds a failure it searches again with each failed check set aside (up to
``MAX_FAILURES`` distinct failures, each with its own shrunk example), then once more without each feature
the first failing example used, to say where the layer is right ("right on same-shape inputs; wrong when
the inputs broadcast"). A call into the layer that times out ends the whole check there: the example it
hung on is reported as it was drawn, unshrunk, and no further search calls the layer again, since each
call of a hanging layer would cost the whole time limit.
"""

from __future__ import annotations

import contextlib
import operator
import re
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, HypothesisWarning

from backprop.verify.draw import Without, without_set
from backprop.verify.loader import api_problem
from backprop.verify.oracle import (
    LayerMismatch,
    Options,
    check_example,
    diagnose_failure,
    examples,
    guard_for,
)
from backprop.verify.registry import ROWS, get_row
from backprop.verify.report import Failure, LayerReport, RunReport
from backprop.verify.row import BOOK_API, Row
from backprop.verify.runner import compilations
from backprop.verify.vocabulary import DTYPES, Allowance, Feature
from backprop.verify.witness import Witness, witness

MAX_FAILURES = 5


@dataclass
class _Search:
    """One Hypothesis run: how many examples it generated and the failure it shrank, if any."""

    examples: int = 0
    shrink_steps: int = 0
    shapes: set[Any] = field(default_factory=set)
    failure: Failure | None = None
    blob: str | None = None
    max_abs: float = 0.0
    max_rel: float = 0.0
    notes: list[str] = field(default_factory=list)
    convention: str = ""
    errors: list[float] = field(default_factory=list)
    """Each generated example's largest relative error (the report's histogram)."""
    hang: Failure | None = None
    """The example on which a call timed out, which ended the search (``failure`` too, unless the search
    was shrinking an earlier failure: then that one stays, unshrunk)."""


class _Hung(BaseException):
    """Ends a Hypothesis run at the example where a call timed out: shrinking it, or drawing more, would
    call a hanging layer again. Not an ``Exception``, so that Hypothesis lets it through untouched."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.headline())
        self.failure = failure


class _NoConstants:
    """An empty pool of "local constants" (see ``_own_constants``)."""

    def set_for_type(self, choice_type: str) -> tuple[()]:
        return ()


@contextlib.contextmanager
def _own_constants() -> Iterator[None]:
    """Draw from the rows' value domains only. Hypothesis mixes in numbers found in the source of every
    local module imported so far, so the same seed would draw different examples depending on what else
    the process happened to load (a test run before, the user's other files): a verdict must not depend
    on that. This reaches into Hypothesis's internals; if they change, the search goes on without it."""
    try:
        from hypothesis.internal.conjecture import providers

        original, cache = providers._get_local_constants, providers.CONSTANTS_CACHE.cache
    except (ImportError, AttributeError):
        yield
        return
    setattr(providers, "_get_local_constants", _NoConstants)  # noqa: B010 - replacing a module function
    cache.clear()
    try:
        yield
    finally:
        setattr(providers, "_get_local_constants", original)  # noqa: B010
        cache.clear()


def search_settings(max_examples: int, parent: settings | None = None) -> settings:
    """The Hypothesis settings of every search: no database and no deadline (a run depends on nothing
    but its seed), generation and shrinking only, quiet; ``parent`` (a loaded profile) for the rest."""
    return settings(
        parent,
        max_examples=max_examples,
        database=None,
        deadline=None,
        print_blob=True,
        derandomize=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        verbosity=Verbosity.quiet,
    )


def _search(
    row: Row,
    layer: type,
    dtype: str,
    without: Without,
    opts: Options,
    run_with: VerifyOptions,
    on_example: Callable[[str], None] | None,
) -> _Search:
    found = _Search()
    strategy = examples(row, dtype, without=without)

    @search_settings(run_with.max_examples, run_with.hypothesis_settings)
    @hypothesis_seed(run_with.seed)
    @given(strategy)
    def run(example: Any) -> None:
        assume(not (row.features_of(example.values) & without))
        # once an example has failed, every further call is Hypothesis shrinking it
        phase = "shrink" if found.failure is not None else "generate"
        if phase == "generate":
            found.examples += 1
            found.shapes.add(tuple(sorted(example.shapes(row.outputs).items())))
        else:
            found.shrink_steps += 1
        if on_example is not None:
            on_example(phase)
        try:
            measured = check_example(row, layer, example, opts, diagnosed=False, guard=guard)
        except LayerMismatch as exc:
            if guard.timed_out is not None:
                raise _Hung(exc.failure) from None
            found.failure = found.failure or exc.failure
            raise
        worst = max((r for _, r in measured.errors.values()), default=0.0)
        target(worst, label="max relative error")
        if phase == "generate":
            found.errors.append(worst)
        found.convention = found.convention or measured.convention
        for note in measured.notes:
            if note not in found.notes:
                found.notes.append(note)
        for abs_err, rel_err in measured.errors.values():
            found.max_abs, found.max_rel = max(found.max_abs, abs_err), max(found.max_rel, rel_err)

    with guard_for(layer, opts) as guard, _own_constants(), warnings.catch_warnings():
        # Hypothesis warns that a failing example's repr is large (a 28x28 image); the report prints the
        # example as a program of its own
        warnings.filterwarnings("ignore", "Generating overly large repr", HypothesisWarning)
        try:
            run()
        except LayerMismatch as exc:
            found.failure, found.blob = exc.failure, _blob(exc)
        except _Hung as hung:
            found.hang = hung.failure
            found.failure = found.failure or hung.failure
            found.failure.shrunk = found.hang.shrunk = False
    found.notes += [f"your layer warned: {note}" for note in guard.notes()]
    return found


def _blob(exc: BaseException) -> str | None:
    for note in getattr(exc, "__notes__", []):
        hit = re.search(r"@reproduce_failure\([^)]*\)", note)
        if hit:
            return hit.group(0)
    return None


def _witnesses(row: Row, failure: Failure) -> list[Witness]:
    """Finite differences on each gradient whose values disagree with jax.vjp; none for a row whose
    reference needs hidden state drawn by the layer (a dropout mask), which the example does not hold."""
    if row.capture is not None:
        return []
    differentiable = {a.name for a in row.differentiable}
    ex = failure.example
    return [
        witness(row, ex.values, ex.cotangents, ev.primal, ev.check, ev.actual, ev.expected)
        for ev in failure.mismatches
        if ev.kind == "value"
        and ev.primal in differentiable
        and ev.actual is not None
        and ev.expected is not None
    ]


# ---- arguments ---------------------------------------------------------------------------------------------


def as_layer(layer: Any, against: str | Row) -> Any:
    """``layer``, or the class that drives it when it is a function and the row's book form is one
    (im2col): ``Row.function``."""
    if isinstance(layer, type) or not callable(layer):
        return layer
    try:
        wrap = get_row(against).function
    except ValueError:  # an unknown row is reported by the caller
        return layer
    return wrap(layer) if wrap is not None else layer


def _api_problem(layer: Any, against: str | Row) -> str | None:
    """Why ``layer`` cannot be driven by the row: the book's forward/backward API, or the methods a row
    that drives others declares (a network's loss and gradient). An unknown row is reported after this."""
    try:
        methods = get_row(against).methods
    except ValueError:
        methods = BOOK_API
    if methods == BOOK_API or not isinstance(layer, type):
        return api_problem(layer)
    missing = [m for m in methods if not callable(getattr(layer, m, None))]
    if not missing:
        return None
    name, row = layer.__qualname__.rpartition("<locals>.")[2], get_row(against).name
    return f"{name} has no {' or '.join(missing)} method; the row {row!r} drives {', '.join(methods)}"


def _count(value: Any, what: str, low: int) -> int:
    try:
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or n < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {value!r}")
    return n


def _dtype(value: Any) -> str:
    try:
        name = str(np.dtype(value).name)
    except TypeError:
        name = ""
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {value!r}")
    return name


def _options(
    strict: bool, allow: Collection[str], grad_names: Mapping[str, str] | None, timeout: float | None
) -> Options:
    if isinstance(allow, str):
        raise ValueError(f"allow must be a collection of names, e.g. ('epsilon',), got {allow!r}")
    try:
        allowed = frozenset(Allowance(a) for a in allow)
    except ValueError:
        raise ValueError(
            f"allow: unknown name in {list(allow)}; known: {', '.join(a.value for a in Allowance)}"
        ) from None
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return Options(strict=strict, allow=allowed, grad_names=dict(grad_names or {}), timeout=timeout)


@dataclass(frozen=True, kw_only=True)
class VerifyOptions:
    """How ``verify`` checks a layer, every option checked when the record is made, before anything is drawn
    (a bad value is a ValueError naming it).

    ``without`` turns features off (the verdict then holds only in that scope); ``strict`` fails a layer
    that chooses another valid subgradient at a kink (None: the default, strict for the library's own
    layers, which are pinned to their conventions); ``allow=("epsilon",)`` accepts a ``-log(y + eps)`` loss;
    ``grad_names`` maps the row's gradient names to the layer's (``{"dW": "d_w"}``); ``timeout`` bounds each
    call in seconds; ``eps`` checks a batch normalization at the eps it uses (the book's is 10e-7);
    ``dtype`` defaults to the first the row checks the layer in (float64, but float32 for a book-2 model,
    as the book's). After a failure, up to ``max_failures`` distinct failures are searched for and, with
    ``scope``, the features the layer is wrong with. The same ``seed`` draws the same examples.
    ``hypothesis_settings`` (a loaded profile) is the parent of the settings used; ``on_example`` is called
    with "generate" or "shrink" before each example. ``culprit=False`` skips the search of a failure for its
    first wrong line (the report's ``culprit`` is then null).
    """

    max_examples: int = 100
    seed: int = 0
    dtype: str | None = None
    without: Collection[Feature | str] = ()
    strict: bool | None = None
    allow: Collection[str] = ()
    grad_names: Mapping[str, str] | None = None
    timeout: float | None = 60.0
    eps: float | None = None
    scope: bool = True
    max_failures: int = MAX_FAILURES
    on_example: Callable[[str], None] | None = None
    hypothesis_settings: settings | None = None
    culprit: bool = True

    def __post_init__(self) -> None:
        # kept as given, normalised: a count as an int, a dtype by name, features and allowances as sets
        given = {
            "max_examples": _count(self.max_examples, "max_examples", 1),
            "seed": _count(self.seed, "seed", 0),
            "max_failures": _count(self.max_failures, "max_failures", 1),
            "dtype": None if self.dtype is None else _dtype(self.dtype),
            "without": without_set(self.without),
            "allow": _options(False, self.allow, self.grad_names, self.timeout).allow,
        }
        for name, value in given.items():
            object.__setattr__(self, name, value)

    def options(self, layer: type, row: Row) -> Options:
        """The oracle's options for ``layer`` checked against ``row`` (strict by default for its own layer)."""
        strict = layer is row.layer if self.strict is None else self.strict
        return replace(
            _options(strict, self.allow, self.grad_names, self.timeout), culprit=bool(self.culprit)
        )


def verify(
    layer: type, against: str | Row, options: VerifyOptions | None = None, /, **changes: Any
) -> LayerReport:
    """Check ``layer`` against the row ``against`` (a registered name or a ``Row``) on drawn examples.

    ``options`` (a ``VerifyOptions``) and ``changes``, its fields by keyword (``max_examples=50``,
    ``dtype="float32"``, ``without=("broadcast",)``), say how. Runs are reproducible: the same seed draws
    the same examples. The check runs in this process, so a class defined in a notebook cell or a script's
    ``__main__`` works; its failure's program then says where to run it (``program.import_lines``).
    """
    run_with = VerifyOptions(**changes) if options is None else replace(options, **changes)
    layer = as_layer(layer, against)
    problem = _api_problem(layer, against)
    if problem is not None:
        raise TypeError(problem)
    row = get_row(against)
    if run_with.eps is not None:
        row = row.at_eps(run_with.eps)
    n, seed = run_with.max_examples, run_with.seed
    dtype = row.dtypes_for(layer)[0] if run_with.dtype is None else run_with.dtype
    if dtype in row.dtypes and dtype not in row.dtypes_for(layer):
        raise ValueError(row.dtype_refusal(layer, dtype))
    off = without_set(run_with.without)
    opts = run_with.options(layer, row)
    examples(row, dtype, without=off)  # validates the combination before anything runs
    report = LayerReport(
        name=row.name,
        layer=f"{layer.__module__}.{layer.__qualname__}",
        against=row.name,
        dtype=dtype,
        scope=tuple(sorted(f.value for f in off)),
        words={f.value: w for f, w in row.feature_words.items()},
    )
    start, compiled = time.perf_counter(), compilations()

    def search(without: Without, opts: Options, ticks: Callable[[str], None] | None = None) -> _Search:
        return _search(row, layer, dtype, without, opts, run_with, ticks)

    try:
        first = search(off, opts, run_with.on_example)
    except Flaky as exc:
        report.error = f"the layer gave different results on the same example (nondeterministic): {exc}"
        first = _Search()
    _record(report, first)
    note = getattr(layer, "__note__", "")
    if note:  # a function driven with the library's adjoint says so
        report.notes.append(note)
    if first.failure is not None:
        call = f"verify({layer.__qualname__}, {row.name!r}, seed={seed}, max_examples={n}, dtype={dtype!r})"

        def finish(failure: Failure, found: _Search) -> Failure:
            return _finish(failure, row, layer, opts, found, seed, call)

        _more_failures(report, opts, first, search, finish, run_with.max_failures)
        if run_with.scope and not report.timed_out:
            report.passes_without, hung = _scope(row, first.failure, off, opts, search)
            if hung is not None and hung.hang is not None:
                report.failures = _ending_with(
                    report.failures, finish(hung.hang, hung), run_with.max_failures
                )
                report.timed_out = True
    report.seconds = time.perf_counter() - start
    built, cached = compilations()
    report.compiles, report.cached = built - compiled[0], cached - compiled[1]
    return report


def _record(report: LayerReport, first: _Search) -> None:
    """What the first search measured, into the layer's report."""
    report.examples, report.shrink_steps, report.distinct_shapes = (
        first.examples,
        first.shrink_steps,
        len(first.shapes),
    )
    report.max_abs, report.max_rel = first.max_abs, first.max_rel
    report.notes, report.convention = first.notes, first.convention
    report.example_errors = first.errors


def _finish(
    failure: Failure, row: Row, layer: type, opts: Options, search: _Search, seed: int, call: str
) -> Failure:
    # a layer that hung in this search is not run again to diagnose a failure (each run could hang)
    diagnose_failure(failure, row, layer, opts, rerun=search.hang is None)
    failure.seed, failure.blob = seed, search.blob
    failure.witnesses = _witnesses(row, failure)
    failure.reproduce = call
    return failure


def _found(failure: Failure, search: _Search, finish: Callable[[Failure, _Search], Failure]) -> list[Failure]:
    """A search's failure, and the example a call timed out on when that was another (while shrinking)."""
    found = [finish(failure, search)]
    if search.hang is not None and search.hang is not failure:
        found.append(finish(search.hang, search))
    return found


def _ending_with(failures: list[Failure], hang: Failure, max_failures: int) -> list[Failure]:
    """``failures`` then ``hang``, at most ``max_failures`` in all: the hang, which ended the check, stays."""
    return [*failures[: max_failures - 1], hang]


def _more_failures(
    report: LayerReport,
    opts: Options,
    first: _Search,
    search: Callable[[Without, Options], _Search],
    finish: Callable[[Failure, _Search], Failure],
    max_failures: int,
) -> None:
    """The first failure, then the next ones with each failed (check, kind) set aside; none after a call
    timed out, which ends the check."""
    if first.failure is None:
        return
    failures = _found(first.failure, first, finish)
    hung = first.hang is not None
    off = without_set(report.scope)
    ignore = set(opts.ignore)
    while not hung and len(failures) < max_failures:
        ignore |= {(m.check, m.kind) for m in failures[-1].mismatches}
        again = search(off, replace(opts, ignore=frozenset(ignore)))
        if again.failure is None:
            break
        failures += _found(again.failure, again, finish)
        hung = again.hang is not None
    if len(failures) > max_failures:  # the hang found while shrinking the last one
        failures = _ending_with(failures[:-1], failures[-1], max_failures)
    report.failures = failures
    report.timed_out = hung
    for failure in failures:
        for m in failure.mismatches:
            if m.max_abs is not None and m.max_rel is not None:
                report.max_abs, report.max_rel = (
                    max(report.max_abs, m.max_abs),
                    max(report.max_rel, m.max_rel),
                )


def _scope(
    row: Row, failure: Failure, off: Without, opts: Options, search: Callable[[Without, Options], _Search]
) -> tuple[tuple[str, ...], _Search | None]:
    """Each feature of the failing example whose absence makes the layer pass; and the search in which a
    call timed out, if one did (the scope is then unknown, and no further search runs)."""
    used = sorted(row.features_of(failure.example.values) - off)
    passes = []
    for feature in used:
        if not _drawable(row, off | {feature}):
            continue
        found = search(off | {feature}, opts)
        if found.hang is not None:
            return (), found
        if found.failure is None:
            passes.append(feature.value)
    return tuple(passes), None


def _drawable(row: Row, without: Without) -> bool:
    """Whether the row has shapes left without these features (softmax needs labels or one-hot)."""
    try:
        row.draw_shapes(without)
    except ValueError:
        return False
    return True


def verify_all(
    names: Iterable[str] | None = None,
    *,
    max_examples: int = 100,
    seed: int = 0,
    dtype: str = "float64",
    on_example: Callable[[str], None] | None = None,
) -> RunReport:
    """Check the library's own layers (every registry row, or the named ones) against their references."""
    if isinstance(names, str | Row):
        raise ValueError(
            f"names must be a list of layer names, e.g. [{names!r}], not a single {type(names).__name__}"
        )
    rows = ROWS if names is None else tuple(get_row(n) for n in names)
    run = RunReport(seed=seed, max_examples=_count(max_examples, "max_examples", 1))
    for row in rows:
        run.layers.append(
            verify(row.layer, row, max_examples=max_examples, seed=seed, dtype=dtype, on_example=on_example)
        )
    return run


def verify_or_raise(layer: type, against: str | Row, **kwargs: Any) -> LayerReport:
    """Like ``verify``, but raise ``LayerMismatch`` (an AssertionError) with the full report on failure."""
    report = verify(layer, against, **kwargs)
    if report.failure is not None:
        raise LayerMismatch(report.failure)
    if report.error is not None:
        raise AssertionError(f"{report.layer} against {report.against!r}: {report.error}")
    return report
