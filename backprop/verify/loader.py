"""Load a user's layer class from ``path/to/file.py:Class`` or ``package.module:Class``.

A file is loaded the way ``python file.py`` would see it: its own folder goes first on ``sys.path`` (so
sibling modules import), and it is executed as a fresh module. A dotted module is imported the way
``python -m`` would find it: with the current directory on ``sys.path``. Every problem is a ``LoadError``
with a one-line message meant for the command line.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["LoadError", "load_class"]

_USAGE = "expected FILE.py:CLASS or MODULE:CLASS, got {spec!r}"


class LoadError(ValueError):
    """The spec could not be turned into a layer class; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


def load_class(spec: str) -> type:
    """The class named by ``spec`` (``file.py:Class``, ``package.module:Class``; ``Class.Inner`` works).

    Raises ``LoadError`` if the file or module is missing or raises on import, if there is no such class,
    or if the class lacks ``forward``/``backward``.
    """
    source, _, attr_path = spec.rpartition(":")
    attrs = attr_path.split(".")
    if not source or not all(a.isidentifier() for a in attrs):
        raise LoadError(_USAGE.format(spec=spec))
    if _is_file(source):
        where = source
        module = _load_file(source)
    else:
        where = f"module {source}"
        if not all(part.isidentifier() for part in source.split(".")):
            raise LoadError(_USAGE.format(spec=spec))
        module = _load_module(source)
    cls = _resolve(module, where, attrs)
    _check_api(cls, spec)
    return cls


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
    sys.modules[name] = module  # before executing, as a real import does (dataclasses need it)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise LoadError(f"importing {source} raised {_describe(exc)}") from exc
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
    except (Exception, SystemExit) as exc:
        raise LoadError(f"importing {name} raised {_describe(exc)}") from exc


# ---- finding the class ------------------------------------------------------------------------------------


def _resolve(module: ModuleType, where: str, attrs: list[str]) -> type:
    obj: Any = module
    for i, attr in enumerate(attrs):
        if not hasattr(obj, attr):
            owner = where if i == 0 else f"{where}:{'.'.join(attrs[:i])}"
            raise LoadError(f"{owner} has no class {attr!r}; {_defined_classes(obj, module.__name__)}")
        obj = getattr(obj, attr)
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


def _check_api(cls: type, label: str) -> None:
    missing = [m for m in ("forward", "backward") if not callable(getattr(cls, m, None))]
    if missing:
        raise LoadError(
            f"{label} has no {' or '.join(missing)} method; the book's API needs forward() and backward()"
        )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())
