"""The catalogue of "Deep Learning from Scratch 2": one module per module of ``backprop.nlp``, each with
its ``BROKEN`` and ``CORRECT`` lists, collected here and appended to the book-1 catalogue."""

from __future__ import annotations

import importlib
import pkgutil

from tests.catalogue import Case, Correct


def _modules() -> list[object]:
    return [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]


BROKEN: list[Case] = [case for m in _modules() for case in getattr(m, "BROKEN", [])]
CORRECT: list[Correct] = [case for m in _modules() for case in getattr(m, "CORRECT", [])]
