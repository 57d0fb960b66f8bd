"""Catalogues of layers that test the tester.

``broken.BROKEN`` holds deliberately wrong layers, each with the gradient the oracle must name and the
kinds of mismatch it may report; ``correct.CORRECT`` holds right layers written in unusual ways, which the
oracle must pass; ``learner.LEARNER`` and ``training.TRAINING`` hold layers as learners write them, each
with its pinned verdict. Every layer follows the book's API exactly (constructor, ``forward``, ``backward``
and attribute names), so the registry row named by ``against`` can build and call it unchanged.

Each record is written beside its class, as a decorator (:func:`caught`, :func:`passes`, :func:`expect`,
:func:`expect_in_training`); the lists are assembled from the decorators' registries.

This module also holds the few plain NumPy helpers the broken layers share, so that each broken class
differs from a correct one only in its single deliberate mistake.
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import sys
import tokenize
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from backprop.verify.registry import names as row_names
from backprop.verify.search import VerifyOptions
from backprop.verify.vocabulary import CODES, DTYPES, Allowance, Feature, Kind

Array = NDArray[Any]

KINDS = frozenset(k.value for k in Kind)


@dataclass(frozen=True, kw_only=True)
class Case:
    """A broken layer: the oracle must fail it and name ``check`` with a mismatch kind in ``kinds``."""

    layer: type
    against: str
    check: str
    kinds: frozenset[str]
    diagnosis: str
    why: str
    dtype: str = "float64"
    options: Mapping[str, Any] = field(default_factory=dict)
    """Extra ``verify`` keywords the case needs (``strict=True`` for a kink convention)."""
    or_checks: frozenset[str] = frozenset()
    """Other checks the same mistake may show in, whichever the shrunk example exercises (a lost state shows
    in the outputs when Wh != 0, and only in dWh when Wh = 0)."""

    @property
    def checks(self) -> frozenset[str]:
        return frozenset({self.check}) | self.or_checks

    def __post_init__(self) -> None:
        if self.diagnosis not in CODES:
            raise ValueError(f"{self.name}: diagnosis must be one of {CODES}, got {self.diagnosis!r}")
        unknown = set(self.kinds) - KINDS
        if not self.kinds or unknown:
            raise ValueError(
                f"{self.name}: kinds must be a non-empty subset of {sorted(KINDS)}, got {self.kinds}"
            )

    @property
    def name(self) -> str:
        return self.layer.__name__


@dataclass(frozen=True, kw_only=True)
class Correct:
    """A correct layer written in an unusual way: the oracle must pass it (no false alarm)."""

    layer: type
    against: str
    why: str
    float32: bool = True
    """Also right in float32 (within the float32 tolerance); False documents why not in ``why``."""
    float64: bool = True
    """Also right in float64; False for code in the second book's style, whose ``dtype='f'`` buffers give
    float32 results whatever the input (right with ``--dtype float32`` only)."""

    @property
    def name(self) -> str:
        module = self.layer.__module__
        # the library's own layers are named after their package so they stand out in test ids
        return (
            self.layer.__name__
            if module.startswith("tests.")
            else f"{module.split('.')[0]}.{self.layer.__name__}"
        )


FEATURES: frozenset[str] = frozenset(f.value for f in Feature)
ALLOWANCES: frozenset[str] = frozenset(a.value for a in Allowance)
VERIFY_OPTIONS: frozenset[str] = frozenset(VerifyOptions.__dataclass_fields__) - {
    "dtype",
    "on_example",
    "hypothesis_settings",
}
"""The ``verify()`` keywords an Expect may pass through ``options`` (``dtype`` has its own field)."""


@dataclass(frozen=True, kw_only=True)
class Expect:
    """A learner's layer and the verdict ``verify(layer, against, dtype=dtype, **options)`` must give.

    verdict ``"pass"``: ``report.passed``; every string in ``notes`` is a substring of some entry of
    ``report.notes``.
    verdict ``"fail"``: not ``report.passed``, and

    - every code in ``diagnoses`` is the diagnosis of some mismatch among ``report.failures``;
    - if ``any_of`` is given, at least one of its codes is (for layers whose wrong numbers may read as
      more than one kind of mistake);
    - every feature in ``passes_without`` is in ``report.passes_without`` (a subset: a layer wrong only
      for batches past 8 also passes with a batch of one, so ``batch`` may be reported as well);
    - every string in ``words`` is a substring of the rendered failures, and none in ``not_words`` is (the
      diagnosis names the real cause, not a coincidental one).
    """

    layer: type
    against: str
    why: str
    verdict: Literal["pass", "fail"]
    diagnoses: frozenset[str] = frozenset()
    """Codes that must all appear among the failures' mismatches."""
    any_of: frozenset[str] = frozenset()
    """Codes of which at least one must appear among the failures' mismatches."""
    passes_without: tuple[str, ...] = ()
    """For scoped failures: features whose removal makes the layer pass."""
    notes: tuple[str, ...] = ()
    """Substrings that must appear in ``report.notes``."""
    words: tuple[str, ...] = ()
    """Substrings that must appear in the rendered failures (a diagnosis's sentence or hint)."""
    not_words: tuple[str, ...] = ()
    """Substrings that must not appear there (the misleading words of an earlier diagnosis)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Extra ``verify()`` keywords, e.g. ``{"allow": ("epsilon",)}``."""
    dtype: str = "float64"
    failures: int = 1
    """How many distinct failures the search must find for ``diagnoses`` and ``words`` all to show (the
    first is enough for most; ``tests/test_learner.py`` searches further only for those that say more)."""

    def __post_init__(self) -> None:
        def fix(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        fix("diagnoses", frozenset(self.diagnoses))
        fix("any_of", frozenset(self.any_of))
        fix("passes_without", tuple(self.passes_without))
        fix("notes", tuple(self.notes))
        fix("words", tuple(self.words))
        fix("not_words", tuple(self.not_words))
        fix("options", MappingProxyType(dict(self.options)))

        if self.verdict not in ("pass", "fail"):
            raise ValueError(f"{self.name}: verdict must be 'pass' or 'fail', got {self.verdict!r}")
        if self.against not in row_names():
            raise ValueError(f"{self.name}: unknown row {self.against!r}; known: {row_names()}")
        if self.dtype not in DTYPES:
            raise ValueError(f"{self.name}: dtype must be one of {DTYPES}, got {self.dtype!r}")
        for label, codes in (("diagnoses", self.diagnoses), ("any_of", self.any_of)):
            unknown = sorted(set(codes) - set(CODES))
            if unknown:
                raise ValueError(f"{self.name}: {label} must be codes from {CODES}, got {unknown}")
        _check_features(self.name, "passes_without", self.passes_without)
        self._check_options()
        if self.failures < 1 or (self.verdict == "pass" and self.failures != 1):
            raise ValueError(f"{self.name}: failures must be 1 or more, and 1 for a passing layer")
        if self.verdict == "pass" and (self.diagnoses or self.any_of or self.passes_without or self.words):
            raise ValueError(f"{self.name}: a passing layer has no diagnoses, any_of or passes_without")
        if self.verdict == "fail" and not (self.diagnoses or self.any_of or self.passes_without):
            raise ValueError(
                f"{self.name}: a failing layer must say what to expect: diagnoses, any_of or passes_without"
            )

    def _check_options(self) -> None:
        unknown = sorted(set(self.options) - VERIFY_OPTIONS)
        if unknown:
            raise ValueError(
                f"{self.name}: options must be verify() keywords from {sorted(VERIFY_OPTIONS)}, got {unknown}"
                + ("; give dtype as Expect(dtype=...)" if "dtype" in unknown else "")
            )
        _check_features(self.name, "options['without']", self.options.get("without", ()))
        allowed = self.options.get("allow", ())
        if isinstance(allowed, str) or sorted(set(allowed) - ALLOWANCES):
            raise ValueError(
                f"{self.name}: options['allow'] must be a tuple of {sorted(ALLOWANCES)}, got {allowed!r}"
            )
        grad_names = self.options.get("grad_names")
        if grad_names is not None and not (
            isinstance(grad_names, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in grad_names.items())
        ):
            raise ValueError(f"{self.name}: options['grad_names'] must map str to str, got {grad_names!r}")

    @property
    def name(self) -> str:
        """A test id: the class name, then the options and dtype that tell its entries apart."""
        parts = [self.layer.__name__]
        for key, value in sorted(self.options.items()):
            if value is True:
                parts.append(key)
            elif isinstance(value, Mapping):
                parts.append(f"{key}=" + "+".join(f"{k}:{v}" for k, v in sorted(value.items())))
            elif isinstance(value, tuple | list | frozenset | set):
                parts.append(f"{key}=" + "+".join(sorted(str(v) for v in value)))
            else:
                parts.append(f"{key}={value}")
        if self.dtype != "float64":
            parts.append(self.dtype)
        return "-".join(parts)


def _check_features(name: str, label: str, features: Iterable[str]) -> None:
    if isinstance(features, str):
        raise ValueError(f"{name}: {label} must be a tuple of features, got the string {features!r}")
    unknown = sorted(set(features) - FEATURES)
    if unknown:
        raise ValueError(f"{name}: {label} must be features from {sorted(FEATURES)}, got {unknown}")


def codes(*names: str) -> frozenset[str]:
    return frozenset(names)


# ---- the records sit beside their classes --------------------------------------------------------------

R = TypeVar("R", Case, Correct, Expect)
L = TypeVar("L", bound=type)


class Registry(Generic[R]):
    """The records one decorator files, kept module by module in the order the decorators run.

    A catalogue's list is assembled from named modules in a fixed order (:meth:`of`), so it is the same
    whichever catalogue module a test happened to import first."""

    def __init__(self) -> None:
        self._by_module: dict[str, list[R]] = {}

    def file(self, module: str, record: R) -> None:
        records = self._by_module.setdefault(module, [])
        # stacked decorators run bottom-up: a record goes before those its class already has, so a class's
        # records keep the top-down order in which they are written
        i = len(records)
        while i and records[i - 1].layer is record.layer:
            i -= 1
        records.insert(i, record)

    def of(self, *modules: ModuleType) -> list[R]:
        return [record for m in modules for record in self._by_module.get(m.__name__, [])]


BROKEN_RECORDS: Registry[Case] = Registry()
CORRECT_RECORDS: Registry[Correct] = Registry()
LEARNER_RECORDS: Registry[Expect] = Registry()
TRAINING_RECORDS: Registry[Expect] = Registry()


def _caller_module() -> str:
    """The module whose body applies the decorator (two frames up: this function, then the decorator): a
    loaded class's own ``__module__`` need not be the catalogue module that records it."""
    return str(sys._getframe(2).f_globals["__name__"])


def caught(*, kinds: Iterable[str], or_checks: Iterable[str] = (), **fields: Any) -> Callable[[L], L]:
    """Record the class below as broken: the oracle must fail it as :class:`Case` ``(**fields)`` says."""
    module = _caller_module()

    def register(layer: L) -> L:
        case = Case(layer=layer, kinds=frozenset(kinds), or_checks=frozenset(or_checks), **fields)
        BROKEN_RECORDS.file(module, case)
        return layer

    return register


def passes(**fields: Any) -> Callable[[L], L]:
    """Record the class below as right: the oracle must pass it (:class:`Correct` ``(**fields)``)."""
    module = _caller_module()

    def register(layer: L) -> L:
        CORRECT_RECORDS.file(module, Correct(layer=layer, **fields))
        return layer

    return register


def expect(**fields: Any) -> Callable[[L], L]:
    """Record the learner's verdict for the class below (:class:`Expect` ``(**fields)``); stack one per
    verdict."""
    module = _caller_module()

    def register(layer: L) -> L:
        LEARNER_RECORDS.file(module, Expect(layer=layer, **fields))
        return layer

    return register


def expect_in_training(**fields: Any) -> Callable[[L], L]:
    """As :func:`expect`, for a layer right once but wrong in training (``training.TRAINING``): its failures'
    printed programs are also run."""
    module = _caller_module()

    def register(layer: L) -> L:
        TRAINING_RECORDS.file(module, Expect(layer=layer, **fields))
        return layer

    return register


# ---- the buggy line ------------------------------------------------------------------------------------


def is_bug_marker(comment: str) -> bool:
    """Whether a comment token holds the marker: ``# BUG`` alone, ``# BUG: <why>``, or ``# BUG`` after a
    pragma that must stay first (``# type: ignore[...]  # BUG``)."""
    return any(part.strip() == "BUG" or part.strip().startswith("BUG: ") for part in comment.split("#")[1:])


def bug_markers(source: str) -> list[int]:
    """The 1-based lines of ``source`` whose comment carries the ``# BUG`` marker."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [t.start[0] for t in tokens if t.type == tokenize.COMMENT and is_bug_marker(t.string)]


@functools.cache
def _read(file: str) -> tuple[dict[str, tuple[int, int]], tuple[int, ...]]:
    """A source file's classes (qualified name: first and last line of the ``class`` statement) and its
    marked lines, parsed once: ``inspect.getsourcelines`` parses the whole module again for every class."""
    source = Path(file).read_text()
    spans: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                spans[prefix + child.name] = (child.lineno, child.end_lineno or child.lineno)
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, f"{prefix}{child.name}.<locals>.")

    visit(ast.parse(source), "")
    return spans, tuple(bug_markers(source))


def class_span(cls: type) -> tuple[str, int, int]:
    """The file of a class and the first and last line of its ``class`` statement."""
    file = inspect.getsourcefile(cls)
    if file is None:
        raise ValueError(f"{cls.__name__}: no source file")
    start, end = _read(file)[0][cls.__qualname__]
    return file, start, end


def bug_line(cls: type) -> tuple[str, int] | None:
    """Where a catalogue class's one wrong line is: its file and line number, read from the ``# BUG`` marker
    in the class's own source; None for a class whose mistake is not one line (several lines, a class-level
    attribute, a part it builds, a missing statement). Raises ValueError for more than one marker."""
    file, start, end = class_span(cls)
    marked = [line for line in _read(file)[1] if start <= line <= end]
    if len(marked) > 1:
        raise ValueError(f"{cls.__name__}: {len(marked)} '# BUG' markers; a class has one wrong line at most")
    return (file, marked[0]) if marked else None


# ---- shared plain-NumPy helpers for the broken layers --------------------------------------------------


def sum_to(grad: Any, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` down to ``shape``, undoing broadcasting; always returns a new array."""
    g = np.array(grad, copy=True)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return np.asarray(g)


def stable_sigmoid(x: Array) -> Array:
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1 / (1 + e), e / (1 + e)))


def log_softmax(x: Array) -> Array:
    shifted = x - x.max(axis=-1, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)))


def one_hot(t: Array, x: Array) -> Array:
    """Integer labels (N,) as one-hot (N, C) in x's dtype; a one-hot t is returned as is."""
    t = np.asarray(t)
    if t.shape == x.shape:
        return t.astype(x.dtype)
    return np.eye(x.shape[-1], dtype=x.dtype)[t]
