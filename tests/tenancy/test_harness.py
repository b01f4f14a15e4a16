"""Cross-tenant harness: every API route, found from the URL configuration, is probed
with another tenant's admin token. New endpoints are covered without anyone remembering;
a route without a probe object fails the test until one is added to ``PROBES``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import Pipeline
from tenancy.models import JobRun, Membership, NightlyRun
from tenancy.scope import tenant_scope
from tenancy.services import api_token_create, invitation_create
from tests import records
from tests.factories import TenantTree
from tests.incentives import builders as incentive_builders
from tests.integrations import webhook_builders
from tests.integrations.helpers import import_job

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
    "tenant-settings": "always the caller's own tenant (admins only)",
    "invitation-accept": "token in the body, bound to its own tenant; never shows the invitation",
    "schema": "public schema",
    "docs": "public docs page",
    "leaderboards": "a board of the caller's visible units; a unit id outside them is a 404",
    "me-incentives": "always the caller's own points and statements",
    "export": "a list within visibility; its id filters are the list's own (tests/integrations)",
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
    "import": import_job,
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


# --- another tenant's ids inside request bodies and list filters (issue #12 item 10) -----

# Action bodies that carry ids, by route name (the router's generic create and update
# serializers are read from the viewsets themselves).
ACTION_BODY_IDS: dict[str, dict[str, str]] = {
    "opportunity-move": {"stage": "stage"},
    "opportunity-correct": {"product_line": "product-line"},
    "lead-convert": {"customer": "customer"},
    "commission-plan-assignments": {"member": "member", "org_unit": "org-unit"},
}
# Filters that take an id without being a relation of the list's model.
FILTER_ID_PROBES = {
    "org_unit": "org-unit",
    "subtree_of": "org-unit",
    "target": "target",
    "subject_id": "member",
}


def _probe_objects(tree: TenantTree) -> dict[str, Any]:
    """One object per probe name of ``tree``'s tenant (call inside its scope)."""
    objects = {basename: make(tree) for basename, make in PROBES.items()}
    objects["stage"] = Pipeline.objects.get(is_default=True).stages.order_by("order").first()
    objects["nightly-run"] = NightlyRun.objects.create(
        tenant=tree.tenant, night=date(2026, 3, 2), as_of=date(2026, 3, 1)
    )
    return objects


def _by_model(objects: dict[str, Any]) -> dict[type, Any]:
    by_model: dict[type, Any] = {}
    for name, obj in objects.items():
        by_model.setdefault(type(obj), obj)
        if name in ("member", "org-unit"):  # the probes' own picks win for these
            by_model[type(obj)] = obj
    return by_model


def _relation_model(field: Any) -> type | None:
    from rest_framework import serializers

    if isinstance(field, serializers.ManyRelatedField):
        field = field.child_relation
    model = getattr(field, "model", None)
    if model is None and getattr(field, "queryset", None) is not None:
        model = field.queryset.model
    return model


def _write_routes() -> Iterator[tuple[Route, str, dict[str, type | str]]]:
    """(route, method, {field: related model or probe name}) for every write that takes
    ids in its body: creates, partial updates and the actions of ACTION_BODY_IDS."""
    from rest_framework import serializers

    resolver_callbacks: dict[str | None, Any] = {
        pattern.name: pattern.callback for _regex, pattern in _walk(get_resolver().url_patterns)
    }
    for route in api_routes():
        if route.basename is None:
            continue
        if route.name in ACTION_BODY_IDS:
            yield route, "post", dict(ACTION_BODY_IDS[route.name])
            continue
        method = "post" if route.actions.get("post") == "create" else None
        if route.actions.get("patch") == "partial_update":
            method = "patch"
        if method is None:
            continue
        view_class = resolver_callbacks[route.name].cls
        view = view_class(action=route.actions[method], format_kwarg=None, kwargs={})
        view.swagger_fake_view = True
        serializer = view.get_serializer_class()()
        fields: dict[str, type | str] = {
            name: model
            for name, field in serializer.fields.items()
            if isinstance(field, (serializers.RelatedField, serializers.ManyRelatedField))
            and not field.read_only
            and (model := _relation_model(field)) is not None
        }
        if fields:
            yield route, method, fields


def _error_fields(response: Any) -> set[str]:
    try:
        fields = response.json()["error"]["fields"]
    except (ValueError, KeyError, TypeError):
        return set()
    return {name.split(".", 1)[0] for name in fields}


