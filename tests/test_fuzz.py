"""Schemathesis against the project's own OpenAPI document, on a live server.

For every operation, generated requests (valid and invalid) must never get a
5xx, and every answer must be one the document describes: a documented status
code, the documented content type, a body that fits the documented schema.
The document is the one /openapi.json serves (generated in-process here, so
that each operation is a test of its own).
"""

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from swr import services

from .helpers import OPERATOR

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_OPERATION = 30
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations():
    document = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(document)
    return {operation.label: operation for operation in (result.ok() for result in schema.get_all_operations())}


OPERATIONS = _operations()

# Requests that break the document can only be made where the document constrains something: a body or a
# query parameter. (Path parameters are free strings; a wrong one is covered by the positive runs.)
CASES = [(label, GenerationMode.POSITIVE) for label in sorted(OPERATIONS)] + [
    (label, GenerationMode.NEGATIVE)
    for label, operation in sorted(OPERATIONS.items())
    if len(operation.body) or len(operation.query)
]


@pytest.fixture
def token(owner, namespace):
    services.repository_create(namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR)
    return services.token_issue(user=owner, actor=OPERATOR)[1]


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label} {mode.value}" for label, mode in CASES])
def test_operation(server, token, label, mode):
    """Valid requests (positive) and requests that break the document (negative)."""

    @given(case=OPERATIONS[label].as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def run(case):
        response = case.call(base_url=server, headers={"X-Auth-Token": token})
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_route_is_fuzzed():
    assert len(OPERATIONS) >= 20
