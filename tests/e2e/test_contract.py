"""The running API matches docs/openapi.yaml: a contract fuzz run (schemathesis) against the
local stack over real sockets. Every operation of the document is called with requests
generated from its schemas (valid and invalid); the run passes when no answer is a 5xx and
every answer conforms to the document: a documented status, the content type, the schema
of its body (answers forbid fields the document does not name).

Bounded and derandomised (the same examples every run): MAX_EXAMPLES per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from smsgw.api.schemas import OPENAPI
from smsgw_local.stack import LocalGateway
from tests.e2e.conftest import fast_simulator

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def contract_stack() -> Iterator[LocalGateway]:
    with LocalGateway(api_port=0, simulator_port=0, moto_port=0, env={}, simulator=fast_simulator()) as stack:
        yield stack


def operations() -> list[str]:
    """Every operation of the document, as ``METHOD /path``."""
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    return [f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops]


@pytest.fixture(scope="module")
def api_schema(contract_stack: LocalGateway) -> Any:
    schema = schemathesis.openapi.from_path(str(OPENAPI))
    schema.config.update(base_url=contract_stack.api_url, headers={"x-api-key": contract_stack.api_key})
    return schema


@pytest.mark.parametrize("label", operations())
def test_every_answer_conforms_to_the_document_and_none_is_a_5xx(api_schema: Any, label: str) -> None:
    method, path = label.split(" ", 1)
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    call()
