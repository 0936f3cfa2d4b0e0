"""Validators for the official Auth0 OpenAPI excerpts in ``tests/data`` (answers and bodies)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

DATA = Path(__file__).resolve().parents[1] / "data"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference"


class Reference:
    """One OpenAPI document of ``tests/data`` (a copy of the shared reference)."""

    def __init__(self, name: str) -> None:
        self.copy = DATA / name
        self.shared = SHARED / name
        self.spec: dict[str, Any] = json.loads(self.copy.read_text())
        self._registry: Registry[Any] = Registry().with_resource(
            "urn:auth0", DRAFT202012.create_resource(self.spec)
        )

    def _schema(self, ref: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"urn:auth0{ref}"}, registry=self._registry)

    def answer(self, path: str, method: str, status: str = "200") -> Draft202012Validator:
        """A validator for the JSON answer ``status`` of ``method path``."""
        content = self.spec["paths"][path][method]["responses"][status]["content"]
        schema = content["application/json"]["schema"]
        if "$ref" in schema:
            return self._schema(schema["$ref"])
        # An inline schema (an array of refs): point its refs at the document.
        inline = json.loads(json.dumps(schema).replace('"#/', '"urn:auth0#/'))
        return Draft202012Validator(inline, registry=self._registry)

    def body(self, path: str, method: str) -> Draft202012Validator:
        """A validator for the JSON request body of ``method path``."""
        content = self.spec["paths"][path][method]["requestBody"]["content"]
        return self._schema(content["application/json"]["schema"]["$ref"])


def errors(validator: Draft202012Validator, body: Any) -> list[str]:
    """Every schema violation of ``body``, as ``[path]: message``."""
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
