"""Test-only routes that write a row and then fail, for the request-transaction tests:
the project's URLs plus one API view and one session (admin-side) view."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import path
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as project_urlpatterns
from tenancy.models import OrgUnit

NAME = "written by a failing request"


def _write(member: Any) -> None:
    root = OrgUnit.objects.get(tenant_id=member.tenant_id, parent=None)
    OrgUnit.objects.create(
        tenant_id=member.tenant_id, name=NAME, parent=root, path=f"{root.path}999/", depth=1
    )


class WriteThenFail(APIView):
    def post(self, request: Request) -> Response:
        _write(request.membership)  # type: ignore[attr-defined]
        how = request.query_params.get("how")
        if how == "raise":
            raise RuntimeError("a bug after the write")
        if how == "answer":
            return Response({"error": "answered"}, status=409)
        if how == "ok":
            return Response({"ok": True}, status=201)
        raise ValidationError({"name": ["Refused after the write."]})


def admin_write_then_fail(request: HttpRequest) -> HttpResponse:
    _write(request.membership)  # type: ignore[attr-defined]
    if request.GET.get("how") == "ok":
        return HttpResponse("written")
    return HttpResponseBadRequest("refused after the write")


urlpatterns = [
    path("api/v1/test-write-then-fail/", WriteThenFail.as_view()),
    path("admin-test/write-then-fail/", admin_write_then_fail),
    *project_urlpatterns,
]
