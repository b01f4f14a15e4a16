"""The API's JSON renderer writes DRF's bytes with orjson (tenancy.api.renderers)."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from django.utils.functional import lazystr
from rest_framework import renderers, serializers
from rest_framework.settings import api_settings
from rest_framework.test import APIClient
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from tenancy.api.renderers import JSONRenderer
from tenancy.models import Membership
from tests.factories import TenantTree

SHANGHAI = timezone(timedelta(hours=8))
SERIALIZER: serializers.Serializer[Any] = serializers.Serializer()


@dataclass
class Point:
    x: int


def drf(data: Any, media_type: str = "application/json") -> bytes:
    return renderers.JSONRenderer().render(data, media_type, {})


def ours(data: Any, media_type: str = "application/json") -> bytes:
    return JSONRenderer().render(data, media_type, {})


CASES: dict[str, Any] = {
    "scalars": {"s": "text", "i": 7, "negative": -12, "t": True, "f": False, "n": None},
    "floats": [0.5, 1.25, -3.0, 0.1, 123456.789],
    "chinese": {"name": "蓝海物流 Lanhai", "备注": "续约 renewal"},
    "separators": {"line": "a\u2028b", "paragraph": "c\u2029d", "both": "\u2028\u2029"},
    # Characters that share the separators' first two bytes in UTF-8 (E2 80 …).
    "near_separators": {"none": "“引号”…—‘’", "quotes": ["“", "”", "…", "—"]},
    "paragraph_only": ["“引号”\u2029…"],
    "line_only": {"end": "——\u2028"},
    "escapes": {"quote": 'say "hi"', "slash": "a/b\\c", "control": "tab\there\nnl\x01"},
    "moments": {
        "utc": datetime(2026, 12, 6, 12, 30, 5, tzinfo=UTC),
        "utc_micro": datetime(2026, 12, 6, 12, 30, 5, 123456, tzinfo=UTC),
        "shanghai": datetime(2026, 12, 6, 20, 30, tzinfo=SHANGHAI),
        "naive": datetime(2026, 12, 6, 12, 30),
        "date": date(2026, 12, 6),
        "time": time(9, 15, 30),
        "duration": timedelta(days=1, seconds=5),
    },
    "decimal_uuid": {"amount": Decimal("1234.50"), "id": uuid.UUID(int=42)},
    "lazy": {"label": lazystr("页 page"), "list": [lazystr("页 page")]},
    "keys": {1: "one", 2.5: "float", False: "bool", None: "none"},
    "drf_containers": OrderedDict(
        [
            (
                "results",
                ReturnList([ReturnDict({"id": 1}, serializer=SERIALIZER)], serializer=SERIALIZER),
            )
        ]
    ),
    "dataclass_and_tuple": {"point": Point(3), "pair": (1, "b"), "set_free": []},
    "empty": {},
    "deep": {"a": [{"b": [{"c": [1, 2, {"d": None}]}]}]},
}


@pytest.mark.parametrize("name", CASES)
def test_bytes_equal_drfs(name: str) -> None:
    data = CASES[name]
    if name == "dataclass_and_tuple":
        # json.dumps cannot write a dataclass: DRF's encoder falls to its iteration and
        # fails; so does ours, through the same encoder.
        with pytest.raises(TypeError):
            drf(data)
        with pytest.raises(TypeError):
            ours(data)
        data = {"pair": (1, "b")}
    assert ours(data) == drf(data)


def test_separators_are_escaped_as_drf_does() -> None:
    body = ours({"line": "a\u2028b\u2029c"})
    assert body == b'{"line":"a\\u2028b\\u2029c"}'


def test_an_integer_beyond_64_bits_is_written_by_drf() -> None:
    data = {"big": 2**70, "small": -(2**70)}
    expected = b'{"big":1180591620717411303424,"small":-1180591620717411303424}'
    assert ours(data) == drf(data) == expected


def test_indented_answers_are_drfs() -> None:
    data = {"a": [1, {"b": "二"}]}
    media_type = "application/json; indent=4"
    assert ours(data, media_type) == drf(data, media_type)
    assert b"\n    " in ours(data, media_type)


def test_nothing_is_an_empty_body() -> None:
    assert ours(None) == b"" == drf(None)


def test_a_float_that_is_not_a_number_is_null() -> None:
    """The one documented difference in kind: DRF's strict JSON refuses NaN (a 500)."""
    with pytest.raises(ValueError):
        drf({"x": float("nan")})
    assert ours({"x": float("nan"), "y": float("inf")}) == b'{"x":null,"y":null}'


def test_it_is_the_apis_default_renderer() -> None:
    assert api_settings.DEFAULT_RENDERER_CLASSES[0] is JSONRenderer


@pytest.fixture
def rep_client(tree_a: TenantTree, client_for: Callable[[Membership], APIClient]) -> APIClient:
    return client_for(tree_a.members["rep"])


def test_api_answers_are_drfs_bytes(rep_client: APIClient) -> None:
    created = rep_client.post(
        "/api/v1/customers/",
        {"name": "蓝海物流\u2028Lanhai", "level": "A", "address": '上海 "浦东"'},
        format="json",
    )
    assert created.status_code == 201, created.content
    customer = created.json()["id"]
    deal = rep_client.post(
        "/api/v1/opportunities/",
        {"name": "续约 renewal", "customer": customer, "amount": "234600.50"},
        format="json",
    )
    assert deal.status_code == 201, deal.content
    paths = [
        "/api/v1/me/",
        "/api/v1/customers/",
        f"/api/v1/customers/{customer}/",
        "/api/v1/opportunities/?ordering=-updated_at",
        "/api/v1/opportunities/?updated_since=2020-01-01T00:00:00Z",
        "/api/v1/customers/?page=9",  # an error body
    ]
    for path in paths:
        response = rep_client.get(path)
        assert response.status_code in (200, 400), (path, response.content)
        assert response.content == drf(response.data), path
    listed = rep_client.get("/api/v1/customers/").json()["results"]
    assert listed[0]["name"] == "蓝海物流\u2028Lanhai"
    assert b"\\u2028" in rep_client.get("/api/v1/customers/").content


def test_the_browsable_api_and_indent_still_work(rep_client: APIClient) -> None:
    indented = rep_client.get("/api/v1/me/", HTTP_ACCEPT="application/json; indent=2")
    assert indented.status_code == 200
    assert indented.content.startswith(b"{\n  ")
    page = rep_client.get("/api/v1/me/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
