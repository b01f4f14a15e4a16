"""Every operation of the OpenAPI schema, fuzzed in-process: bad input is never a 5xx.

Schemathesis generates requests from ``/api/v1/schema/`` (valid and invalid bodies,
parameters and paths) and sends them to the WSGI app as a tenant admin with a JWT;
``not_a_server_error`` is the check. The number of examples per operation is bounded so
the run fits in CI (``SCHEMATHESIS_MAX_EXAMPLES``, default 3; 10 took over 9 minutes
on a shared 2-core box).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from config.wsgi import application
from tenancy.api.views import issue_tokens
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests.factories import TenantTree

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "3"))

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Django closes the database connection after each WSGI request; the test client
    disconnects that handler, and so must a test that calls the WSGI app directly (its
    transaction holds the fixtures)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_headers(tree_a: TenantTree) -> dict[str, str]:
    admin = tree_a.members["admin"]
    with tenant_scope(admin.tenant_id):
        member = Membership.objects.select_related("user", "tenant").get(pk=admin.pk)
    return {"Authorization": f"Bearer {issue_tokens(member)['access']}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error(case: Any, admin_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=admin_headers, checks=[not_a_server_error])
