"""The program printed with a failure: Python that rebuilds the shrunk example and replays the calls that
failed, exactly as the stage that found the mistake made them, then prints each wrong value next to what
``jax.vjp`` says it should be. It runs from any folder: the layer's own folder goes on ``sys.path``. A layer
defined in a notebook cell or ``python -c`` has no file: its program says to run it in that session."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backprop.verify.report import Example, Failure, literal
from backprop.verify.row import Row

PRINTED = frozenset(
    {"value", "nan", "stale", "param_copy", "stateful", "dout_one", "default_dout", "nondeterministic"}
)
"""The kinds whose program prints the wrong value next to the expected one."""


def import_lines(layer: Any) -> tuple[list[str], str]:
    """How the program gets the class, and the name it is called by there: its file's folder on sys.path
    (so it runs from anywhere), then an import. A class of ``__main__`` is found as ``_main_lines`` says;
    one made inside a function cannot be imported and must be pasted."""
    wraps = getattr(layer, "__wraps__", None)
    if wraps is not None:  # a function driven as the row's layer (im2col): rebuilt from the function
        factory_module, factory, function = wraps
        lines, fn = import_lines(function)
        short = factory.removesuffix("_layer").capitalize()
        return [
            *lines,
            f"from {factory_module} import {factory}",
            f"{short} = {factory}({fn})  # drives {fn} as a layer: forward = {fn}, backward = its adjoint",
        ], short
    name, qualname = layer.__module__, layer.__qualname__
    if "<locals>" not in qualname and name == "__main__":
        return _main_lines(layer)
    file = getattr(sys.modules.get(name), "__file__", None)
    if "<locals>" in qualname or file is None:
        short = layer.__name__
        where = f"a function of {name}" if "<locals>" in qualname else f"{name}, which has no file"
        return [
            f"# {short} is defined in {where}: define it (or assign it) here before running",
            f"{short} = globals()[{short!r}]",
        ], short
    return _import(name, file, qualname), qualname


def _import(module: str, file: str, qualname: str) -> list[str]:
    """``from module import Class``, with the folder that holds the module's top package on sys.path."""
    root = Path(file).resolve().parent
    for _ in range(module.count(".")):
        root = root.parent
    return [
        "import sys",
        f"sys.path.insert(0, {str(root)!r})",
        f"from {module} import {qualname.split('.')[0]}",
    ]


def _main_lines(layer: type) -> tuple[list[str], str]:
    """A class of ``__main__``: run with ``python -m pkg.mod``, it is imported from that module; from a
    script, the script's definitions are run again (``runpy.run_path``: its ``if __name__ == "__main__":``
    block does not run). A notebook cell, ``python -c`` and the prompt have no file to import from: the
    program uses the class by name and says to run it in that session, after the class is defined."""
    main, qualname, short = sys.modules.get("__main__"), layer.__qualname__, layer.__name__
    top = qualname.split(".")[0]
    # runpy.run_module(..., run_name="__main__") runs a file as __main__ without making it sys.modules'
    # __main__: then that module's file is not where the class is
    held = _attribute(main, qualname) is layer
    spec = getattr(main, "__spec__", None) if held else None
    file = getattr(main, "__file__", None) if held else None
    if spec is not None and spec.name not in ("__main__", "") and file is not None:
        return [
            f"# {short} was defined in {spec.name}, run as `python -m {spec.name}`: importing it runs",
            '# its definitions again (not its `if __name__ == "__main__":` block)',
            *_import(spec.name, file, qualname),
        ], qualname
    if isinstance(file, str) and Path(file).is_file():
        path = Path(file).resolve()
        return [
            f"# {short} was defined in the script {path.name}: this runs the script's definitions again",
            '# (its `if __name__ == "__main__":` block does not run; put the script\'s own checks there)',
            "import runpy",
            "import sys",
            f"sys.path.insert(0, {str(path.parent)!r})",
            f"{top} = runpy.run_path({str(path)!r})[{top!r}]",
        ], qualname
    if _in_ipython():
        return [
            f"# {short} was defined in a notebook cell, not in a file Python can import: run this",
            f"# in a new cell of the same notebook (or IPython session), below the cell that defines {short}",
        ], qualname
    return [
        f"# {short} was defined in __main__ with no file to import it from (`python -c`, the prompt): run",
        f"# this in that same session after {short} is defined, or move {short} into a .py file and import it",
    ], qualname


