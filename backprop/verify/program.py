"""The program printed with a failure: Python that rebuilds the shrunk example and replays the calls that
failed, exactly as the stage that found the mistake made them, then prints each wrong value next to what
``jax.vjp`` says it should be. It runs from any folder: the layer's own folder goes on ``sys.path``. A layer
defined in a notebook cell or ``python -c`` has no file: its program says to run it in that session."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backprop.verify.findings import unchanged
from backprop.verify.report import Example, Failure, literal
from backprop.verify.row import Arg, Row
from backprop.verify.stages import Call

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


@dataclass
class _Render:
    """The program's lines, rendered one recorded call at a time, and the variables it holds so far."""

    row: Row
    layer: type
    name: str
    """The class's name in the program."""
    lines: list[str] = field(default_factory=list)
    held: dict[str, Any] = field(default_factory=dict)
    """Each variable of the program and the value it holds."""
    built: dict[str, dict[str, str]] = field(default_factory=dict)
    """By instance, the variable (or plain value) of every argument it was built with: a forward on the
    build's own values passes these very variables, as the stage passed the very arrays, and an ``update``
    writes into them."""
    given: dict[str, dict[str, str]] = field(default_factory=dict)
    """By instance, the variable (or plain value) of every argument it was last built or called with."""
    label: str = ""

    def expr(self, name: str, value: Any) -> str:
        """An expression for ``value`` given as the argument ``name``: the variable that holds it (``x``, or
        ``x_2`` made for an earlier call), else a new variable with its literal (a plain value inline)."""
        if not isinstance(value, np.ndarray):
            return name if name in self.held and unchanged(self.held[name], value) else repr(value)
        var, i = name, 1
        while var in self.held and not unchanged(self.held[var], value):
            i += 1
            var = f"{name}_{i}"
        if var not in self.held:
            self.lines.append(f"{var} = {literal(value)}")
            self.held[var] = value
        return var

    def arguments(
        self, who: str, args: tuple[Arg, ...], values: Mapping[str, Any] | None, keywords: bool
    ) -> list[str]:
        """Each of ``args`` as source (``name=expr`` with ``keywords``), remembered as ``who``'s; ``values``
        None: those ``who`` was built with."""
        given = self.given.setdefault(who, {})
        if values is None:
            given.update({a.name: self.built[who][a.name] for a in args})
        else:
            given.update({a.name: self.expr(a.name, values[a.name]) for a in args})
        return [f"{a.name}={given[a.name]}" if keywords else given[a.name] for a in args]

    def call(self, call: Call) -> None:
        """The lines of one recorded call (a ``read`` has none: the gradients are printed at the end)."""
        row, who, values = self.row, call.who, call.values
        if call.label.endswith(": ") and call.label != self.label and call.op != "read":
            self.lines.append(f"# {call.label[:-2]}")
        self.label = call.label if call.op != "read" else self.label
        if call.op == "seed":
            self.lines.append(f"np.random.seed({call.seed})  # another global random state")
        elif call.op == "reset":
            self.lines.append(f"{who}.reset_state()")
        elif call.op == "update":
            params = {a.name for a in row.held}
            for name, value in (values or {}).items():
                var = self.built[who][name]
                why = (
                    "an optimizer's in-place step"
                    if name in params
                    else "the batch buffer, refilled in place"
                )
                self.lines.append(f"{var}[...] = {literal(value)}  # {why}")
                self.held[var] = value
        elif call.op == "build":
            # every value the instance is given, built and called (the state it carries is computed)
            held = [a for a in row.args if a.to != "carried"]
            self.built[who] = {a.name: self.expr(a.name, (values or {})[a.name]) for a in held}
            self.given[who] = dict(self.built[who])
            ctor = self.arguments(who, row.placed("init"), None, False)
            ctor += self.arguments(who, row.constructor_keywords(self.layer), None, True)
            self.lines += row.source("build", who, f"{self.name}({', '.join(ctor)})", self.given[who])
        elif call.op == "forward":
            if not call.alone:
                state = self.arguments(who, row.placed("state"), values, False)
                if state:
                    self.lines.append(f"{who}.{row.set_state}({', '.join(state)})")
                previous = self.arguments(who, row.placed("previous"), values, False)
                if previous:  # the call whose final state a stateful layer carries into the checked one
                    self.lines.append(f"{who}.forward({', '.join(previous)})  # the previous call")
            args = self.arguments(who, row.placed("forward"), values, False)
            args += self.arguments(who, row.placed("keyword"), values, True)
            self._kept(", ".join(row.outputs), row.source("forward", who, ", ".join(args), self.given[who]))
        elif call.op == "backward":
            cots = call.cotangents
            douts = (
                ""
                if cots is None
                else ", ".join(self.expr(d, c) for d, c in zip(_douts(len(cots)), cots, strict=True))
            )
            grads = ", ".join(a.grad for a in row.read_from("return")) or (
                "grads" if row.read_from("key") else "_"
            )
            self._kept(grads, row.source("backward", who, douts, self.given.get(who, {})))

    def _kept(self, names: str, lines: list[str]) -> None:
        *before, last = lines
        self.lines += [*before, f"{names} = {last}"]


def _douts(n: int) -> list[str]:
    return ["dout"] if n == 1 else [f"dout{i}" for i in range(n)]


def _read(row: Row, check: str, primal: str) -> str:
    """An expression for the output or gradient ``check`` (of ``primal``) after the program's calls: a
    variable it was returned into, or where the instance ``layer`` keeps it (``layer.dW``,
    ``layer.grads[0]+layer.grads[3].T``)."""
    arg = next((a for a in row.differentiable if a.name == primal), None)
    if check in row.outputs or arg is None or arg.source in ("return", "key"):
        return check
    return "+".join(f"layer.{part}" for part in check.split("+"))


def snippet(
    example: Example, row: Row | None = None, layer: type | None = None, failure: Failure | None = None
) -> str:
    """The program for ``failure``: the example's arrays, then the calls that ran up to the failure, as the
    check stages recorded them, then each wrong value printed next to the expected one (just the
    example's arrays without a row and a layer)."""
    if row is None or layer is None:
        return example.source()
    imports, name = import_lines(layer)
    first, *rest = example.source().splitlines()
    calls = list(failure.calls) if failure is not None else []
    if not calls:  # no record (a failure built by hand): the first use
        calls = [
            Call("build", example.values),
            Call("forward", example.values),
            Call("backward", cotangents=example.cotangents),
        ]
    render = _Render(row, layer, name)
    render.held = {
        **example.values,
        **dict(zip(_douts(len(example.cotangents)), example.cotangents, strict=True)),
    }
    for call in calls:
        render.call(call)
    lines = [first, *imports, *rest, *render.lines]
    for m in failure.mismatches if failure is not None else []:
        if m.kind in PRINTED and m.expected is not None:
            said = "the first call" if m.kind == "nondeterministic" else "jax.vjp"
            lines.append(f"print({_read(row, m.check, m.primal)})  # {said}: {literal(m.expected)}")
    return "\n".join(lines)
