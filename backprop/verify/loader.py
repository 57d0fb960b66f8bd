"""Load a user's layer class from ``path/to/file.py:Class`` or ``package.module:Class``.

A file is loaded the way ``python file.py`` would see it: its own folder goes first on ``sys.path`` (so
sibling modules import), and it is executed as a fresh module. A sibling wins even over a module this
process already imported under the same name (a user's own ``reference.py`` or ``backprop.py``); ours is
put back in ``sys.modules`` once the file has run. A dotted module is imported the way ``python -m``
would find it: with the current directory on ``sys.path``. Every problem is a ``LoadError`` with a
one-line message meant for the command line.

Warning filters that the import installs (``warnings.filterwarnings("error")`` at the top of the file) are
the module's own: the oracle's filters are put back once it has run, and ``warning_filters(cls)`` gives
them to the guard, which applies them inside every call into the class, as the module's own process would.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import re
import sys
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["LoadError", "api_problem", "load_class", "load_row", "warning_filters"]

_USAGE = "expected FILE.py:CLASS or MODULE:CLASS, got {spec!r}"
_API = ("forward", "backward")
# difflib ratio above which a method name counts as a misspelling of forward/backward: backword 0.88,
# forwrad 0.86, forward_pass 0.74 pass; format 0.62 and backprop 0.63 are different words and do not
_TYPO_CUTOFF = 0.7
# A sibling never replaces these: ``python file.py`` has imported much of the standard library before
# the script's folder is searched, and swapping it out under the running oracle is unsafe
_NEVER_SHADOWED = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)


class LoadError(ValueError):
    """The spec could not be turned into a layer class; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


def load_class(spec: str, methods: tuple[str, ...] | None = None, function: bool = False) -> Any:
    """The class named by ``spec`` (``file.py:Class``, ``package.module:Class``; ``Class.Inner`` works),
    or with ``function`` the function it names (a row whose book form is one: im2col).

    Raises ``LoadError`` if the file or module is missing or raises on import, if there is no such class,
    or if the class lacks ``forward``/``backward`` (or the ``methods`` its row drives, such as a
    network's ``loss`` and ``gradient``).
    """
    module, where, attrs = _module_of(spec)
    if function:
        obj = _walk(module, where, attrs)
        if inspect.isroutine(obj):
            return obj
    cls = _resolve(module, where, attrs)
    _check_api(cls, spec, methods or _API)
    _LAYER_FILTERS[cls] = _MODULE_FILTERS.get(module.__name__, ())
    return cls


def warning_filters(layer: Any) -> tuple[tuple[Any, ...], ...]:
    """The warning filters the module of a loaded ``layer`` installed when it was imported, in the order of
    ``warnings.filters``; none for a class that was not loaded here (one defined in the caller's process
    already runs under the caller's filters, which are the oracle's own)."""
    try:
        return _LAYER_FILTERS.get(layer, ())
    except TypeError:  # not weakly referenceable, so never recorded
        return ()


def load_row(spec: str) -> Any:
    """The ``Row`` named by ``spec`` (``mypkg.rows:SWISH`` or ``rows.py:SWISH``), for ``--against``."""
    from backprop.verify.row import Row  # the loader itself stays free of the oracle's imports

    obj = _walk(*_module_of(spec), what="row")
    if not isinstance(obj, Row):
        raise LoadError(f"{spec} is a {type(obj).__name__}, not a backprop.verify.Row")
    return obj


def _module_of(spec: str) -> tuple[ModuleType, str, list[str]]:
    source, _, attr_path = spec.rpartition(":")
    attrs = attr_path.split(".")
    if not source or not all(a.isidentifier() for a in attrs):
        raise LoadError(_USAGE.format(spec=spec))
    if _is_file(source):
        return _importing(_load_file, source), source, attrs
    if not all(part.isidentifier() for part in source.split(".")):
        raise LoadError(_USAGE.format(spec=spec))
    return _importing(_load_module, source), f"module {source}", attrs


# The filters each module's import installed, by module name, and those of each loaded class.
_MODULE_FILTERS: dict[str, tuple[tuple[Any, ...], ...]] = {}
_LAYER_FILTERS: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], ...]] = weakref.WeakKeyDictionary()