def _attribute(obj: object, qualname: str) -> object:
    """``obj.A.B`` for the qualified name ``A.B``, or None."""
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


def _in_ipython() -> bool:
    """Whether this process is an IPython shell or a Jupyter kernel (IPython is not imported to find out)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return callable(get) and get() is not None


@dataclass(frozen=True)
class _Calls:
    """The lines of one forward or backward call of the row's layer, as the oracle makes it."""

    row: Row
    douts: list[str]
    values: Mapping[str, Any]
    """The example's values: which inputs ``stages.moved`` rolls depends on them."""

    def moved(self, target: str, source: str, *, in_place: bool = False) -> list[str]:
        """``stages.moved(-0.5, 0.25)`` as lines: each differentiated input v -> -0.5 v + 0.25, each other
        input array rolled by one sample; into ``source`` itself (a batch buffer refilled) or as
        ``{name}{target}``."""
        row, differentiated = self.row, {a.name for a in self.row.differentiable}
        lines = []
        for name in self.inputs + [a.name for a in row.placed("keyword")]:
            if name in differentiated:
                expr = f"-0.5 * {name}{source} + 0.25"
            elif row.rolled(name, self.values.get(name)):
                expr = f"np.roll({name}{source}, 1, axis=0)"
            else:
                if not in_place:
                    lines.append(f"{name}{target} = {name}{source}")
                continue
            if in_place:
                lines.append(f"{name}{source}[...] = {expr}  # the batch buffer, refilled in place")
            else:
                lines.append(f"{name}{target} = np.asarray({expr}, dtype={name}{source}.dtype)")
        return lines

    @property
    def inputs(self) -> list[str]:
        return [a.name for a in self.row.placed("forward")]

    def forward(self, who: str = "layer", suffix: str = "") -> list[str]:
        row, state = self.row, [a.name for a in self.row.placed("state")]
        call = ", ".join(
            [f"{n}{suffix}" for n in self.inputs] + [f"{a.name}={a.name}" for a in row.placed("keyword")]
        )
        setter = [f"{who}.{row.set_state}({', '.join(f'{n}{suffix}' for n in state)})"] if state else []
        previous = [a.name for a in row.placed("previous")]
        if previous:  # the call whose final state a stateful layer carries into the checked one
            setter.append(
                f"{who}.forward({', '.join(f'{n}{suffix}' for n in previous)})  # the previous call"
            )
        return [*setter, f"{', '.join(row.outputs)} = {row.forward_source(who, call)}"]

    def backward(self, args: str | None = None, who: str = "layer") -> str:
        grads = ", ".join(a.grad for a in self.row.read_from("return")) or (
            "grads" if self.row.read_from("key") else "_"
        )
        return f"{grads} = {self.row.backward_source(who, ', '.join(self.douts) if args is None else args)}"

    def use(self) -> list[str]:
        return [*self.forward(), self.backward()]


def _usual(calls: _Calls, kinds: set[str]) -> list[str] | None:
    row = calls.row
    if "dout_one" in kinds:
        ones = "1.0" if row.loss else f"np.ones_like({calls.douts[0]})"
        return [*calls.forward(), calls.backward(ones) + "  # dout of ones: the usual call"]
    if "default_dout" in kinds:
        return [*calls.forward(), calls.backward("") + "  # the default dout, as networks call a loss"]
    if "nondeterministic" in kinds:
        first = ["np.random.seed(1)", *calls.use(), f"print({row.outputs[0]})"]
        return [*first, *row.build_source("layer", "{cls}", "{ctor}"), "np.random.seed(2)", *calls.use()]
    return None