def test_the_body_probe_covers_every_write_that_takes_an_id() -> None:
    names = {route.name for route, _method, _fields in _write_routes()}
    assert {
        "opportunity-list",
        "opportunity-detail",
        "commitment-list",
        "org-unit-list",
        "api-token-list",
        "opportunity-move",
        "lead-convert",
    } <= names


def test_another_tenants_ids_inside_request_bodies_are_refused_and_never_written(
    tree_a: TenantTree, tree_b: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    with tenant_scope(tree_a.tenant):
        theirs = _probe_objects(tree_a)
    with tenant_scope(tree_b.tenant):
        ours = _probe_objects(tree_b)
    their_by_model, our_by_model = _by_model(theirs), _by_model(ours)
    intruder = client_for(tree_b.members["admin"])
    failures: list[str] = []
    unprobed: list[str] = []
    probed = 0
    for route, method, fields in _write_routes():
        url = _url(route, ours[route.basename].pk if route.detail else None)  # type: ignore[index]
        for name, model in fields.items():
            if isinstance(model, str):
                foreign, own = theirs[model], ours[model]
            elif model in their_by_model:
                foreign, own = their_by_model[model], our_by_model[model]
            else:
                unprobed.append(f"{route.name}.{name}: {model.__name__}")
                continue
            many = name == "managers"
            value = [foreign.pk] if many else foreign.pk
            response = getattr(intruder, method)(url, {name: value}, format="json")
            probed += 1
            if response.status_code == 404:
                continue
            if response.status_code != 400 or name not in _error_fields(response):
                failures.append(
                    f"{method.upper()} {url} {name}={foreign.pk} (tenant A's): "
                    f"{response.status_code} {response.content[:200]!r}"
                )
                continue
            if method == "post" and not route.detail:
                # The control: the caller's own id of that kind is no error of this field,
                # so the refusal above was the foreign id's.
                control = intruder.post(url, {name: [own.pk] if many else own.pk}, format="json")
                if name in _error_fields(control):
                    failures.append(f"POST {url} {name}: refuses the caller's own id too")
    assert unprobed == [], "add an object of these models to _probe_objects"
    assert failures == []
    assert probed >= 30
    # Nothing of tenant B points at tenant A's rows: RLS would hide them, so look from
    # the platform's side.
    from django.apps import apps

    from tenancy.scope import platform_scope

    a_objects = {(type(obj), obj.pk) for obj in theirs.values() if hasattr(obj, "pk")}
    with platform_scope("test: tenant B's rows never reference tenant A's"):
        for model in apps.get_models():
            if not any(f.name == "tenant" for f in model._meta.fields):
                continue
            for field in model._meta.fields:
                related = field.related_model
                if not field.is_relation or related is None or field.name == "tenant":
                    continue
                pks = [pk for kind, pk in a_objects if kind is related]
                if not pks:
                    continue
                leaked = model.objects.filter(  # type: ignore[attr-defined]
                    tenant_id=tree_b.tenant.pk, **{f"{field.name}__in": pks}
                ).count()
                assert leaked == 0, (model.__name__, field.name)


def _id_filters() -> Iterator[tuple[Route, str, str | type]]:
    """(list route, filter name, probe name or related model) for every filter taking an id."""
    import django_filters

    callbacks: dict[str | None, Any] = {
        p.name: p.callback for _regex, p in _walk(get_resolver().url_patterns)
    }
    for route in api_routes():
        if not route.name.endswith("-list") or route.basename is None:
            continue
        filterset = getattr(callbacks[route.name].cls, "filterset_class", None)
        if filterset is None:
            continue
        model = filterset._meta.model
        for name, spec in filterset.base_filters.items():
            if name in FILTER_ID_PROBES:
                yield route, name, FILTER_ID_PROBES[name]
                continue
            if not isinstance(spec, django_filters.ModelChoiceFilter):
                continue
            related = model._meta.get_field(spec.field_name.split("__")[0]).related_model
            yield route, name, related


def test_list_filters_with_another_tenants_ids_show_nothing(
    tree_a: TenantTree, tree_b: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    with tenant_scope(tree_a.tenant):
        theirs = _probe_objects(tree_a)
    with tenant_scope(tree_b.tenant):
        _probe_objects(tree_b)  # tenant B has rows of every list, so empty means filtered
    their_by_model = _by_model(theirs)
    intruder = client_for(tree_b.members["admin"])
    failures: list[str] = []
    unprobed: list[str] = []
    probed = 0
    for route, name, kind in _id_filters():
        if isinstance(kind, str):
            foreign = theirs[kind]
        elif kind in their_by_model:
            foreign = their_by_model[kind]
        else:
            unprobed.append(f"{route.name}?{name}: {kind.__name__}")
            continue
        response = intruder.get(_url(route), {name: foreign.pk})
        probed += 1
        if response.status_code in (400, 404):
            continue
        if response.status_code != 200 or response.json()["results"]:
            failures.append(
                f"GET {_url(route)}?{name}={foreign.pk}: {response.status_code} "
                f"{response.content[:200]!r}"
            )
    assert unprobed == [], "add an object of these models to _probe_objects"
    assert failures == []
    assert probed >= 25


# --- the admin's pages with a second tenant's session ------------------------------------


def _admin_probe_objects(tree: TenantTree) -> dict[Any, Any]:
    """One object of tenant ``tree`` per model registered in the admin (where one exists
    after the probes: every model the tenant fills)."""
    from django.contrib import admin

    _probe_objects(tree)
    found: dict[Any, Any] = {}
    for model in admin.site._registry:
        if not any(f.name == "tenant" for f in model._meta.fields):
            continue
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            found[model] = obj
    # The platform's own rows that belong to the tenant: the tenant and its users.
    for obj in (tree.tenant, tree.members["south-rep"].user):
        if type(obj) in admin.site._registry:
            found[type(obj)] = obj
    return found


def test_the_admin_never_shows_or_changes_another_tenants_objects(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    from django.contrib import admin
    from django.forms.models import model_to_dict
    from django.test import Client

    from tests.factories import PASSWORD

    with tenant_scope(tree_a.tenant):
        theirs = _admin_probe_objects(tree_a)
        before = {model: model_to_dict(obj) for model, obj in theirs.items()}
        all_pks = {
            model: {obj.pk}
            if not any(f.name == "tenant" for f in model._meta.fields)
            else set(model._default_manager.values_list("pk", flat=True))
            for model, obj in theirs.items()
        }
    with tenant_scope(tree_b.tenant):
        _admin_probe_objects(tree_b)
    intruder = Client()
    assert intruder.login(username="globex-admin", password=PASSWORD)
    failures: list[str] = []
    tenant_models: list[Any] = [
        m for m in admin.site._registry if any(f.name == "tenant" for f in m._meta.fields)
    ]
    assert len(theirs) >= 0.7 * len(tenant_models), sorted(
        m.__name__ for m in set(tenant_models) - set(theirs)
    )
    for model, obj in theirs.items():
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        changelist = intruder.get(base)
        if changelist.status_code == 200:
            html = changelist.content.decode()
            shown = {int(pk) for pk in re.findall(rf'href="{base}(\d+)/change/', html)}
            if shown & all_pks[model]:
                failures.append(f"{base}: lists tenant A's rows {sorted(shown & all_pks[model])}")
        elif changelist.status_code not in (302, 403):
            failures.append(f"{base}: {changelist.status_code}")
        for page in ("change", "delete", "history"):
            url = f"{base}{obj.pk}/{page}/"
            response = intruder.get(url)
            if response.status_code in (403, 404):
                continue
            if response.status_code == 302 and response["Location"] in ("/admin/", "/admin/login/"):
                continue  # Django's "doesn't exist" redirect to the index
            failures.append(f"GET {url}: {response.status_code}")
            if response.status_code == 200 and str(obj) in response.content.decode():
                failures.append(f"GET {url}: shows tenant A's {obj}")
        # Writes through the change and delete pages change nothing.
        intruder.post(f"{base}{obj.pk}/change/", {"name": "taken over", "_save": "Save"})
        intruder.post(f"{base}{obj.pk}/delete/", {"post": "yes"})
        intruder.post(
            base, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
        )
    with tenant_scope(tree_a.tenant):
        for model, obj in theirs.items():
            current = model._default_manager.filter(pk=obj.pk).first()
            if current is None:
                failures.append(f"{model.__name__} {obj.pk}: deleted through tenant B's admin")
            elif model_to_dict(current) != before[model]:
                failures.append(f"{model.__name__} {obj.pk}: changed through tenant B's admin")
    assert failures == []
