"""The oracle: check hand-written layers against ``jax.vjp`` of independent JAX references.

Each name is imported on first use, so ``backprop-verify --list`` runs without JAX; ``verify`` and the
other checks import JAX and Hypothesis. ``import backprop`` alone imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backprop._lazy import lazy_names

if TYPE_CHECKING:
    from backprop.verify.findings import Measured
    from backprop.verify.mismatch import Mismatch
    from backprop.verify.model import ModelRow
    from backprop.verify.network import NetworkRow
    from backprop.verify.oracle import LayerMismatch, Options, check_example, examples
    from backprop.verify.registry import ROWS, get_row, names
    from backprop.verify.report import JSON_SCHEMA, Example, Failure, LayerReport, RunReport
    from backprop.verify.row import Arg, Read, Row
    from backprop.verify.runner import reference_inputs, reference_runs, reference_vjp
    from backprop.verify.search import VerifyOptions, verify, verify_all, verify_or_raise
    from backprop.verify.tolerances import TOLERANCES, Tolerance
    from backprop.verify.vocabulary import DTYPES, Allowance, Code, Convention, Feature, Kind

_SUBMODULE = {
    "Measured": "findings",
    "ModelRow": "model",
    "NetworkRow": "network",
    **dict.fromkeys(("LayerMismatch", "Options", "check_example", "examples"), "oracle"),
    **dict.fromkeys(("ROWS", "get_row", "names"), "registry"),
    "Mismatch": "mismatch",
    **dict.fromkeys(("JSON_SCHEMA", "Example", "Failure", "LayerReport", "RunReport"), "report"),
    **dict.fromkeys(("Arg", "Read", "Row"), "row"),
    **dict.fromkeys(("reference_inputs", "reference_runs", "reference_vjp"), "runner"),
    **dict.fromkeys(("VerifyOptions", "verify", "verify_all", "verify_or_raise"), "search"),
    **dict.fromkeys(("TOLERANCES", "Tolerance"), "tolerances"),
    **dict.fromkeys(("DTYPES", "Allowance", "Code", "Convention", "Feature", "Kind"), "vocabulary"),
}


__getattr__, __dir__ = lazy_names(__name__, _SUBMODULE)

__all__ = [
    "DTYPES",
    "JSON_SCHEMA",
    "ROWS",
    "TOLERANCES",
    "Allowance",
    "Arg",
    "Code",
    "Convention",
    "Example",
    "Failure",
    "Feature",
    "Kind",
    "LayerMismatch",
    "LayerReport",
    "Measured",
    "Mismatch",
    "ModelRow",
    "NetworkRow",
    "Options",
    "Read",
    "Row",
    "RunReport",
    "Tolerance",
    "VerifyOptions",
    "check_example",
    "examples",
    "get_row",
    "names",
    "reference_inputs",
    "reference_runs",
    "reference_vjp",
    "verify",
    "verify_all",
    "verify_or_raise",
]