def _second_use(calls: _Calls) -> list[str]:
    row = calls.row
    same = [a.name for a in (*row.placed("state"), *row.placed("previous"))]
    return [
        *calls.forward(),
        *calls.moved("_b", ""),
        *[f"{n}_b = {n}" for n in same],
        *row.build_source("other", "{cls}", "{ctor}"),
        *calls.forward("other", "_b"),
        row.backward_source("other", ", ".join("-" + d for d in calls.douts)),
        calls.backward() + "  # the first instance's backward, after the other's",
    ]


def _training(calls: _Calls, next_step: bool, other: Mapping[str, Any] | None) -> list[str]:
    row = calls.row
    given = calls.inputs + [a.name for a in (*row.placed("state"), *row.placed("previous"))]
    lines = [f"{k}_other = {literal(v)}" for k, v in (other or {}).items() if k in given]
    lines += [*(calls.forward(suffix="_other") if other else []), "# then this batch:", *calls.use()]
    if not next_step:
        return lines
    held = [a.name for a in row.held]
    lines += [f"{p}[...] = -0.5 * {p} + 0.25  # an optimizer's in-place step" for p in held]
    lines += calls.moved("", "", in_place=True)
    if row.loss:
        lines += [f"{d} = float(-0.5 * {d} + 0.25)" for d in calls.douts]
    else:
        lines += [f"{d} = np.asarray(-0.5 * {d} + 0.25, dtype={d}.dtype)" for d in calls.douts]
    return [*lines, "# the next step, on new values:", *calls.use()]


def _then_test_mode(calls: _Calls) -> list[str]:
    """Train mode, then test mode on new inputs on the same instance (``stages._then_test_mode``)."""
    row = calls.row
    moved = [n for n in calls.inputs if n in {a.name for a in row.differentiable}]
    return [
        *calls.use(),
        "# then test mode on the same instance, on new inputs:",
        *[f"{n} = np.asarray(0.5 * {n} + 0.25, dtype={n}.dtype)" for n in moved],
        f"{row.mode} = False",
        *calls.forward(),
    ]


def _steps(calls: _Calls, failure: Failure | None, other: Mapping[str, Any] | None) -> list[str]:
    """The calls that reproduce the failed stage, after ``layer`` is built."""
    kinds = {m.kind for m in failure.mismatches} if failure is not None else set()
    wheres = {e.where for e in failure.evidence} if failure is not None else set()
    usual = _usual(calls, kinds)
    if usual is not None:
        return usual
    if "second use" in wheres:
        return _second_use(calls)
    if "training: then test mode" in wheres:
        return _then_test_mode(calls)
    if "training: after reset_state()" in wheres:
        return [
            *_training(calls, True, other),
            "layer.reset_state()  # a new sequence: the next forward starts from zeros",
            *calls.forward()[-1:],  # without set_state and without the previous call
            calls.backward(),
        ]
    if any(w.startswith("training") for w in wheres):
        return _training(calls, "training: next step" in wheres, other)
    return calls.use()


def snippet(
    example: Example,
    row: Row | None = None,
    layer: type | None = None,
    failure: Failure | None = None,
    other: Mapping[str, Any] | None = None,
) -> str:
    """The program for ``failure`` (just the example's arrays without a row and a layer); ``other`` is
    the other batch of the training-like sequence."""
    if row is None or layer is None:
        return example.source()
    imports, name = import_lines(layer)
    first, *rest = example.source().splitlines()
    douts = [f"dout{'' if len(example.cotangents) == 1 else i}" for i in range(len(example.cotangents))]
    ctor = ", ".join(
        [a.name for a in row.placed("init")] + [f"{a.name}={a.name}" for a in row.constructor_keywords(layer)]
    )
    steps = [
        line.replace("{cls}", name).replace("{ctor}", ctor)
        for line in _steps(_Calls(row, douts, example.values), failure, other)
    ]
    lines = [first, *imports, *rest, *row.build_source("layer", name, ctor), *steps]
    returned = {a.grad for a in row.read_from("return")}
    for ev in failure.evidence if failure is not None else []:
        if ev.kind in PRINTED and ev.expected is not None:
            expr = (
                ev.check
                if ev.check in returned or ev.check in row.outputs
                else row.read_source("layer", ev.check)
            )
            lines.append(f"print({expr})  # jax.vjp: {literal(ev.expected)}")
    return "\n".join(lines)
