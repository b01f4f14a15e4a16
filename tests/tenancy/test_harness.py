"""Cross-tenant harness: every API route, found from the URL configuration, is probed
with another tenant's admin token. New endpoints are covered without anyone remembering;
a route without a probe object fails the test until one is added to ``PROBES``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import Pipeline
from tenancy.models import JobRun, Membership
from tenancy.scope import tenant_scope
from tenancy.services import api_token_create, invitation_create
from tests import records
from tests.factories import TenantTree
from tests.incentives import builders as incentive_builders
from tests.integrations import webhook_builders

pytestmark = pytest.mark.django_db

# Routes that expose no tenant object by id, with the reason.
NOT_OBJECT_ROUTES = {
    "me-targets": "always the caller's own targets",
    "me-plan-to-close": "always the caller's own target",
    # Funnel aggregates: they take ids as filters, probed by the filter test below.
    "funnel-conversion": "aggregate within visibility",
    "funnel-loss": "aggregate within visibility",
    "funnel-cycle": "aggregate within visibility",
    "funnel-pipeline": "aggregate within visibility",
    "funnel-stale": "list within visibility",
    "auth-token": "login: credentials in the body",
    "auth-token-refresh": "credential in the body, bound to its own tenant",
    "auth-token-revoke": "credential in the body, bound to its own tenant",
    "me": "always the caller",
    "invitation-accept": "token in the body, bound to its own tenant; never shows the invitation",
    "schema": "public schema",
    "docs": "public docs page",
    "leaderboards": "a board of the caller's visible units; a unit id outside them is a 404",
    "me-incentives": "always the caller's own points and statements",
}

# Hand-written detail routes (not from a router) -> the probe object they take as pk.
PATH_PROBES = {"target-plan-to-close": "target", "target-review": "target"}

# basename -> a function creating (or picking) one object of tenant A to probe.
PROBES: dict[str, Callable[[TenantTree], Any]] = {
    "org-unit": lambda tree: tree.units["south"],
    "member": lambda tree: tree.members["south-rep"],
    "api-token": lambda tree: api_token_create(acts_as=tree.members["admin"], name="probe").token,
    "invitation": lambda tree: (
        invitation_create(invited_by=tree.members["admin"], email="probe@example.com").invitation
    ),
    "job-run": lambda tree: JobRun.objects.create(
        tenant=tree.tenant, task_name="probe", finished_at=timezone.now()
    ),
    "customer": lambda tree: records.customer(tree),
    "contact": lambda tree: records.contact(tree),
    "lead": lambda tree: records.lead(tree),
    "product-line": lambda tree: records.product_line(tree),
    "pipeline": lambda tree: Pipeline.objects.get(is_default=True),
    "opportunity": lambda tree: records.opportunity(tree),
    "payment": lambda tree: records.received_payment(tree),
    "visit": lambda tree: records.visit(tree),
    "activity": lambda tree: records.activity(tree),
    "notification": lambda tree: records.notification(tree, tree.members["admin"]),
    "target-plan": lambda tree: records.published_plan(tree),
    "target": lambda tree: records.rep_target(tree),
    "target-adjustment": lambda tree: records.adjustment(tree),
    "commitment": lambda tree: records.commitment(tree),
    "alert": lambda tree: records.alert(tree),
    "warning-rule": lambda tree: records.warning_rule(tree),
    "point-rule": lambda tree: incentive_builders.point_rule(tree),
    "point": lambda tree: incentive_builders.point_entry(tree),
    "commission-plan": lambda tree: incentive_builders.commission_plan(tree),
    "commission-statement": lambda tree: incentive_builders.commission_statement(tree),
    "review": lambda tree: records.review(tree),
    "webhook-endpoint": lambda tree: webhook_builders.endpoint(tree),
    "webhook-delivery": lambda tree: webhook_builders.delivery(tree),
}


@dataclass(frozen=True)
class Route:
    name: str
    basename: str | None
    detail: bool
    actions: dict[str, str]
    prefix: str


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def api_routes() -> list[Route]:
    routes: dict[str, Route] = {}
    for regex, pattern in _walk(get_resolver().url_patterns):
        if not regex.startswith("api/v1/") or "(?P<format>" in regex or not pattern.name:
            continue
        callback = pattern.callback
        initkwargs = getattr(callback, "initkwargs", {}) or {}
        routes[pattern.name] = Route(
            name=pattern.name,
            basename=initkwargs.get("basename"),
            detail="(?P<pk>" in regex,
            actions={
                method: name
                for method, name in (getattr(callback, "actions", None) or {}).items()
                if method in getattr(getattr(callback, "cls", None), "http_method_names", [])
            },
            prefix=regex,
        )
    return list(routes.values())


def _url(route: Route, pk: Any = None) -> str:
    path = route.prefix
    if pk is not None:
        path = re.sub(r"\(\?P<pk>[^)]*\)", str(pk), path)
    return "/" + path.replace("^", "").replace("$", "")


def test_the_harness_finds_the_routes_it_must_probe() -> None:
    names = {route.name for route in api_routes()}
    assert {"org-unit-list", "org-unit-detail", "member-detail", "me"} <= names


def test_every_route_is_probed_or_declared_not_to_expose_tenant_objects() -> None:
    unclassified = [
        route.name
        for route in api_routes()
        if route.basename is None
        and route.name not in NOT_OBJECT_ROUTES
        and route.name not in PATH_PROBES
    ]
    missing_probes = sorted(
        {route.basename for route in api_routes() if route.basename} - set(PROBES)
    )
    assert unclassified == [], "add these routes to NOT_OBJECT_ROUTES with a reason"
    assert missing_probes == [], "add a probe object for these viewsets to PROBES"


def test_no_route_shows_or_changes_another_tenants_objects(
    tree_a: TenantTree, tree_b: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    with tenant_scope(tree_a.tenant):
        targets = {basename: make(tree_a) for basename, make in PROBES.items()}
    owner = client_for(tree_a.members["admin"])
    intruder = client_for(tree_b.members["admin"])
    failures: list[str] = []
    probed = 0
    for route in api_routes():
        if route.name in PATH_PROBES:
            target = targets[PATH_PROBES[route.name]]
            url = "/" + route.prefix.replace("<int:pk>", str(target.pk))
            assert owner.get(url).status_code == 200, url
            if intruder.get(url).status_code != 404:
                failures.append(f"GET {url}: not 404")
            probed += 1
            continue
        if route.basename is None:
            continue
        target = targets[route.basename]
        if not route.detail and not route.name.endswith("-list"):
            # Collection actions (tombstones): the other tenant's object never appears.
            response = intruder.get(_url(route), {"since": "2000-01-01T00:00:00Z"})
            assert response.status_code == 200, (route.name, response.status_code)
            if target.pk in {row.get("id") for row in response.json()["results"]}:
                failures.append(f"{route.name}: lists tenant A's object {target.pk}")
            probed += 1
            continue
        if not route.detail:
            # The owner's admin lists the object: the probe is real, not a wrong URL.
            own = owner.get(_url(route), {"page_size": 200})
            assert own.status_code == 200, (route.name, own.status_code)
            assert target.pk in {row["id"] for row in own.json()["results"]}, route.name
            response = intruder.get(_url(route), {"page_size": 200})
            assert response.status_code == 200, (route.name, response.status_code)
            if target.pk in {row.get("id") for row in response.json()["results"]}:
                failures.append(f"{route.name}: lists tenant A's object {target.pk}")
            probed += 1
            continue
        url = _url(route, target.pk)
        if "get" in route.actions:
            assert owner.get(url).status_code == 200, url
        for method, expected in (
            ("get", 404),
            ("patch", 404),
            ("put", 404),
            ("post", 404),
            ("delete", 404),
        ):
            if method not in route.actions:
                continue
            response = getattr(intruder, method)(url, {}, format="json")
            probed += 1
            if response.status_code != expected:
                failures.append(f"{method.upper()} {url}: {response.status_code}, not {expected}")
    assert failures == []
    assert probed >= 2 * len(PROBES)
    with tenant_scope(tree_a.tenant):
        for basename, target in targets.items():
            assert type(target).objects.filter(pk=target.pk).exists(), basename


FILTER_ROUTES = [name for name in NOT_OBJECT_ROUTES if name.startswith("funnel-")]


@pytest.mark.parametrize("name", FILTER_ROUTES)
def test_aggregate_routes_answer_404_for_another_tenants_ids(
    name: str, tree_a: TenantTree, tree_b: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    route = next(route for route in api_routes() if route.name == name)
    intruder = client_for(tree_b.members["admin"])
    with tenant_scope(tree_a.tenant):
        pipeline = Pipeline.objects.get(is_default=True)
    for params in (
        {"org_unit": tree_a.units["north"].pk},
        {"member": tree_a.members["rep"].pk},
        {"pipeline": pipeline.pk},
    ):
        assert intruder.get(_url(route), params).status_code == 404, (name, params)
    assert intruder.get(_url(route)).status_code == 200
