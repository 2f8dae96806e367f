"""Issue 17: the OpenAPI document reads as documentation for a client developer. Every operation of
the committed document (what `make openapi` generates, tests/integration/test_api_errors.py checks
it is fresh) has a summary and a description of its own, and every request body has examples that
its schema accepts; local/api_docs.py documents no operation that does not exist."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from local.api_docs import OPERATIONS, TAGS, undocumented
from local.openapi import OUTPUT

DOC: dict[str, Any] = json.loads(OUTPUT.read_text())
OPS = [(f"{verb.upper()} {path}", op) for path, verbs in DOC["paths"].items() for verb, op in verbs.items()]


def test_every_operation_has_an_entry_and_every_entry_an_operation() -> None:
    assert undocumented(DOC) == []
    assert set(OPERATIONS) - {name for name, _ in OPS} == set()


@pytest.mark.parametrize(("name", "op"), OPS, ids=[name for name, _ in OPS])
def test_operation_has_a_summary_and_a_description(name: str, op: dict[str, Any]) -> None:
    summary, description = op.get("summary", ""), op.get("description", "")
    path = name.split(" ", 1)[1]
    assert summary and path not in summary and len(summary) <= 60 and not summary.endswith(".")
    assert len(description) >= 80 and path not in description.split(".")[0]
    assert op.get("tags") and set(op["tags"]) <= {t["name"] for t in DOC["tags"]}


BODIES = [
    (name, media)
    for name, op in OPS
    for media_type, media in op.get("requestBody", {}).get("content", {}).items()
    if media_type == "application/json"
]


def test_there_are_request_bodies_to_check() -> None:
    assert len(BODIES) >= 10


@pytest.mark.parametrize(("name", "media"), BODIES, ids=[name for name, _ in BODIES])
def test_request_body_has_examples_its_schema_accepts(name: str, media: dict[str, Any]) -> None:
    examples = media.get("examples") or {}
    assert examples, f"{name}: no example of its request body"
    validator = Draft202012Validator({**media["schema"], "components": DOC["components"]})
    for title, example in examples.items():
        errors = [e.message for e in validator.iter_errors(example["value"])]
        assert errors == [], f"{name}, example {title!r}: {errors}"


def test_the_document_introduces_itself() -> None:
    intro = DOC["info"]["description"]
    assert "Authorization: Bearer" in intro and "RFC 9457" in intro and "calsync-local token" in intro
    assert [t["name"] for t in DOC["tags"]] == [t["name"] for t in TAGS]
    assert all(t.get("description") for t in DOC["tags"])


def test_the_document_is_valid_openapi() -> None:
    from openapi_spec_validator import validate

    validate(DOC)  # raises on anything Swagger UI could trip over
