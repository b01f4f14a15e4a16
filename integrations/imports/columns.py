"""One column definition per kind drives both the export and the import (SPEC 11).

A column has a key (the machine name, always accepted as a header), a label (the header
the export writes, in the reader's language) and how a cell is read. On input a header
may be the key, the English label or the Chinese label, whatever the case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import TextChoices
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import LeadStatus, Level, PaymentStatus
from tenancy.models import Role

LANGUAGES = ("en", "zh-hans")


class CellError(ValueError):
    """A cell that cannot be read; the message says what is expected."""


@dataclass(frozen=True)
class Column:
    key: str
    label: str | Promise
    required: bool = False
    # text, int, decimal, date, choice, member, customer, opportunity, stage, product_line
    parse: str = "text"
    max_length: int = 0
    places: int = 2
    choices: type[TextChoices] | None = None
    # The ORM path the export reads (values_list); a callable turns the raw value to text.
    path: str = ""
    show: Callable[[Any], Any] | None = field(default=None, compare=False)
    # Other headers accepted on input (common Chinese spreadsheet headings).
    aliases: tuple[str, ...] = ()

    @property
    def export_path(self) -> str:
        return self.path or self.key

    @property
    def is_reference(self) -> bool:
        return self.parse in {
            "member",
            "customer",
            "opportunity",
            "stage",
            "product_line",
            "org_unit",
        }


def text_of(cell: Any) -> str:
    """A cell as text: an integral number without ``.0``, a date in ISO form."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "1" if cell else "0"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime):
        return cell.date().isoformat() if cell.time() == datetime.min.time() else cell.isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell).strip()


def parse_cell(column: Column, cell: Any) -> Any:
    """The cell's value (None when empty); raises ``CellError`` with a readable message."""
    text = text_of(cell)
    if text == "":
        return None
    if column.parse == "text":
        if column.max_length and len(text) > column.max_length:
            raise CellError(
                _("At most %(count)d characters (this has %(length)d).")
                % {"count": column.max_length, "length": len(text)}
            )
        return text
    if column.parse == "int":
        try:
            return int(text)
        except ValueError:
            raise CellError(_("Give a whole number.")) from None
    if column.parse == "decimal":
        try:
            value = Decimal(str(cell)) if isinstance(cell, (int, float)) else Decimal(text)
        except InvalidOperation:
            raise CellError(_("Give a number such as 1234.50.")) from None
        if not value.is_finite():
            raise CellError(_("Give a number such as 1234.50."))
        quantum = Decimal(1).scaleb(-column.places)
        if value != value.quantize(quantum):
            raise CellError(_("At most %(places)d decimal places.") % {"places": column.places})
        return value.quantize(quantum)
    if column.parse == "date":
        if isinstance(cell, datetime):
            return cell.date()
        if isinstance(cell, date):
            return cell
        try:
            return date.fromisoformat(text.replace("/", "-")[:10])
        except ValueError:
            raise CellError(_("Use YYYY-MM-DD.")) from None
    if column.parse == "choice" and column.choices is not None:
        folded = text.casefold()
        for value, label in column.choices.choices:  # type: ignore[assignment]
            if folded == str(value).casefold() or folded in _both_languages(label):
                return value
        raise CellError(
            _("Choose one of: %(choices)s.")
            % {"choices": ", ".join(str(value) for value in column.choices.values)}
        )
    return text  # references are resolved by the kind, from their text


def _both_languages(label: Any) -> set[str]:
    found = set()
    for language in LANGUAGES:
        with translation.override(language):
            found.add(str(label).casefold())
    return found


def header_map(columns: list[Column]) -> dict[str, Column]:
    """Every accepted header (key, English and Chinese labels; case-folded) → column."""
    accepted: dict[str, Column] = {}
    for column in columns:
        accepted[column.key.casefold()] = column
        for text in [*_both_languages(column.label), *column.aliases]:
            accepted.setdefault(text.casefold(), column)
    return accepted


def local_date(value: datetime | None, zone: Any) -> date | None:
    return None if value is None else value.astimezone(zone).date()


L = gettext_lazy

