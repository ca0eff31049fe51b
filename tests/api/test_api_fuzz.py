"""Schemathesis against the read endpoints: generated requests (ids, filters, pages) never get a
500 and every response matches the published OpenAPI schema."""
from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application


@pytest.fixture
def keep_test_connection():
    """Like Django's test client: a request must not close the test transaction's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, keep_test_connection):
    return schemathesis.openapi.from_wsgi("/api/v1/schema/", application)


schema = schemathesis.pytest.from_fixture("api_schema").include(method="GET")
# Positive checks only: lenient parsing (an ignored page_size=null) is a choice, not a bug.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.slow
@schema.parametrize()
@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_read_endpoints_conform(case, keep_test_connection, cast, make_finished_job, api_key):
    if not cast.acme.jobs.exists():
        make_finished_job(cast.acme, n=1)
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {api_key[1]}"}
    case.call_and_validate(checks=CHECKS)
