"""Pagination (SPEC section 8): the sync cursor ordered by (updated_at, id) with no
count, the capped count of page-number lists, and page validation; the admin's
changelists count the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from crm.models import Customer
from tenancy.models import Membership
from tenancy.pagination import CappedCountPaginator
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import PASSWORD, TenantTree

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]
BASE = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
SINCE = "2026-05-01T00:00:00Z"


def _customers(tree: TenantTree, n: int) -> list[int]:
    """``n`` customers changed one minute apart from BASE; the 3rd and 4th at the same
    instant, so a page boundary falls between two rows of one updated_at."""
    ids = []
    with tenant_scope(tree.tenant):
        for index in range(n):
            customer = records.customer(tree, name=f"客户 {index}")
            minutes = index if index < 3 else index - 1
            Customer.objects.filter(pk=customer.pk).update(
                updated_at=BASE + timedelta(minutes=minutes)
            )
            ids.append(customer.pk)
    return ids


def _get(client: APIClient, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.get(url, params or {})
    assert response.status_code == 200, response.content
    return response.json()


def _walk(client: APIClient, first: dict[str, Any]) -> list[dict[str, Any]]:
    pages = [first]
    while pages[-1]["next"]:
        pages.append(_get(client, pages[-1]["next"]))
    return pages


# --- the sync cursor ------------------------------------------------------------------


def test_sync_pages_neither_skip_nor_repeat_rows_changed_between_two_pages(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    ids = _customers(tree_a, 7)
    admin = client_for(tree_a.members["admin"])
    page_1 = _get(admin, "/api/v1/customers/", {"updated_since": SINCE, "page_size": 3})
    assert "count" not in page_1
    assert [row["id"] for row in page_1["results"]] == ids[:3]

    # Between page 1 and page 2: a row not sent yet and a row already sent change.
    unsent, sent = ids[4], ids[1]
    for pk in (unsent, sent):
        version = _get(admin, f"/api/v1/customers/{pk}/")["version"]
        changed = admin.patch(f"/api/v1/customers/{pk}/", {"level": "B", "version": version})
        assert changed.status_code == 200, changed.content

    pages = _walk(admin, page_1)
    rows = [row for page in pages for row in page["results"]]
    sent_ids = [row["id"] for row in rows]
    # Page 2 goes on after the last row of page 1 (the tie at ids[2]/ids[3] included):
    assert [row["id"] for row in pages[1]["results"]] == [ids[3], ids[5], ids[6]]
    # nothing skipped; the unsent row comes once, changed; the sent one again, changed.
    assert set(sent_ids) == set(ids)
    assert sent_ids.count(unsent) == 1
    assert sent_ids.count(sent) == 2
    assert sent_ids[-2:] == [unsent, sent]  # in the order they changed
    assert all(row["level"] == "B" for row in rows[-2:])
    # No row is sent twice in the same state.
    states = [(row["id"], row["version"]) for row in rows]
    assert len(states) == len(set(states))
    # Each row comes after the one before in (updated_at, id) order.
    keys = [(datetime.fromisoformat(row["updated_at"]), row["id"]) for row in rows]
    assert keys == sorted(keys)


def test_the_last_cursor_resumes_the_next_sync_exactly_where_it_stopped(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    ids = _customers(tree_a, 4)
    admin = client_for(tree_a.members["admin"])
    pages = _walk(admin, _get(admin, "/api/v1/customers/", {"updated_since": SINCE}))
    assert len(pages) == 1 and pages[0]["next"] is None and pages[0]["cursor"]
    resumed = _get(admin, "/api/v1/customers/", {"cursor": pages[0]["cursor"]})
    assert resumed["results"] == [] and resumed["cursor"] == pages[0]["cursor"]
    version = _get(admin, f"/api/v1/customers/{ids[0]}/")["version"]
    admin.patch(f"/api/v1/customers/{ids[0]}/", {"level": "C", "version": version})
    resumed = _get(admin, "/api/v1/customers/", {"cursor": pages[0]["cursor"]})
    assert [row["id"] for row in resumed["results"]] == [ids[0]]


def test_sync_pages_keep_the_callers_visibility_and_filters(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    ids = _customers(tree_a, 5)  # owned by south-rep
    with tenant_scope(tree_a.tenant):
        Customer.objects.filter(pk=ids[2]).update(level="B")
    rep = client_for(tree_a.members["rep"])
    assert _get(rep, "/api/v1/customers/", {"updated_since": SINCE})["results"] == []
    south = client_for(tree_a.members["south-rep"])
    pages = _walk(
        south,
        _get(south, "/api/v1/customers/", {"updated_since": SINCE, "level": "A", "page_size": 2}),
    )
    assert [row["id"] for page in pages for row in page["results"]] == [
        ids[0],
        ids[1],
        ids[3],
        ids[4],
    ]


def test_a_cursor_not_given_out_and_an_ordering_in_a_sync_are_400(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(tree_a.members["admin"])
    for bad in ("nonsense", "MjAyNi0wNS0wMQ", "!!!"):
        response = admin.get("/api/v1/customers/", {"cursor": bad})
        assert response.status_code == 400, bad
        assert "cursor" in response.json()["error"]["fields"]
    response = admin.get("/api/v1/members/", {"updated_since": SINCE, "ordering": "-updated_at"})
    assert response.status_code == 400
    assert "ordering" in response.json()["error"]["fields"]
    too_small = admin.get("/api/v1/members/", {"updated_since": SINCE, "page_size": "0"})
    assert too_small.status_code == 400


def _queries(client: APIClient, url: str, params: dict[str, Any]) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url, params)
    assert response.status_code == 200, response.content
    return len(context.captured_queries)


@pytest.mark.parametrize("url", ["/api/v1/customers/", "/api/v1/members/", "/api/v1/org-units/"])
def test_a_sync_page_runs_no_count_and_a_fixed_number_of_queries(
    url: str, tree_a: TenantTree, client_for: ClientFor
) -> None:
    _customers(tree_a, 6)
    admin = client_for(tree_a.members["admin"])
    with CaptureQueriesContext(connection) as context:
        _get(admin, url, {"updated_since": SINCE})
    assert not any("COUNT(" in query["sql"] for query in context.captured_queries)
    small = _queries(admin, url, {"updated_since": SINCE, "page_size": 1})
    large = _queries(admin, url, {"updated_since": SINCE, "page_size": 200})
    assert small == large


# --- page numbers with a capped count -------------------------------------------------


def test_the_count_is_exact_up_to_the_limit_and_more_than_the_limit_beyond(
    tree_a: TenantTree, client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = client_for(tree_a.members["admin"])  # the tenant has 5 members
    exact = _get(admin, "/api/v1/members/", {"page_size": 2})
    assert (exact["count"], exact["count_is_exact"]) == (5, True)

    monkeypatch.setattr(CappedCountPaginator, "count_limit", 3)
    with CaptureQueriesContext(connection) as context:
        capped = _get(admin, "/api/v1/members/", {"page_size": 2})
    (count_sql,) = [q["sql"] for q in context.captured_queries if "COUNT(" in q["sql"]]
    # Counted in the page's order: the index serving the page stops the count too.
    assert 'ORDER BY "auth_user"."username" ASC LIMIT 4) subquery' in count_sql
    assert (capped["count"], capped["count_is_exact"]) == (3, False)
    # Pages go on past the counted rows until the rows run out.
    pages = _walk(admin, capped)
    assert [len(page["results"]) for page in pages] == [2, 2, 1]
    assert len({row["id"] for page in pages for row in page["results"]}) == 5
    past = admin.get("/api/v1/members/", {"page_size": 2, "page": 4})
    assert past.status_code == 400 and "page" in past.json()["error"]["fields"]


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5", "4"])
def test_a_page_that_is_not_a_number_or_past_the_end_is_400_naming_page(
    page: str, tree_a: TenantTree, client_for: ClientFor
) -> None:
    response = client_for(tree_a.members["admin"]).get(
        "/api/v1/members/", {"page": page, "page_size": "2"}
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["page"]


def test_the_last_page_and_an_empty_first_page_answer(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(tree_a.members["admin"])
    last = _get(admin, "/api/v1/members/", {"page": "last", "page_size": 2})
    assert len(last["results"]) == 1 and last["next"] is None
    empty = _get(admin, "/api/v1/customers/")
    assert (empty["count"], empty["count_is_exact"], empty["results"]) == (0, True, [])


# --- the admin's changelists ----------------------------------------------------------


def test_an_admin_changelist_counts_at_most_the_limit_and_says_more_than(
    tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenancy.admin import MembershipAdmin

    monkeypatch.setattr(CappedCountPaginator, "count_limit", 3)
    monkeypatch.setattr(MembershipAdmin, "list_per_page", 2)
    client = Client(headers={"Accept-Language": "en"})
    assert client.login(username="acme-admin", password=PASSWORD)
    with CaptureQueriesContext(connection) as context:
        response = client.get("/admin/tenancy/membership/")
    assert response.status_code == 200
    counts = [q["sql"] for q in context.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1 and "LIMIT 4" in counts[0]  # no second, unfiltered count
    assert "more than 3 members" in response.content.decode()
    page_3 = client.get("/admin/tenancy/membership/", {"p": 3})
    assert page_3.status_code == 200
    assert page_3.content.decode().count('class="field-username"') == 1


def test_an_admin_changelist_under_the_limit_shows_the_exact_count(tree_a: TenantTree) -> None:
    client = Client(headers={"Accept-Language": "en"})
    assert client.login(username="acme-admin", password=PASSWORD)
    html = client.get("/admin/tenancy/membership/").content.decode()
    assert "5 members" in html and "more than" not in html


def test_the_admins_date_hierarchy_spans_first_to_last_row_without_reading_every_row(
    tree_a: TenantTree,
) -> None:
    from crm.models import Opportunity

    with tenant_scope(tree_a.tenant):
        deals = [records.opportunity(tree_a) for _ in range(3)]
        for deal, created in zip(
            deals,
            [
                datetime(2024, 11, 5, tzinfo=UTC),
                datetime(2026, 2, 1, tzinfo=UTC),
                datetime(2026, 4, 30, 17, 0, tzinfo=UTC),  # May 1st in Shanghai
            ],
            strict=True,
        ):
            Opportunity.objects.filter(pk=deal.pk).update(created_at=created)
    client = Client(headers={"Accept-Language": "en"})
    assert client.login(username="acme-admin", password=PASSWORD)
    with CaptureQueriesContext(connection) as context:
        html = client.get("/admin/crm/opportunity/").content.decode()
    statements = [q["sql"] for q in context.captured_queries]
    assert not any("DISTINCT" in sql or "MIN(" in sql for sql in statements)
    # The first and the last row: two index-ordered reads of one row each.
    bounds = [
        sql.rsplit("ORDER BY", 1)[1]
        for sql in statements
        if sql.startswith('SELECT "crm_opportunity"."created_at" AS "created_at" FROM')
    ]
    assert bounds == [" 1 ASC LIMIT 1", " 1 DESC LIMIT 1"], statements
    for year in (2024, 2025, 2026):
        assert f"created_at__year={year}" in html
    assert "created_at__year=2023" not in html and "created_at__year=2027" not in html
    months = client.get("/admin/crm/opportunity/", {"created_at__year": "2026"}).content.decode()
    for month in (2, 3, 4, 5):
        assert f"created_at__month={month}" in months
    assert "created_at__month=1&" not in months and "created_at__month=6" not in months
    # Filtered (open deals: a join to the stage), the first level still reads the two
    # ends of the member's rows, without the join; the years are the same.
    with CaptureQueriesContext(connection) as context:
        page = client.get("/admin/crm/opportunity/", {"stage__kind__exact": "open"})
    bounds = [
        sql
        for sql in (q["sql"] for q in context.captured_queries)
        if sql.startswith('SELECT "crm_opportunity"."created_at" AS "created_at" FROM')
    ]
    assert len(bounds) == 2 and not any("crm_stage" in sql for sql in bounds), bounds
    for year in (2024, 2025, 2026):
        assert f"created_at__year={year}" in page.content.decode()


def test_a_first_page_that_is_not_full_is_the_count(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    """Read before counting, with one row more: a first page with no row beyond it is the
    whole list (no COUNT sent); otherwise it counts, and keeps the rows it read."""
    admin = client_for(tree_a.members["admin"])  # the tenant has 5 members
    with CaptureQueriesContext(connection) as context:
        short = _get(admin, "/api/v1/members/", {"page_size": 10})
    assert (short["count"], short["count_is_exact"], short["next"]) == (5, True, None)
    assert len(short["results"]) == 5
    assert not any("COUNT(" in q["sql"] for q in context.captured_queries)
    with CaptureQueriesContext(connection) as context:
        exact = _get(admin, "/api/v1/members/", {"page_size": 5})  # 6 asked, 5 came
    assert (exact["count"], exact["next"], len(exact["results"])) == (5, None, 5)
    assert not any("COUNT(" in q["sql"] for q in context.captured_queries)
    with CaptureQueriesContext(connection) as context:
        full = _get(admin, "/api/v1/members/", {"page_size": 4})
    assert (full["count"], len(full["results"])) == (5, 4) and full["next"]
    assert sum("COUNT(" in q["sql"] for q in context.captured_queries) == 1
    reads = [q for q in context.captured_queries if 'FROM "crm_membership"' in q["sql"]]
    assert len(reads) == 3, reads  # the credential's, the page's (5 rows), the count
    with CaptureQueriesContext(connection) as context:
        first = _get(admin, "/api/v1/members/", {"page_size": 2})
    assert (first["count"], len(first["results"])) == (5, 2) and first["next"]
    second = _get(admin, "/api/v1/members/", {"page_size": 2, "page": 2})
    names = [row["id"] for row in first["results"] + second["results"]]
    assert len(set(names)) == 4


def test_a_slice_counts_as_djangos_count_of_it(tree_a: TenantTree) -> None:
    from django.db.models import Q

    from crm.models import Visit
    from tenancy.pagination import count_slice

    with tenant_scope(tree_a.tenant):
        for member in ("rep", "rep2", "south-rep"):
            records.visit(tree_a, tree_a.members[member])
        customers = Customer.objects.all()
        visits = Visit.objects.order_by("-planned_start")
        slices = {
            "all": customers[:1001],
            "capped below the rows": visits.values("pk")[:2],
            "capped at the rows": visits.values("pk")[:3],
            "past the start": visits[1:3],
            "filtered": visits.filter(rep=tree_a.members["rep"]).values("pk")[:1001],
            "joined": visits.filter(customer__name__contains="申达").values("pk")[:1001],
            "distinct": Customer.objects.filter(visits__isnull=False).distinct()[:2],
            "a union": visits.filter(rep=tree_a.members["rep"])
            .union(visits.filter(rep=tree_a.members["rep2"]))
            .order_by("-planned_start")[:1001],
            "nothing to match": visits.filter(pk__in=[]).values("pk")[:1001],
            "none": visits.none()[:1001],
            "an empty or": visits.filter(Q(pk__in=[]) | Q(rep=None))[:5],
        }
        counts = {name: count_slice(rows) for name, rows in slices.items()}
        assert counts == {name: len(list(rows)) for name, rows in slices.items()}
        # Django's own count agrees (its count of an ordered union fails in Django 5.2).
        assert counts == {
            name: rows.count() if name != "a union" else counts[name]
            for name, rows in slices.items()
        }
        assert (counts["capped below the rows"], counts["past the start"]) == (2, 2)
        assert (counts["a union"], counts["nothing to match"]) == (2, 0)
        with CaptureQueriesContext(connection) as context:
            count_slice(slices["filtered"])
            count_slice(slices["none"])
        (statement,) = [q["sql"] for q in context.captured_queries]
        assert statement.startswith('SELECT COUNT(*) FROM (SELECT "crm_visit"."id" AS "pk"')
        assert statement.endswith("LIMIT 1001) subquery")
