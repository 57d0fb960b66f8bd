"""The oracle: check hand-written layers against ``jax.vjp`` of independent JAX references.

Importing this subpackage imports JAX and Hypothesis; ``import backprop`` alone does not.
"""

from backprop.verify.oracle import (
    LayerMismatch,
    check_example,
    examples,
    reference_inputs,
    reference_runs,
    reference_vjp,
    verify,
    verify_all,
    verify_or_raise,
)
from backprop.verify.registry import ROWS, Arg, Row, get_row, names
from backprop.verify.report import JSON_SCHEMA, Example, Failure, LayerReport, Mismatch, RunReport
from backprop.verify.tolerances import TOLERANCES, Tolerance

__all__ = [
    "JSON_SCHEMA",
    "ROWS",
    "TOLERANCES",
    "Arg",
    "Example",
    "Failure",
    "LayerMismatch",
    "LayerReport",
    "Mismatch",
    "Row",
    "RunReport",
    "Tolerance",
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
