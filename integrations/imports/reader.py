"""Reading an uploaded file (SPEC 11): CSV in UTF-8 (with or without BOM) or GBK, or XLSX.

The format is told by the content, not the name: an XLSX file is a ZIP archive. A CSV
file is decoded strictly: UTF-8 first, then GBK (GB 18030, its superset); a file that
is neither is refused, and a file asked to be read as UTF-8 that is not UTF-8 is refused
with a message naming the encoding it seems to be in, never read with replacement
characters (mojibake).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from tenancy.errors import Invalid

ENCODINGS = ("auto", "utf-8", "gbk")


def NOT_A_TABLE() -> str:  # noqa: N802 - reads like the message it returns
    return _("The file is neither a CSV file in UTF-8 or GBK nor an XLSX workbook.")


@dataclass
class ParsedFile:
    file_format: str  # csv or xlsx
    encoding: str  # utf-8, utf-8-sig, gbk; empty for xlsx
    header: list[str]
    rows: Iterator[tuple[int, list[Any]]]  # (line number, cells); the header is line 1


def _decode(content: bytes, encoding: str) -> tuple[str, str]:
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    try:
        return content.decode("utf-8", errors="strict"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        if encoding == "utf-8":
            seems = _("GBK") if _is_gbk(content) else _("an unknown encoding")
            raise Invalid(
                {
                    "encoding": _(
                        "The file is not UTF-8 (byte %(position)d; it seems to be %(encoding)s). "
                        "Save it as UTF-8 or upload it with the encoding “gbk”."
                    )
                    % {"position": utf8_error.start, "encoding": seems}
                }
            ) from utf8_error
    try:
        return content.decode("gb18030", errors="strict"), "gbk"
    except UnicodeDecodeError as error:
        raise Invalid({"file": NOT_A_TABLE()}) from error


def _is_gbk(content: bytes) -> bool:
    try:
        content.decode("gb18030", errors="strict")
    except UnicodeDecodeError:
        return False
    return True


def read_file(content: bytes, *, encoding: str = "auto") -> ParsedFile:
    """The header and an iterator of the data rows (empty rows skipped)."""
    if not content:
        raise Invalid({"file": _("The file is empty.")})
    if content.startswith(b"PK\x03\x04"):
        return _read_xlsx(content)
    if b"\x00" in content[:4096]:
        raise Invalid({"file": NOT_A_TABLE()})
    if encoding == "gbk":
        try:
            text, used = content.decode("gb18030", errors="strict"), "gbk"
        except UnicodeDecodeError as error:
            raise Invalid({"encoding": _("The file is not GBK.")}) from error
    else:
        text, used = _decode(content, encoding)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
    except csv.Error as error:
        message = _("The CSV file cannot be read: %(error)s") % {"error": error}
        raise Invalid({"file": message}) from error
    if not header or not any(cell.strip() for cell in header):
        raise Invalid({"file": _("The file has no header row.")})

    def rows() -> Iterator[tuple[int, list[Any]]]:
        try:
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    yield reader.line_num, cells
        except csv.Error as error:
            message = _("The CSV file cannot be read at line %(line)d: %(error)s") % {
                "line": reader.line_num,
                "error": error,
            }
            raise Invalid({"file": message}) from error

    return ParsedFile("csv", used, [cell.strip() for cell in header], rows())


def _read_xlsx(content: bytes) -> ParsedFile:
    from openpyxl import load_workbook  # imported on use: the API starts without it

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise Invalid({"file": NOT_A_TABLE()}) from error
    sheet = workbook.worksheets[0] if workbook.worksheets else None
    if sheet is None:
        raise Invalid({"file": _("The workbook has no sheet.")})
    iterator = sheet.iter_rows(values_only=True)
    header_row = next(iterator, None)
    if not header_row or not any(cell not in (None, "") for cell in header_row):
        raise Invalid({"file": _("The file has no header row.")})
    header = ["" if cell is None else str(cell).strip() for cell in header_row]

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for number, cells in enumerate(iterator, start=2):
            if any(cell not in (None, "") for cell in cells):
                yield number, list(cells)
        workbook.close()

    return ParsedFile("xlsx", "", header, rows())
