"""A function named now and imported on its first call: a row names its JAX reference without importing JAX.

    reference=lazy("reference.arithmetic", "mul")

A row may equally be given the function itself; ``lazy`` only defers the import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["LazyFunction", "lazy"]

_CLASS_DOC = "A function imported from its module on first use; otherwise called like the function itself."


class _Doc:
    """``__doc__``: the class's on the class, the function's own (importing it) on an instance."""

    def __get__(self, instance: LazyFunction | None, owner: type | None = None) -> str | None:
        return _CLASS_DOC if instance is None else instance.resolve().__doc__


class LazyFunction:
    __doc__ = _Doc()

    def __init__(self, module: str, name: str) -> None:
        self.__module__ = module
        self.__name__ = name
        self.__qualname__ = name
        self._function: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        """The function itself, importing its module the first time."""
        if self._function is None:
            function = getattr(importlib.import_module(self.__module__), self.__name__)
            if not callable(function):
                raise TypeError(f"{self.__module__}.{self.__name__} is not callable: {function!r}")
            self._function = function
        return self._function

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        """The function itself, so that ``inspect.signature`` sees its parameters."""
        return self.resolve()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__module__}.{self.__qualname__} (imported on first call)>"

    def __reduce__(self) -> tuple[Any, ...]:
        return LazyFunction, (self.__module__, self.__name__)


def lazy(module: str, name: str) -> LazyFunction:
    """``module.name``, imported on first call. The package holding ``module`` is imported now, so that a
    user's module of the same name imported later (a sibling ``reference.py``) cannot take its place."""
    package = module.rpartition(".")[0]
    if package:
        importlib.import_module(package)
    return LazyFunction(module, name)
