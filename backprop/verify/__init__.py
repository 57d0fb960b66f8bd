"""The oracle: check hand-written layers against ``jax.vjp`` of independent JAX references.

Importing this subpackage imports JAX and Hypothesis; ``import backprop`` alone does not.
"""

from backprop.verify.findings import Measured
from backprop.verify.oracle import LayerMismatch, Options, check_example, examples
from backprop.verify.registry import ROWS, get_row, names
from backprop.verify.report import JSON_SCHEMA, Example, Failure, LayerReport, Mismatch, RunReport
from backprop.verify.row import Arg, Read, Row
from backprop.verify.runner import reference_inputs, reference_runs, reference_vjp
from backprop.verify.search import verify, verify_all, verify_or_raise
from backprop.verify.tolerances import TOLERANCES, Tolerance
from backprop.verify.vocabulary import DTYPES, Allowance, Code, Convention, Feature, Kind

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
    "Options",
    "Read",
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
