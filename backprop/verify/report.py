"""What the oracle found: one failing example (``Failure``, with each failed check's ``Mismatch``), one layer
(``LayerReport``) and one run (``RunReport``), with a plain-text rendering and a versioned JSON form.

Data only: it imports no part of the engine (no JAX), and the HTML it shows in Jupyter is rendered by
``backprop.verify.html``, imported when asked for (that module imports no report at run time: no cycle).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from backprop.verify.mismatch import Located, Mismatch, nan_safe, number
from backprop.verify.vocabulary import FEATURE_WORDS, SPECIFICITY, Code, Feature

if TYPE_CHECKING:
    from backprop.verify.witness import Witness

JSON_SCHEMA = "backprop-verify/1"


@dataclass(frozen=True)
class Example:
    """One drawn case: every argument's value by name, and one cotangent per output."""

    row: str
    dtype: str
    values: dict[str, Any]
    cotangents: tuple[Any, ...]

    def shapes(self, outputs: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
        out = {k: tuple(np.shape(v)) for k, v in self.values.items() if isinstance(v, np.ndarray)}
        for name, cot in zip(outputs, self.cotangents, strict=True):
            out[f"d{name}"] = tuple(np.shape(cot))
        return out

    def source(self) -> str:
        """Python that rebuilds the example's arrays exactly (floats round-trip through repr)."""
        douts = [f"dout{'' if len(self.cotangents) == 1 else i}" for i in range(len(self.cotangents))]
        lines = ["import numpy as np"]
        lines += [f"{name} = {literal(value)}" for name, value in self.values.items()]
        lines += [f"{d} = {literal(c)}" for d, c in zip(douts, self.cotangents, strict=True)]
        return "\n".join(lines)


@dataclass
class Failure:
    """A failing example, with every check that failed on it and how to reproduce it."""

    layer: str
    against: str
    example: Example
    shapes: dict[str, tuple[int, ...]]
    mismatches: list[Mismatch]
    seed: int | None = None
    blob: str | None = None
    reproduce: str | None = None
    witnesses: list[Witness] = field(default_factory=list)
    program: str = ""
    convention: str = ""
    notes: list[str] = field(default_factory=list)
    shrunk: bool = True
    """False when the search ended on a call that timed out: the example is as drawn."""
    located: Located | None = None
    """The first wrong line of the layer's own code, found on this example (None: not searched)."""
    calls: list[Any] = field(default_factory=list, repr=False, compare=False)
    """The calls that ran up to the failure, as the check stages recorded them (``stages.Call``): the
    program is rendered from them."""

    @property
    def diagnosis(self) -> str:
        """The most specific diagnosis among the failed checks (``vocabulary.SPECIFICITY``)."""
        codes = {m.diagnosis for m in self.mismatches}
        return next((c.value for c in SPECIFICITY if c.value in codes), Code.OTHER.value)

    def headline(self) -> str:
        hung = list(dict.fromkeys(m.check for m in self.mismatches if m.kind == "timeout"))
        wrong = [c for c in dict.fromkeys(m.check for m in self.mismatches) if c not in hung]
        said = [
            f"{', '.join(checks)} {what}"
            for checks, what in ((wrong, "wrong"), (hung, "timed out"))
            if checks
        ]
        return f"{self.layer} (checked against '{self.against}'): {'; '.join(said)}"

    def render(self, *, blob: bool = True) -> str:
        shapes = ", ".join(f"{k} {v}" for k, v in self.shapes.items())
        lines = [f"FAIL {self.headline()}", f"  shapes: {shapes}   dtype: {self.example.dtype}"]
        if self.convention and self.convention != "no parameters":
            lines.append(f"  convention: {self.convention}")
        lines += ["  " + m.render().replace("\n", "\n  ") for m in self.mismatches]
        lines += [f"  third witness, {w.sentence()}" for w in self.witnesses]
        lines += ["  " + line for line in culprit_lines(self.located)]
        if self.shrunk:
            lines.append("  smallest failing example (shrunk by Hypothesis):")
        else:
            lines.append(
                "  failing example as drawn (not shrunk: a layer that timed out is not called again):"
            )
        lines += ["    " + line for line in (self.program or self.example.source()).splitlines()]
        if self.reproduce:
            lines.append(f"  reproduce: {self.reproduce}")
        if self.blob and blob:
            lines.append(f"  hypothesis blob: {self.blob}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "against": self.against,
            "diagnosis": self.diagnosis,
            "convention": self.convention,
            "checks": [m.to_json() for m in self.mismatches],
            "witnesses": [nan_safe(w.to_json()) for w in self.witnesses],
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "example": {
                "dtype": self.example.dtype,
                "values": {k: _value(v) for k, v in self.example.values.items()},
                "cotangents": [_value(c) for c in self.example.cotangents],
            },
            "program": self.program,
            "notes": list(self.notes),
            "seed": self.seed,
            "hypothesis_blob": self.blob,
            "reproduce": self.reproduce,
            "shrunk": self.shrunk,
            "culprit": None
            if self.located is None or self.located.culprit is None
            else self.located.culprit.to_json(),
            "culprit_note": "" if self.located is None else self.located.note,
        }


def _brief(value: Any) -> str:
    """An array on one short line (its first and last elements when long)."""
    text = np.array2string(np.asarray(value), precision=4, threshold=8, edgeitems=2, max_line_width=10**6)
    return " ".join(text.split())


def culprit_lines(located: Located | None) -> list[str]:
    """The culprit block of the text report: the line, what its array should have been and was, and the
    lines before it that were right; or the one sentence saying why no line is named."""
    if located is None:
        return []
    found = located.culprit
    if found is None:
        return [f"culprit: none named: {located.note}"] if located.note else []
    lines = [f"line {found.line} of {os.path.basename(found.file)}: {found.source}"]
    if found.expected is not None and found.actual is not None:
        expected = found.expected
        if expected.size == found.actual.size:
            expected = expected.reshape(found.actual.shape)
        lines.append(
            f"    {found.variable} should be {found.node}: {_brief(expected)}; got {_brief(found.actual)}"
        )
    if found.right:
        verb = "matches" if len(found.right) == 1 else "match"
        lines.append(f"    the lines before it are right: {', '.join(found.right)} {verb}")
    return lines


@dataclass
class LayerReport:
    """The outcome of checking one layer class against one registry row."""

    name: str
    layer: str
    against: str
    dtype: str
    convention: str = ""
    examples: int = 0
    shrink_steps: int = 0
    distinct_shapes: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None
    scope: tuple[str, ...] = ()
    """Features turned off for this run (``--without``): the verdict holds only without them."""
    passes_without: tuple[str, ...] = ()
    """After a failure: each feature whose absence makes the layer pass."""
    words: dict[str, tuple[str, str]] = field(default_factory=dict)
    """The row's own words for a feature in the scope sentence (``Row.feature_words``)."""
    notes: list[str] = field(default_factory=list)
    """What a passing layer should still know: the subgradient it chose, its warnings, what was allowed."""
    compiles: int = 0
    """References this run needed that the process had not built before."""
    cached: int = 0
    """Of those, how many the persistent cache supplied (the rest were compiled)."""
    example_errors: list[float] = field(default_factory=list, repr=False)
    """Each generated example's largest relative error over its passed checks (the HTML histogram)."""
    timed_out: bool = False
    """A call into the layer did not return within the time limit: the check ended there, or (``error``)
    was not run, because the same layer's check in another dtype had timed out."""

    @property
    def failure(self) -> Failure | None:
        """The first failure found (the one every later search was run around)."""
        return self.failures[0] if self.failures else None

    @failure.setter
    def failure(self, value: Failure | None) -> None:
        self.failures = [] if value is None else [value, *self.failures[1:]]

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None

    @property
    def mistakes(self) -> int:
        """Distinct mistakes found: distinct (check, diagnosis) pairs over every failure."""
        return len({(m.check, m.diagnosis) for f in self.failures for m in f.mismatches})

    @property
    def verdict(self) -> str:
        if self.timed_out:
            return "timeout"
        if self.error:
            return "error"
        if self.failures:
            n = self.mistakes
            return "FAIL" if n <= 1 else f"FAIL ({n} mistakes)"
        return "pass"

    def scope_sentence(self) -> str:
        """The scope in words: what was left out, and where a failing layer is right."""
        words = []
        if self.scope:
            words.append("checked without " + ", ".join(self.scope))
        for name in self.passes_without:
            right, wrong = self.words.get(name) or FEATURE_WORDS[Feature(name)]
            words.append(f"right on {right}; wrong when {wrong}")
        return "; ".join(words)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layer": self.layer,
            "against": self.against,
            "dtype": self.dtype,
            "convention": self.convention,
            "passed": self.passed,
            "verdict": self.verdict,
            "examples": self.examples,
            "shrink_steps": self.shrink_steps,
            "distinct_shapes": self.distinct_shapes,
            "max_abs_error": number(self.max_abs),
            "max_rel_error": number(self.max_rel),
            "seconds": round(self.seconds, 4),
            "failure": None if self.failure is None else self.failure.to_json(),
            "failures": [f.to_json() for f in self.failures],
            "mistakes": self.mistakes,
            "error": self.error,
            "timed_out": self.timed_out,
            "scope": list(self.scope),
            "passes_without": list(self.passes_without),
            "scope_sentence": self.scope_sentence(),
            "notes": list(self.notes),
            "compiles": {"hits": self.cached, "misses": self.compiles - self.cached},
        }

    def _repr_html_(self) -> str:
        """Jupyter shows the verdict with its heat maps (the HTML report of this layer alone)."""
        from backprop.verify.html import fragment

        return fragment(self)


