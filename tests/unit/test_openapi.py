"""docs/openapi.yaml is generated from the models and describes the API the template serves."""

from __future__ import annotations

import yaml
from openapi_spec_validator import validate

from smsgw.api.openapi import openapi
from smsgw.api.schemas import OPENAPI, rendered_openapi
from smsgw_local.template import load_template

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def test_the_document_is_what_the_models_generate() -> None:
    # Regenerate with: .venv/bin/python -m smsgw.api.schemas
    assert OPENAPI.read_text(encoding="utf-8") == rendered_openapi()


def test_the_document_is_valid_openapi() -> None:
    validate(yaml.safe_load(OPENAPI.read_text(encoding="utf-8")))  # type: ignore[arg-type]


def test_it_names_exactly_the_routes_api_gateway_serves() -> None:
    body = load_template()["Resources"]["GatewayApi"]["Properties"]["DefinitionBody"]
    served = {(path, method) for path, ops in body["paths"].items() for method in ops if method in METHODS}
    documented = {(path, method) for path, ops in openapi()["paths"].items() for method in ops}
    assert documented == served


def test_every_answer_and_error_has_a_schema_and_errors_share_one_shape() -> None:
    for path, ops in openapi()["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if status in {"204"}:
                    continue
                assert response.get("content"), (path, method, status)
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