EXTERNAL_ID = Column(
    "external_id", L("external id"), max_length=100, aliases=("外部编号", "外部ID", "外部id")
)
ID = Column("id", L("id"), parse="int", aliases=("编号",))
CREATED = Column("created_at", L("created on"), parse="date", aliases=("创建日期",))

CUSTOMER_COLUMNS = [
    EXTERNAL_ID,
    ID,
    Column("name", L("name"), required=True, max_length=200),
    Column("industry", L("industry"), max_length=100),
    Column("level", L("level"), parse="choice", choices=Level),
    Column("region", L("region"), max_length=100),
    Column("source", L("source"), max_length=100),
    Column("owner", L("owner"), parse="member", path="owner__user__username"),
    Column("address", L("address"), max_length=300),
    Column("latitude", L("latitude"), parse="decimal", places=6),
    Column("longitude", L("longitude"), parse="decimal", places=6),
    CREATED,
]

CONTACT_COLUMNS = [
    EXTERNAL_ID,
    ID,
    Column("customer", L("customer"), required=True, parse="customer", path="customer_ref"),
    Column("name", L("name"), required=True, max_length=120),
    Column("title", L("title"), max_length=120),
    Column("phone", L("phone"), max_length=40),
    Column("email", L("email"), max_length=254),
]

LEAD_COLUMNS = [
    EXTERNAL_ID,
    ID,
    Column("name", L("name"), required=True, max_length=200),
    Column("company", L("company"), max_length=200),
    Column("phone", L("phone"), max_length=40),
    Column("email", L("email"), max_length=254),
    Column("source", L("source"), max_length=100),
    Column("status", L("status"), parse="choice", choices=LeadStatus),
    Column("owner", L("owner"), required=True, parse="member", path="owner__user__username"),
    CREATED,
]

OPPORTUNITY_COLUMNS = [
    EXTERNAL_ID,
    ID,
    Column("name", L("name"), required=True, max_length=200),
    Column("customer", L("customer"), required=True, parse="customer", path="customer_ref"),
    Column("owner", L("owner"), required=True, parse="member", path="owner__user__username"),
    Column("stage", L("stage"), required=True, parse="stage", path="stage__name"),
    Column("amount", L("amount"), parse="decimal"),
    Column("product_line", L("product line"), parse="product_line", path="product_line__name"),
    Column("expected_close_date", L("expected close date"), parse="date"),
    Column("lost_reason", L("lost reason"), max_length=200),
    CREATED,
    Column("closed_date", L("closed date"), parse="date"),
]

PAYMENT_COLUMNS = [
    EXTERNAL_ID,
    ID,
    Column(
        "opportunity", L("opportunity"), required=True, parse="opportunity", path="opportunity_ref"
    ),
    Column("amount", L("amount"), required=True, parse="decimal"),
    Column("planned_date", L("planned date"), parse="date"),
    Column("received_date", L("received date"), parse="date"),
    Column("status", L("status"), parse="choice", choices=PaymentStatus),
    Column("note", L("note"), max_length=300),
]

# Members are matched by username (they have no external id); an import never changes a
# person's account (username, e-mail, name), only their membership (SPEC 2, 11).
MEMBER_COLUMNS = [
    ID,
    Column(
        "username",
        L("username"),
        required=True,
        max_length=150,
        path="user__username",
        aliases=("用户名",),
    ),
    Column("email", L("email"), max_length=254, path="user__email", aliases=("邮箱",)),
    Column("first_name", L("first name"), max_length=150, path="user__first_name"),
    Column("last_name", L("last name"), max_length=150, path="user__last_name"),
    Column("role", L("role"), parse="choice", choices=Role),
    Column("org_unit", L("org unit"), parse="org_unit", path="org_unit__name"),
    Column("start_date", L("start date"), parse="date"),
]

# A draft plan's manual values (the ``manual`` org split, SPEC 4): one annual value per
# child, keyed by assignee: ``unit:ID`` or ``member:ID``, a member's username or e-mail,
# or a unit's name.
PLAN_VALUE_COLUMNS = [
    Column("plan", L("plan"), required=True, parse="int", aliases=("计划",)),
    Column("assignee", L("assignee"), required=True, max_length=200, aliases=("对象",)),
    Column("amount", L("amount"), required=True, parse="decimal", aliases=("金额",)),
]
