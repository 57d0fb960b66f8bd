"""The house rules of the oracle, made into tests: no function takes more than eight parameters, no import
cycle in ``backprop.verify``, and no data module imports JAX."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "backprop"
MAX_PARAMETERS = 8

# Signatures that are not ours to shorten: the books' own constructors, which a learner's code calls as
# the book does (``MultiLayerNetExtend(input_size, ..., use_batchnorm)``, ``DeepConvNet(input_dim,
# conv_param_1, ..., conv_param_6, hidden_size, output_size)``).
BOOK_SIGNATURES = {"networks.py:MultiLayerNetExtend.__init__", "networks.py:DeepConvNet.__init__"}

# The modules that only hold or render data: reading a report must not import JAX.
DATA_MODULES = ("vocabulary", "mismatch", "report", "html", "heatmap", "registry", "cli")


def _functions(tree: ast.AST) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function with its qualified name (``Class.method``, ``outer.inner``)."""
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((prefix + child.name, child))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The parameters a caller may pass: self and cls are not counted, ``*args`` and ``**kwargs`` are."""
    a = function.args
    named = [*a.posonlyargs, *a.args]
    if named and named[0].arg in ("self", "cls"):
        named = named[1:]
    return len(named) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)


def too_many(source: str, where: str) -> list[str]:
    return [
        f"{where}:{name} takes {parameters(f)} parameters"
        for name, f in _functions(ast.parse(source))
        if parameters(f) > MAX_PARAMETERS and f"{where}:{name}" not in BOOK_SIGNATURES
    ]


def test_the_parameter_count_is_counted_as_a_caller_sees_it() -> None:
    nine = "def f(a, b, c, d, e, f, g, h, i): pass\n"
    eight_and_self = "class C:\n    def m(self, a, b, c, d, e, f, *args, **kw): pass\n"
    assert too_many(nine, "x.py") == ["x.py:f takes 9 parameters"]
    assert too_many(eight_and_self, "x.py") == []
    assert too_many("def f(a, *, b, c, d, e, f, g, h, **kw): pass\n", "x.py") == ["x.py:f takes 9 parameters"]


def test_no_function_takes_more_than_eight_parameters() -> None:
    found = [
        problem
        for path in sorted(PACKAGE.rglob("*.py"))
        for problem in too_many(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    ]
    assert found == []


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The ``backprop.verify`` modules ``path`` imports, at its top or inside a function (a lazy import is
    still an edge), leaving out imports under ``if TYPE_CHECKING:``, which never run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "backprop.verify":
                found |= {f"backprop.verify.{alias.name}" for alias in node.names}
            elif node.module.startswith("backprop.verify."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("backprop.verify.")}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_backprop_verify() -> None:
    graph = {_module(p): imports(p) for p in sorted((PACKAGE / "verify").rglob("*.py"))}
    assert cycles(graph) == []


@pytest.mark.parametrize("module", DATA_MODULES)
def test_no_data_module_imports_jax(module: str) -> None:
    code = (
        f"import sys; import backprop.verify.{module}; "
        "print(sorted(m for m in ('jax', 'hypothesis.extra.numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