def _importing(load: Callable[[str], ModuleType], source: str) -> ModuleType:
    """``load(source)``, with the warning filters as they were before: the ones the import installed are
    recorded as the module's own. A module imported before keeps the filters recorded then."""
    with warnings.catch_warnings():
        before = list(warnings.filters)  # held, so that no new filter can reuse an old one's id
        module = load(source)
        old = {id(f) for f in before}
        added = tuple(f for f in warnings.filters if id(f) not in old)
    if added or module.__name__ not in _MODULE_FILTERS:
        _MODULE_FILTERS[module.__name__] = added
    return module


def _is_file(source: str) -> bool:
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return source.endswith(".py") or any(sep in source for sep in seps)


# ---- importing ------------------------------------------------------------------------------------------


def _load_file(source: str) -> ModuleType:
    path = Path(source)
    if path.is_dir():
        raise LoadError(f"{source} is a directory, not a .py file")
    if not path.is_file():
        raise LoadError(f"no such file: {source}")
    path = path.resolve()
    folder = str(path.parent)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    importlib.invalidate_caches()  # the file or its siblings may be newer than the import system's caches
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot load {source} as a Python module")
    module = importlib.util.module_from_spec(spec)
    shadowed = _shadowed_by_siblings(path.parent)
    ours = _take_out(shadowed)
    sys.modules[name] = module  # before executing, as a real import does (dataclasses need it)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, GeneratorExit):
            raise  # a closing generator's control flow, not the file failing to import
        raise LoadError(_import_failure(source, exc)) from exc
    finally:
        _put_back(shadowed, ours)
    return module


def _module_name(path: Path) -> str:
    """The file's own stem when ``import stem`` would find this very file; otherwise a fresh variant.

    Keeps names readable in reports (``my_layers.Affine``) while never replacing a module that is
    already imported, so loading the same file twice gives two independent modules.
    """
    stem = re.sub(r"\W", "_", path.stem)
    if stem.isidentifier() and stem not in sys.modules and _finds(stem, path):
        return stem
    n = 2
    while f"{stem}_{n}" in sys.modules:
        n += 1
    return f"{stem}_{n}"


def _finds(name: str, path: Path) -> bool:
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return found is None or (found.origin is not None and Path(found.origin).resolve() == path)


def _shadowed_by_siblings(folder: Path) -> frozenset[str]:
    """Top-level modules already imported here that ``python file.py`` would find in ``folder`` instead."""
    try:
        stems = {entry.name.partition(".")[0] for entry in folder.iterdir()}
    except OSError:
        return frozenset()
    return frozenset(
        stem
        for stem in stems
        if stem.isidentifier()
        and not stem.startswith("__")  # __main__, __init__, __pycache__
        and stem in sys.modules
        and stem not in _NEVER_SHADOWED
        and _is_other_module(stem, folder)
    )


def _is_other_module(name: str, folder: Path) -> bool:
    """Whether ``folder`` holds an importable ``name`` that is not the module loaded under that name."""
    try:
        found = importlib.machinery.PathFinder.find_spec(name, [str(folder)])
    except (ImportError, ValueError, OSError):
        return False
    # a namespace portion (no loader, no origin) loses to a regular package elsewhere on sys.path
    if found is None or found.loader is None or found.origin is None:
        return False
    loaded = getattr(sys.modules[name], "__file__", None)
    return not isinstance(loaded, str) or not _same_file(loaded, found.origin)


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _in_packages(key: str, names: frozenset[str]) -> bool:
    return key.partition(".")[0] in names


def _take_out(names: frozenset[str]) -> dict[str, ModuleType]:
    """Remove the modules ``names`` and their submodules from ``sys.modules``; return them to put back.

    Until they are put back, an import of these names from another thread would get the user's module.
    """
    if not names:
        return {}
    taken = {key: module for key, module in dict(sys.modules).items() if _in_packages(key, names)}
    for key in taken:
        del sys.modules[key]
    return taken


def _put_back(names: frozenset[str], taken: dict[str, ModuleType]) -> None:
    """Forget the user's modules imported under ``names`` and restore ours, submodules included.

    The user's file keeps the objects it imported; leaving them in ``sys.modules`` would hand them to
    the oracle's own later imports of ``reference`` or ``backprop``.
    """
    if not names:
        return
    for key in [key for key in dict(sys.modules) if _in_packages(key, names)]:
        del sys.modules[key]
    sys.modules.update(taken)


