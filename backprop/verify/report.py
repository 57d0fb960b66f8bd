"""What the oracle found: one failed check (``Mismatch``), one failing example (``Failure``), one layer
(``LayerReport``) and one run (``RunReport``), with a plain-text rendering and a versioned JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backprop.verify.diagnose import Evidence
from backprop.verify.vocabulary import FEATURE_WORDS, SPECIFICITY, Code, Feature
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


@dataclass(frozen=True)
class Mismatch:
    """One check that failed: which output or gradient, what kind of failure, and the worst element."""

    check: str
    kind: str
    message: str
    expected_shape: tuple[int, ...] | None = None
    actual_shape: tuple[int, ...] | None = None
    index: tuple[int, ...] | None = None
    expected: float | None = None
    actual: float | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    diagnosis: str = "other"
    explanation: str = ""
    hint: str = ""

    def render(self) -> str:
        lines = [f"{self.check}: {self.message}"]
        if self.explanation.rstrip(".") == f"{self.check} {self.message}".rstrip(".") or (
            self.explanation.rstrip(".") == self.message.rstrip(".")
        ):
            lines[0] = f"{self.check}: [{self.diagnosis}] {self.explanation}"
        elif self.explanation:
            lines.append(f"    [{self.diagnosis}] {self.explanation}")
        if self.hint:
            lines.append(f"    hint: {self.hint}")
        if self.index is not None:
            where = f"{self.check}[{', '.join(map(str, self.index))}]" if self.index else self.check
            lines.append(f"    worst element {where}: expected {self.expected!r}, actual {self.actual!r}")
        if self.max_abs is not None:
            lines.append(f"    max abs error {self.max_abs:.3g}, max rel error {self.max_rel:.3g}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "kind": self.kind,
            "diagnosis": self.diagnosis,
            "message": self.message,
            "explanation": self.explanation,
            "hint": self.hint,
            "expected_shape": _list(self.expected_shape),
            "actual_shape": _list(self.actual_shape),
            "index": _list(self.index),
            "expected": _num(self.expected),
            "actual": _num(self.actual),
            "max_abs_error": _num(self.max_abs),
            "max_rel_error": _num(self.max_rel),
        }


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
    evidence: list[Evidence] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)
    shrunk: bool = True
    """False when the search ended on a call that timed out: the example is as drawn."""

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
        if self.shrunk:
            lines.append("  smallest failing example (shrunk by Hypothesis):")
        else:
            lines.append(
                "  failing example as drawn (not shrunk: a layer that timed out is not called again):"
            )
        lines += ["    " + line for line in (self.program or example_lines(self.example)).splitlines()]
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
            "witnesses": [_nan_safe(w.to_json()) for w in self.witnesses],
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
        }


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
            "max_abs_error": _num(self.max_abs),
            "max_rel_error": _num(self.max_rel),
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


def example_lines(example: Example) -> str:
    """Python that rebuilds the example's arrays exactly (floats round-trip through repr)."""
    douts = [f"dout{'' if len(example.cotangents) == 1 else i}" for i in range(len(example.cotangents))]
    lines = ["import numpy as np"]
    lines += [f"{name} = {literal(value)}" for name, value in example.values.items()]
    lines += [f"{d} = {literal(c)}" for d, c in zip(douts, example.cotangents, strict=True)]
    return "\n".join(lines)


def literal(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"np.array({value.tolist()!r}, dtype=np.{value.dtype.name})"
    return repr(value)


def _value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.name, "shape": list(value.shape), "data": _nan_safe(value.tolist())}
    return _nan_safe(value)


def _nan_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as strings so the report stays strict JSON."""
    if isinstance(value, list):
        return [_nan_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _nan_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    return value


def _num(value: float | None) -> float | str | None:
    return None if value is None else _nan_safe(float(value))


def _list(value: tuple[int, ...] | None) -> list[int] | None:
    return None if value is None else list(value)
