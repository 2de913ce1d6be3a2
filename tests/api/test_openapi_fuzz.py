"""Schemathesis against ``/openapi.json`` of a real ``veil serve``: generated requests to every operation
must get no 5xx and responses that match the documented status codes, content types, headers and schemas.
Bounded (a few examples per operation) so that CI stays quick; the session's idle server runs no jobs."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.live_server import LiveServer, bearer

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_headers(idle_server: LiveServer) -> dict[str, str]:
    return bearer(idle_server.create_key("jobs:read,jobs:write,admin", name="fuzz", tenant="fuzz"))


def test_every_operation_conforms(idle_server: LiveServer, fuzz_headers: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{idle_server.url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            case.call_and_validate(base_url=idle_server.url, headers=fuzz_headers, checks=CHECKS, timeout=60)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 14
    assert not failures, "\n\n".join(failures)


def test_stateful_sequences_get_no_5xx(idle_server: LiveServer) -> None:
    """Stateful mode: schemathesis chains operations through the links it infers (submit a job, then
    read, cancel, delete, link, report it...), so requests reach real jobs in every state, not only
    unknown ids. Bounded: 25 sequences of at most 6 calls."""
    schema = schemathesis.openapi.from_url(f"{idle_server.url}/openapi.json")
    workflow = schema.as_state_machine()
    sequences = count(1)

    class Bounded(workflow):  # type: ignore[misc, valid-type]
        headers: dict[str, str]

        def setup(self) -> None:
            """Each sequence starts on an empty tenant of its own. Hypothesis replays a sequence's first
            calls and expects the same responses; jobs left by earlier sequences in a shared tenant
            change what ``GET /v1/jobs`` returns, and with it what the next call draws
            (``FlakyStrategyDefinition``, about one run in five before)."""
            key = idle_server.create_key(
                "jobs:read,jobs:write,admin", name="fuzz", tenant=f"fuzz-sequence-{next(sequences)}"
            )
            self.headers = bearer(key)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": idle_server.url, "headers": self.headers, "timeout": 60}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=[not_a_server_error], transport_kwargs=kwargs)

    Bounded.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
