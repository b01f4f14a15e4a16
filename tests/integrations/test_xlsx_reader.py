"""The XLSX reader reads what openpyxl reads (values, dates by number format, gaps), as a
stream, and refuses what is no workbook."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, time
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont

from integrations.exports import xlsx_stream
from integrations.imports.reader import read_file
from tenancy.errors import Invalid


def _openpyxl_rows(content: bytes) -> list[tuple[int, list[Any]]]:
    sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).worksheets[0]
    rows = []
    for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
        values = list(cells)
        while values and values[-1] is None:
            values.pop()
        if number == 1:  # the header: texts
            values = ["" if value is None else str(value).strip() for value in values]
        if any(value not in (None, "") for value in values):
            rows.append((number, values))
    return rows


def _our_rows(content: bytes) -> list[tuple[int, list[Any]]]:
    parsed = read_file(content)
    rows = [(1, parsed.header)]
    for number, cells in parsed.rows:
        values = list(cells)
        while values and values[-1] is None:
            values.pop()
        rows.append((number, values))
    return rows


def _saved(workbook: Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("date1904", [False, True])
def test_values_dates_and_gaps_are_read_as_openpyxl_reads_them(date1904: bool) -> None:
    workbook = Workbook()
    workbook.epoch = datetime(1904, 1, 1) if date1904 else datetime(1899, 12, 30)
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["外部编号", "name", "amount", "created", "when", "flag", "rate", None, "far"])
    sheet.append(["D-1", "商机 一", 1000.5, date(2025, 3, 1), datetime(2025, 3, 1, 13, 30), True])
    sheet.append([12, "x & <y>", 7, datetime(2025, 1, 1), time(10, 30), False, 0.25])
    sheet.append([])  # an empty row is skipped, the numbering goes on
    sheet.cell(row=5, column=3, value="gap before")
    sheet.cell(row=6, column=1, value=1e20)
    sheet.cell(row=6, column=2, value=-3.5e-5)
    sheet.cell(row=6, column=4, value=date(1900, 1, 15))
    sheet.cell(
        row=7, column=2, value=CellRichText(["rich ", TextBlock(InlineFont(b=True), "text")])
    )
    sheet.cell(row=8, column=1, value="=1+1")  # a formula never computed: no value
    sheet.cell(row=8, column=2, value="after")
    content = _saved(workbook)
    ours = _our_rows(content)
    assert ours == _openpyxl_rows(content)
    assert [number for number, _cells in ours] == [1, 2, 3, 5, 6, 7, 8]
    assert ours[1][1][3] == datetime(2025, 3, 1)
    assert ours[5][1][1] == "rich text"


def test_the_exports_inline_strings_are_read_back() -> None:
    content = b"".join(xlsx_stream(["a", "b"], [["中文", None], [None, "2.50"]]))
    assert _our_rows(content) == [(1, ["a", "b"]), (2, ["中文"]), (3, [None, "2.50"])]


def test_a_zip_that_is_no_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(Invalid):
        read_file(buffer.getvalue())
    broken = buffer.getvalue()[:40]
    with pytest.raises(Invalid):
        read_file(broken)


def test_a_sheet_without_a_first_row_has_no_header() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.cell(row=3, column=1, value="late")
    with pytest.raises(Invalid) as error:
        read_file(_saved(workbook))
    assert "header" in str(error.value)
