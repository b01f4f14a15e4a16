"""Shared fixtures. Test data is written inside ``tenant_scope``: one of the three places
where a scope is entered (with the request middleware and the Celery base task)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from config.celery import app as celery_app
from tenancy.api.views import issue_tokens
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests.factories import TenantTree, build_tenant_tree

# Transactional tests (the real-worker ones) flush tables between tests.
settings.DATABASE_APP_ROLE_CAN_TRUNCATE = True
# Hashing strength is not under test; a fast hasher keeps fixture set-up quick.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clean_throttles_and_eager_tasks() -> Iterator[None]:
    cache.clear()
    celery_app.conf.task_always_eager = True
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _english_after_each_test() -> Iterator[None]:
    """A request with Accept-Language: zh-hans leaves Chinese active on the thread
    (LocaleMiddleware does not switch back); each test starts and ends in English."""
    with translation.override(settings.LANGUAGE_CODE):
        yield


@pytest.fixture
def tree_a(db: None) -> TenantTree:
    return build_tenant_tree("acme", "Acme 顶点")


@pytest.fixture
def tree_b(db: None) -> TenantTree:
    return build_tenant_tree("globex", "Globex 环球")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[Membership], APIClient]:
    """An API client authenticated with a JWT bound to the given membership."""

    def make(member: Membership) -> APIClient:
        with tenant_scope(member.tenant_id):
            member = Membership.objects.select_related("user", "tenant").get(pk=member.pk)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(member)['access']}")
        return client

    return make


@pytest.fixture
def admin_a(tree_a: TenantTree) -> Membership:
    return tree_a.members["admin"]
