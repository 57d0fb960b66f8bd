"""Each fixed vocabulary is defined once (``backprop.verify.vocabulary``) and the JSON schema lists exactly
the same words, so a report can never carry a word its own schema rejects."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from backprop.verify import vocabulary
from backprop.verify.report import Failure, LayerReport
from backprop.verify.vocabulary import CODES, DTYPES, SPECIFICITY, Code, Convention, Feature, Kind


def _schema() -> Any:
    return json.loads(resources.files("backprop.verify").joinpath("report.schema.json").read_text())


@pytest.mark.parametrize(
    ("definition", "words"),
    [
        ("diagnosis", list(CODES)),
        ("kind", [k.value for k in Kind]),
        ("dtype", list(DTYPES)),
        ("feature", [f.value for f in Feature]),
        ("convention", ["", *(c.value for c in Convention)]),
    ],
)
def test_the_schema_lists_exactly_each_vocabulary(definition: str, words: list[str]) -> None:
    assert _schema()["$defs"][definition]["enum"] == words


def test_every_code_has_a_place_in_the_specificity_order() -> None:
    assert set(Code) <= set(SPECIFICITY) <= set(Code) | set(Kind)
    assert len(SPECIFICITY) == len(set(SPECIFICITY))


def test_every_feature_has_scope_words() -> None:
    assert set(vocabulary.FEATURE_WORDS) == set(Feature)


def test_every_layer_field_and_failure_field_is_described_by_the_schema() -> None:
    schema = _schema()["$defs"]
    layer = LayerReport(name="relu", layer="m.Relu", against="relu", dtype="float64").to_json()
    assert set(layer) <= set(schema["layer"]["properties"])
    assert set(Failure.__dataclass_fields__) - {
        "calls",  # rendered as "program"
        "example",
        "shapes",
        "mismatches",
        "witnesses",
        "blob",
        "located",  # written as "culprit" and "culprit_note"
    } <= set(schema["failure"]["properties"])
    assert {"culprit", "culprit_note"} <= set(schema["failure"]["properties"])
