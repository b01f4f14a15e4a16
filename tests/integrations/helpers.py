"""Files for import tests: CSV (UTF-8, BOM, GBK) and XLSX from rows."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient


def csv_bytes(rows: list[list[Any]], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(
    client: APIClient,
    kind: str,
    content: bytes,
    name: str = "file.csv",
    **fields: Any,
) -> Any:
    return client.post(
        "/api/v1/imports/",
        {"kind": kind, "file": SimpleUploadedFile(name, content), **fields},
        format="multipart",
    )


def rows_of(client: APIClient, job_id: int, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    url: str | None = f"/api/v1/imports/{job_id}/rows/"
    query: dict[str, Any] | None = {"page_size": 200, **params}
    while url:
        response = client.get(url, query)
        assert response.status_code == 200, response.content
        found.extend(response.json()["results"])
        url, query = response.json().get("next"), None
    return found


def streamed(response: Any) -> bytes:
    assert response.streaming, "the export is streamed"
    return b"".join(response.streaming_content)


def import_job(tree: Any) -> Any:
    """A checked import of tenant ``tree`` (inside its scope), for probes."""
    from integrations.imports import services

    job = services.import_upload(
        member=tree.members["admin"],
        kind="customers",
        file_name="probe.csv",
        content=csv_bytes([["name", "level"], ["探针 Probe", "A"]]),
    )
    return services.import_check(job=job)
