"""Content negotiation answers as DRF's, remembering only the usual Accept headers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from django.http import Http404
from rest_framework import exceptions, renderers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from integrations.exports import CSVRenderer, XLSXRenderer
from tenancy.api import negotiation
from tenancy.api.negotiation import USUAL_ACCEPT, ContentNegotiation
from tenancy.api.renderers import JSONRenderer

RENDERER_SETS = {
    "api": [JSONRenderer, renderers.BrowsableAPIRenderer],
    "exports": [JSONRenderer, CSVRenderer, XLSXRenderer],
}
ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "",
    "text/html",
    "application/json; indent=4",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "text/csv",
    "application/xml",
]
QUERIES = ["", "format=json", "format=api", "format=csv", "page=2"]


def answer(negotiator: Any, accept: str | None, query: str, classes: Sequence[type]) -> Any:
    headers: dict[str, Any] = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/api/v1/me/?{query}", **headers))
    chosen = [cls() for cls in classes]
    try:
        renderer, media_type = negotiator.select_renderer(request, chosen)
    except (exceptions.NotAcceptable, Http404) as error:  # refusals: compared by kind
        return type(error).__name__
    return type(renderer), media_type


@pytest.mark.parametrize("renderer_set", RENDERER_SETS)
def test_every_answer_is_drfs_and_remembered_ones_stay_so(renderer_set: str) -> None:
    classes = RENDERER_SETS[renderer_set]
    negotiation._ANSWERS.clear()
    ours = ContentNegotiation()
    for _round in range(2):  # the second round is answered from memory where it may be
        for accept in ACCEPTS:
            for query in QUERIES:
                expected = answer(DefaultContentNegotiation(), accept, query, classes)
                assert answer(ours, accept, query, classes) == expected, (accept, query)
    assert negotiation._ANSWERS, "the usual headers were remembered"
    assert {accept for accept, _classes in negotiation._ANSWERS} <= USUAL_ACCEPT


def test_a_refused_accept_is_a_406_in_the_apis_shape(client_for: Any, tree_a: Any) -> None:
    client = client_for(tree_a.members["rep"])
    for _ in range(2):
        refused = client.get("/api/v1/me/", HTTP_ACCEPT="application/xml")
        assert refused.status_code == 406
        assert client.get("/api/v1/me/", HTTP_ACCEPT="application/json").status_code == 200


def test_it_is_the_apis_negotiation() -> None:
    from rest_framework.views import APIView

    assert APIView.content_negotiation_class is ContentNegotiation
