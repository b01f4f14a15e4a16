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
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

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
    try:
        sheet = _XlsxSheet(content)
        rows = sheet.rows()
        first = next(rows, None)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, ElementTree.ParseError) as error:
        raise Invalid({"file": NOT_A_TABLE()}) from error
    if first is None or first[0] != 1 or not any(cell not in (None, "") for cell in first[1]):
        raise Invalid({"file": _("The file has no header row.")})
    header = ["" if cell is None else str(cell).strip() for cell in first[1]]

    def data() -> Iterator[tuple[int, list[Any]]]:
        try:
            for number, cells in rows:
                if any(cell not in (None, "") for cell in cells):
                    yield number, cells
        except (ElementTree.ParseError, ValueError, KeyError, IndexError) as error:
            raise Invalid({"file": NOT_A_TABLE()}) from error

    return ParsedFile("xlsx", "", header, data())


class _XlsxSheet:
    """The first sheet of a workbook, its rows read as a stream of XML events.

    openpyxl's read-only reader spends most of a 100,000-row import building a cell
    object per cell; this reads the same values (shared and inline strings, numbers,
    booleans, dates by their number format, through openpyxl's own date helpers) with
    the standard library's C parser. Cells land at their column (``r="C7"``); missing
    cells are ``None``; a row is numbered as in the sheet."""

    def __init__(self, content: bytes) -> None:
        from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
        from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900

        self.archive = zipfile.ZipFile(io.BytesIO(content))
        workbook = ElementTree.fromstring(self.archive.read("xl/workbook.xml"))
        self.ns = workbook.tag[: workbook.tag.index("}") + 1] if workbook.tag[0] == "{" else ""
        properties = workbook.find(f"{self.ns}workbookPr")
        date1904 = properties is not None and properties.get("date1904") in ("1", "true")
        self.epoch = CALENDAR_MAC_1904 if date1904 else CALENDAR_WINDOWS_1900
        sheet = workbook.find(f"{self.ns}sheets/{self.ns}sheet")
        if sheet is None:
            raise KeyError("no sheet")
        relation = next(v for k, v in sheet.attrib.items() if k.endswith("}id"))
        relations = ElementTree.fromstring(self.archive.read("xl/_rels/workbook.xml.rels"))
        target = next(r.get("Target", "") for r in relations if r.get("Id") == relation)
        self.path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        self.strings = self._shared_strings()
        # Per style index: None (not a date), "date" or "timedelta".
        self.styles: list[str | None] = []
        if "xl/styles.xml" in self.archive.namelist():
            styles = ElementTree.fromstring(self.archive.read("xl/styles.xml"))
            formats: dict[int, str] = dict(BUILTIN_FORMATS)
            for fmt in styles.iter(f"{self.ns}numFmt"):
                formats[int(fmt.get("numFmtId", "0"))] = fmt.get("formatCode", "")
            xfs = styles.find(f"{self.ns}cellXfs")
            for xf in [] if xfs is None else xfs:
                code = formats.get(int(xf.get("numFmtId", "0")))
                if code is None or not is_date_format(code):
                    self.styles.append(None)
                else:
                    self.styles.append("timedelta" if is_timedelta_format(code) else "date")

    def _text(self, element: Any) -> str:
        """A string item's text: its ``t``, or its rich-text runs' (phonetic runs left out)."""
        ns = self.ns
        direct = element.find(f"{ns}t")
        if direct is not None:
            return direct.text or ""
        return "".join(t.text or "" for run in element.iter(f"{ns}r") for t in run.iter(f"{ns}t"))

    def _shared_strings(self) -> list[str]:
        name = next(
            (n for n in self.archive.namelist() if n.lower() == "xl/sharedstrings.xml"), None
        )
        if name is None:
            return []
        strings: list[str] = []
        item = f"{self.ns}si"
        with self.archive.open(name) as stream:
            for _event, element in ElementTree.iterparse(stream):
                if element.tag == item:
                    strings.append(self._text(element))
                    element.clear()
        return strings

    def _number(self, text: str, style: str | None) -> Any:
        from openpyxl.utils.datetime import from_excel

        value: Any = float(text) if ("." in text or "E" in text or "e" in text) else int(text)
        if style is not None:
            return from_excel(value, self.epoch, timedelta=style == "timedelta")
        return value

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        ns = self.ns
        row_tag, cell_tag, value_tag, inline_tag = f"{ns}row", f"{ns}c", f"{ns}v", f"{ns}is"
        strings, styles = self.strings, self.styles
        columns: dict[str, int] = {}
        cells: list[Any] = []
        number = 0
        with self.archive.open(self.path) as stream:
            for _event, element in ElementTree.iterparse(stream):
                tag = element.tag
                if tag == cell_tag:
                    ref = element.get("r")
                    if ref is None:
                        index = len(cells)
                    else:
                        letters = ref.rstrip("0123456789")
                        index = columns.get(letters, -1)
                        if index < 0:
                            index = 0
                            for letter in letters.upper():
                                index = index * 26 + ord(letter) - 64
                            index -= 1
                            columns[letters] = index
                    kind = element.get("t", "n")
                    value: Any = None
                    if kind == "inlineStr":
                        inline = element.find(inline_tag)
                        value = None if inline is None else self._text(inline)
                    else:
                        found = element.find(value_tag)
                        text = None if found is None else found.text
                        if text is not None:
                            if kind == "s":
                                value = strings[int(text)]
                            elif kind == "n":
                                style = element.get("s")
                                value = self._number(
                                    text,
                                    styles[int(style)]
                                    if style and int(style) < len(styles)
                                    else None,
                                )
                            elif kind == "b":
                                value = text == "1"
                            elif kind == "d":
                                value = datetime.fromisoformat(text)
                            else:  # str (a formula's text), e (an error such as #N/A)
                                value = text
                    if index >= len(cells):
                        cells.extend([None] * (index - len(cells) + 1))
                    cells[index] = value
                    element.clear()
                elif tag == row_tag:
                    ref = element.get("r")
                    number = int(ref) if ref else number + 1
                    yield number, cells
                    cells = []
                    element.clear()
        self.archive.close()
