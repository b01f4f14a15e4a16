"""Bad input answers a 4xx in the one error shape, readable by a person (SPEC section 8)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from crm.models import ProductLine
from targets.models import TargetPlan
from targets.services import plan_create
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests.factories import TenantTree

ClientFor = Callable[[Membership], APIClient]

pytestmark = pytest.mark.django_db


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()["error"]
    assert set(body) == {"code", "message", "fields"}
    assert "ErrorDetail" not in json.dumps(body)
    return body


@pytest.fixture
def admin(tree_a: TenantTree, client_for: ClientFor) -> APIClient:
    return client_for(tree_a.members["admin"])


@pytest.fixture
def plan(tree_a: TenantTree) -> TargetPlan:
    with tenant_scope(tree_a.tenant.pk):
        return plan_create(
            member=tree_a.members["admin"],
            fiscal_year=2026,
            metric="won_amount",
            annual_total=Decimal("1200000.00"),
        )


# --- no 500s --------------------------------------------------------------------------


def test_a_nul_byte_in_a_query_parameter_is_a_400(admin: APIClient) -> None:
    body = _error(admin.get("/api/v1/me/plan-to-close/", {"period_kind": "mo\x00nth"}), 400)
    assert "period_kind" in body["fields"]
    body = _error(admin.get("/api/v1/customers/", {"search": "a\x00b"}), 400)
    assert "search" in body["fields"]


def test_deeply_nested_json_is_a_400(admin: APIClient) -> None:
    deep = "[" * 50_000 + "]" * 50_000  # 100 KB
    response = admin.post("/api/v1/customers/", deep, content_type="application/json")
    body = _error(response, 400)
    assert body["code"] == "parse_error"


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_a_duplicate_product_line_name_is_a_409_naming_the_field(
    tree_a: TenantTree, admin: APIClient, method: str
) -> None:
    taken = admin.post("/api/v1/product-lines/", {"name": "Pumps 泵"}).json()
    other = admin.post("/api/v1/product-lines/", {"name": "Valves"}).json()
    if method == "post":
        response = admin.post("/api/v1/product-lines/", {"name": "Pumps 泵"})
    else:
        response = getattr(admin, method)(
            f"/api/v1/product-lines/{other['id']}/", {"name": "Pumps 泵"}
        )
    body = _error(response, 409)
    assert body["code"] == "unique"
    assert list(body["fields"]) == ["name"]
    assert "Pumps 泵" not in body["message"] or "name" in body["message"].lower()
    # the transaction was rolled back: the request after it works and nothing changed
    listed = admin.get("/api/v1/product-lines/").json()["results"]
    assert sorted(line["name"] for line in listed) == ["Pumps 泵", "Valves"]
    assert taken["id"] != other["id"]
    with tenant_scope(tree_a.tenant.pk):
        assert ProductLine.objects.count() == 2


@pytest.mark.parametrize(
    "steps",
    [[[0, 0.5]], [[1, 5]], [[2, 0.5]], [[1, 0.5], [1, 0.7]], [["x", 1]], [[1.5, 0.5]]],
)
def test_bad_ramp_steps_are_a_400_on_ramp_steps(
    admin: APIClient, plan: TargetPlan, steps: list[list[Any]]
) -> None:
    response = admin.post(
        f"/api/v1/target-plans/{plan.pk}/decompose/",
        {"dry_run": True, "ramp": True, "ramp_steps": steps},
    )
    body = _error(response, 400)
    assert list(body["fields"]) == ["ramp_steps"]


# --- readable messages, paths for nested fields ------------------------------------------


def test_a_negative_time_weight_is_named_by_its_path(admin: APIClient, plan: TargetPlan) -> None:
    weights = [1] * 12
    weights[3] = -1
    response = admin.post(
        f"/api/v1/target-plans/{plan.pk}/decompose/",
        {"dry_run": True, "time_method": "manual", "time_weights": weights},
    )
    body = _error(response, 400)
    assert list(body["fields"]) == ["time_weights.3"]
    assert body["fields"]["time_weights.3"] == ["Ensure this value is greater than or equal to 0."]
    assert body["message"] == ("time_weights.3: Ensure this value is greater than or equal to 0.")


def test_a_short_ramp_step_and_a_word_for_a_weight_are_named(
    admin: APIClient, plan: TargetPlan, tree_a: TenantTree
) -> None:
    url = f"/api/v1/target-plans/{plan.pk}/decompose/"
    body = _error(admin.post(url, {"dry_run": True, "ramp_steps": [[1]]}), 400)
    assert list(body["fields"]) == ["ramp_steps.0"]
    unit = tree_a.units["north"].pk
    body = _error(admin.post(url, {"dry_run": True, "potential": {f"unit:{unit}": "big"}}), 400)
    assert list(body["fields"]) == [f"potential.unit:{unit}"]
    assert body["fields"][f"potential.unit:{unit}"] == ["A valid number is required."]


@pytest.mark.parametrize("field", ["potential", "manual"])
def test_an_unknown_child_key_in_decomposition_is_a_400_naming_it(
    admin: APIClient, plan: TargetPlan, field: str
) -> None:
    response = admin.post(
        f"/api/v1/target-plans/{plan.pk}/decompose/",
        {"dry_run": True, "org_method": field, field: {"unit:999999": "1"}},
    )
    body = _error(response, 400)
    assert "unit:999999" in json.dumps(body, ensure_ascii=False)


def test_an_unknown_depth_in_org_methods_by_depth_is_a_400(
    admin: APIClient, plan: TargetPlan
) -> None:
    response = admin.post(
        f"/api/v1/target-plans/{plan.pk}/decompose/",
        {"dry_run": True, "org_methods_by_depth": {"deep": "equal"}},
    )
    body = _error(response, 400)
    assert "org_methods_by_depth" in json.dumps(body["fields"])


# --- list parameters -------------------------------------------------------------------


def test_an_unknown_ordering_field_is_a_400_naming_the_parameter(admin: APIClient) -> None:
    body = _error(admin.get("/api/v1/customers/", {"ordering": "password"}), 400)
    assert list(body["fields"]) == ["ordering"]
    assert "password" in body["fields"]["ordering"][0]
    assert admin.get("/api/v1/customers/", {"ordering": "-name"}).status_code == 200
    for refused in ("--name", ",", "-", "name,-password"):
        body = _error(admin.get("/api/v1/customers/", {"ordering": refused}), 400)
        assert list(body["fields"]) == ["ordering"], refused


def test_an_invalid_boolean_filter_is_a_400_naming_the_parameter(admin: APIClient) -> None:
    body = _error(admin.get("/api/v1/activities/", {"overdue": "maybe"}), 400)
    assert list(body["fields"]) == ["overdue"]
    assert admin.get("/api/v1/activities/", {"overdue": "true"}).status_code == 200
    assert admin.get("/api/v1/activities/", {"overdue": "false"}).status_code == 200


def test_a_bad_page_and_period_kind_are_400s_naming_the_parameter(
    admin: APIClient, plan: TargetPlan
) -> None:
    assert list(_error(admin.get("/api/v1/customers/", {"page": "abc"}), 400)["fields"]) == ["page"]
    body = _error(admin.get("/api/v1/me/plan-to-close/", {"period_kind": "week"}), 400)
    assert list(body["fields"]) == ["period_kind"]


# --- body size -------------------------------------------------------------------------


@pytest.mark.parametrize("megabytes", [2, 10])
def test_a_body_over_the_limit_is_a_json_413(admin: APIClient, megabytes: int) -> None:
    payload = json.dumps({"name": "x" * (megabytes * 1024 * 1024)})
    response = admin.post("/api/v1/customers/", payload, content_type="application/json")
    body = _error(response, 413)
    assert body["code"] == "request_too_large"


# --- refused, not hidden -----------------------------------------------------------------


def test_a_manager_adjusting_their_own_units_target_gets_a_403_with_a_sentence(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    from targets.models import Target
    from tests import records

    with tenant_scope(tree_a.tenant.pk):
        plan = records.published_plan(tree_a)
        own_unit = Target.objects.get(
            plan=plan,
            org_unit=tree_a.units["north"],
            member=None,
            period_kind="month",
            period_index=1,
            product_line=None,
        )
    manager = client_for(tree_a.members["manager"])
    assert manager.get(f"/api/v1/targets/{own_unit.pk}/").status_code == 200
    body = {"new_value": "1.00", "reason": "x", "trigger": "other"}
    error = _error(manager.post(f"/api/v1/targets/{own_unit.pk}/adjust/", body), 403)
    assert error["message"] == "Only a manager above this target or an admin can change it."