def _load_module(name: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise LoadError(f"no such module: {name} (no module named {exc.name!r})") from exc
        raise LoadError(f"importing {name} raised {_describe(exc)}") from exc
    except GeneratorExit:
        raise  # a closing generator's control flow, not the module failing to import
    except BaseException as exc:
        raise LoadError(_import_failure(name, exc)) from exc


def _import_failure(where: str, exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f'importing {where} exited with {exc!r}; put script code under `if __name__ == "__main__":`'
    if isinstance(exc, KeyboardInterrupt):
        return f"importing {where} was interrupted ({_describe(exc)})"
    return f"importing {where} raised {_describe(exc)}"


# ---- finding the class ------------------------------------------------------------------------------------


def _walk(module: ModuleType, where: str, attrs: list[str], what: str = "class") -> Any:
    """``module.a.b.c`` for ``attrs`` [a, b, c]; LoadError naming the first missing one."""
    obj: Any = module
    for i, attr in enumerate(attrs):
        if not hasattr(obj, attr):
            owner = where if i == 0 else f"{where}:{'.'.join(attrs[:i])}"
            found = f"; {_defined_classes(obj, module.__name__)}" if what == "class" else ""
            raise LoadError(f"{owner} has no {what} {attr!r}{found}")
        obj = getattr(obj, attr)
    return obj


def _resolve(module: ModuleType, where: str, attrs: list[str]) -> type:
    obj = _walk(module, where, attrs)
    if not isinstance(obj, type):
        kind = "a function" if inspect.isroutine(obj) else f"a {type(obj).__name__}"
        raise LoadError(f"{where}:{'.'.join(attrs)} is {kind}, not a class")
    return obj


def _defined_classes(obj: Any, module_name: str) -> str:
    names = [
        name
        for name, value in vars(obj).items()
        if isinstance(value, type) and value.__module__ == module_name and not name.startswith("__")
    ]
    return f"it defines: {', '.join(names)}" if names else "it defines no classes"


def api_problem(
    cls: object, *, label: str | None = None, methods: tuple[str, ...] | None = None
) -> str | None:
    """Why ``cls`` is not a class with the book's ``forward``/``backward`` API, as one line; None if it is.

    Near-miss spellings are named: ``MyLayer has no backward method (it has backword: did you mean
    `backward`?)``. ``label`` replaces the class's qualified name at the start of the message.
    """
    if not isinstance(cls, type):  # verify(Relu()) from Python: an instance, not the class
        return _one_line(f"layer must be a class, got {type(cls).__name__}: {cls!r}")
    wanted = methods or _API
    missing = [method for method in wanted if not _has_method(cls, method)]
    if not missing:
        return None
    # a class defined in a function is named as written (MyLayer), not test.<locals>.MyLayer
    name = cls.__qualname__.rpartition("<locals>.")[2] if label is None else label
    problem = f"{name} has no {' or '.join(missing)} method"
    hints = [hint for method in missing if (hint := _hint(cls, method)) is not None]
    if hints:
        return f"{problem} ({'; '.join(hints)})"
    if wanted != _API:
        return f"{problem}; the row drives {' and '.join(f'{m}()' for m in wanted)}"
    return f"{problem}; the book's API needs forward() and backward()"


def _has_method(cls: type, name: str) -> bool:
    try:
        return callable(getattr(cls, name))
    except Exception:  # a missing attribute, or a metaclass or descriptor that raises on lookup
        return False


def _hint(cls: type, method: str) -> str | None:
    """A near-miss for ``method`` among the class's methods, or what ``method`` is if not a method."""
    try:
        value = getattr(cls, method)
    except Exception:  # no such attribute (or one that raises on lookup): look for a misspelling
        pass
    else:
        return f"its {method} is a {type(value).__name__}, not a method"
    try:
        names = sorted(dir(cls))
    except Exception:  # a metaclass whose __dir__ raises; then there is nothing to suggest
        return None
    by_lower: dict[str, str] = {}
    for name in names:
        if not name.startswith("__") and name not in _API and _has_method(cls, name):
            by_lower.setdefault(name.lower(), name)  # lower case, so that Backward and BACKWARD match
    close = difflib.get_close_matches(method, list(by_lower), n=1, cutoff=_TYPO_CUTOFF)
    return f"it has {by_lower[close[0]]}: did you mean `{method}`?" if close else None


def _check_api(cls: type, label: str, methods: tuple[str, ...]) -> None:
    problem = api_problem(cls, label=label, methods=methods)
    if problem is not None:
        raise LoadError(problem)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())
