"""The catalogue of "Deep Learning from Scratch 2": one module per module of ``backprop.nlp``, whose classes
carry their records (``@caught``, ``@passes``), collected here in the modules' order and appended to the
book-1 catalogue."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from tests.catalogue import BROKEN_RECORDS, CORRECT_RECORDS, Case, Correct

MODULES: list[ModuleType] = [
    importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)
]

BROKEN: list[Case] = BROKEN_RECORDS.of(*MODULES)
CORRECT: list[Correct] = CORRECT_RECORDS.of(*MODULES)