def after_timeout(hung: LayerReport, dtype: str) -> LayerReport:
    """The report of ``hung``'s layer in another ``dtype``, not checked: a layer that hung once is not
    called again (another dtype's check would cost at least the whole time limit again)."""
    call = next(
        (m.message for f in hung.failures for m in f.mismatches if m.kind == "timeout"), "a call timed out"
    )
    return LayerReport(
        name=hung.name,
        layer=hung.layer,
        against=hung.against,
        dtype=dtype,
        scope=hung.scope,
        words=hung.words,
        timed_out=True,
        error=f"not checked: its {hung.dtype} check timed out ({call}), so it is not called again",
    )


@dataclass
class RunReport:
    """Every layer checked in one run."""

    seed: int
    max_examples: int
    layers: list[LayerReport] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": JSON_SCHEMA,
            "passed": self.passed,
            "seed": self.seed,
            "max_examples": self.max_examples,
            "layers": [r.to_json() for r in self.layers],
        }

    def _repr_html_(self) -> str:
        """Jupyter shows the HTML report: the results table, then each layer's details."""
        from backprop.verify.html import fragment

        return fragment(self)


def literal(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"np.array({value.tolist()!r}, dtype=np.{value.dtype.name})"
    return repr(value)


def _value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.name, "shape": list(value.shape), "data": nan_safe(value.tolist())}
    return nan_safe(value)
