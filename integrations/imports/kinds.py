"""What each kind of import checks and writes (SPEC 3 and 11).

The dry run and the confirmation run the same checks (``check_rows``): each row comes
out new, update, unchanged or error (field and message). The confirmation then writes:

* new rows set-based (``bulk_create``; deals and their stage changes by one
  ``INSERT … SELECT`` each), producing what the create services produce: a deal gets
  its stage-change rows (from nothing into its first stage at its created date and, for
  a closed deal, on into its closed stage at its closed date, with the exit time set), a
  won deal its credit (owner and owner's unit) and closed date, a lost deal its closed
  date and its owner's unit at the loss, a customer its first owner; rows carry the
  tenant, so row-level security checks them;
* updates one by one through the services (``sync_update``, ``opportunity_update``,
  ``opportunity_move``, ``payment_receive``), which lock, version and record history.

A file of new rows only (``Kind.stages_new_rows``: a history load of deals) keeps each
row's checked values from the dry run; the confirmation checks those again against the
records as they are then (``Kind.recheck_staged``) instead of reading the file again.

Rows are matched by ``id`` (which must be one the importer sees) or ``external_id``;
owners by username or e-mail among the members the importer sees; customers and deals
by their external id or id, among the records the importer sees.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.db.models import CharField, Model, Q, QuerySet
from django.db.models.functions import Cast, Coalesce, Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import selectors, services
from crm.events import emit
from crm.models import (
    Contact,
    Customer,
    Lead,
    LeadStatus,
    Opportunity,
    Payment,
    PaymentStatus,
    Pipeline,
    ProductLine,
    Stage,
    StageKind,
)
from integrations.imports import columns as cols
from integrations.imports.columns import CellError, Column
from targets import services as target_services
from targets.models import PlanStatus, TargetPlan
from tenancy import selectors as tenancy_selectors
from tenancy import services as tenancy_services
from tenancy.dates import tenant_today, tenant_zone
from tenancy.errors import Conflict, Forbidden
from tenancy.models import Membership, OrgUnit, Role, Tenant

BATCH = 2000


@dataclass
class Context:
    member: Membership
    tenant: Tenant
    today: date = field(init=False)
    now: datetime = field(init=False)
    zone: Any = field(init=False)
    backdate: bool = field(init=False)

    def __post_init__(self) -> None:
        self.now = timezone.now()
        self.today = tenant_today(self.tenant, self.now)
        self.zone = tenant_zone(self.tenant)
        self.backdate = self.member.role == Role.ADMIN

    def moment(self, day: date | None) -> datetime:
        """A past local day as a moment (noon, so every zone keeps the day); today: now."""
        if day is None or day >= self.today:
            return self.now
        return datetime.combine(day, time(12), tzinfo=self.zone)


@dataclass
class Row:
    number: int
    values: dict[str, Any]
    errors: list[dict[str, str]] = field(default_factory=list)
    outcome: str = ""
    target: Any = None  # the matched record's current values (a dict), for updates
    target_id: int | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    # The reference cells as the file gave them (before ``resolve`` turned them to ids).
    refs: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        ext = (
            self.values.get("external_id") or self.values.get("username") or self.values.get("_key")
        )
        if ext:
            return str(ext)
        return "" if self.values.get("id") is None else str(self.values["id"])

    def fail(self, column: str, message: str) -> None:
        self.errors.append({"field": column, "message": str(message)})


def _validation_messages(error: ValidationError) -> list[tuple[str, str]]:
    if hasattr(error, "error_dict"):
        return [(f, str(m)) for f, ms in error.message_dict.items() for m in ms]
    return [("", str(m)) for m in error.messages]


def execute_bound(sql: str, params: dict[str, Any]) -> None:
    """Run ``sql`` on the request's connection (its transaction, its tenant settings) with
    its parameters bound by the server: a large parameter travels as it is instead of
    being quoted into the statement's text, as Django's client-side binding does (the
    quoting of 100,000-element arrays cost more than the insert)."""
    import psycopg

    connection.ensure_connection()
    # Django's error classes (IntegrityError …), as its own cursors raise them.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)


def _json(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def check_date(row: Row, ctx: Context, column: str, value: date | None) -> None:
    """A created, closed or received date: never in the future; in the past only from
    an admin (SPEC 3, ``crm.services.check_record_date``)."""
    try:
        services.check_record_date(value, column, today=ctx.today, backdate=ctx.backdate)
    except ValidationError as error:
        for _field, message in _validation_messages(error):
            row.fail(column, message)


class Kind:
    name = ""
    model: type[Model] = Model
    columns: list[Column] = []
    # Columns compared for an update, with the path of the current value.
    compare: dict[str, str] = {}
    # Values of the matched record the checks read besides the compared ones.
    context: dict[str, str] = {}
    # The column that names a record besides its id (members: their username).
    match_column = "external_id"
    # Only admins import this kind (members).
    admins_only = False
    # The kind matches its rows itself (``check_all``): plan values are no records.
    checks_rows_itself = False
    # A file of new rows only is confirmed from the dry run's kept values
    # (``stage_values``, ``recheck_staged``) instead of reading the file again.
    stages_new_rows = False

    def require(self, member: Membership) -> None:
        """Who may import this kind, beyond admins and managers (``Forbidden``)."""
        if self.admins_only and member.role != Role.ADMIN:
            raise Forbidden(_("Only an admin may import this kind of record."))

    def check_all(self, ctx: Context, rows: list[Row], present: set[str]) -> None:
        raise NotImplementedError

    def hidden_message(self) -> str:
        return _("A record you cannot see has this external id.")

    def visible(self, member: Membership) -> QuerySet[Any]:
        raise NotImplementedError

    # --- references ------------------------------------------------------------------

    def load_references(self, ctx: Context, rows: list[Row], present: set[str]) -> None:
        """Members visible to the importer by username and e-mail (lower case)."""
        self.members: dict[str, tuple[int, int | None]] = {}
        if not any(c.parse == "member" for c in self.columns if c.key in present):
            return
        for pk, username, email, unit in tenancy_selectors.visible_memberships(
            ctx.member
        ).values_list("pk", "user__username", "user__email", "org_unit_id"):
            self.members[username.casefold()] = (pk, unit)
            if email:
                self.members.setdefault(email.casefold(), (pk, unit))

    def resolve_member(self, row: Row, column: str) -> None:
        text = row.values.get(column)
        if text is None:
            return
        found = self.members.get(str(text).casefold())
        if found is None:
            row.fail(column, _("No member you can see has this username or e-mail."))
            return
        row.values[column] = found[0]

    # --- current values -----------------------------------------------------------------

    def current(self, ctx: Context, ids: set[int], exts: set[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        paths = {"pk": "pk", "external_id": "external_id", **self.compare, **self.context}
        id_list, ext_list = list(ids), list(exts)
        for start in range(0, max(len(id_list), len(ext_list)), BATCH):
            query = Q(pk__in=id_list[start : start + BATCH]) | Q(
                external_id__in=ext_list[start : start + BATCH]
            )
            for values in self.visible(ctx.member).filter(query).values(*paths.values()):
                found.append({key: values[path] for key, path in paths.items()})
        for values in found:
            self.adapt_current(ctx, values)
        return found

    def adapt_current(self, ctx: Context, values: dict[str, Any]) -> None:
        if "created_at" in values:
            values["created_at"] = cols.local_date(values["created_at"], ctx.zone)

    def hidden_external_ids(self, ctx: Context, exts: set[str]) -> set[str]:
        """External ids already used by rows the importer cannot see (or deleted rows)."""
        manager = getattr(self.model, "all_objects", self.model._default_manager)
        ext_list = list(exts)
        used: set[str] = set()
        for start in range(0, len(ext_list), BATCH):
            used.update(
                manager.filter(external_id__in=ext_list[start : start + BATCH]).values_list(
                    "external_id", flat=True
                )
            )
        return used

    # --- per row -----------------------------------------------------------------------

    def check_new(self, ctx: Context, row: Row) -> None:
        """Checks of a row that creates a record."""

    def check_update(self, ctx: Context, row: Row) -> None:
        """Checks of a row that changes a record (``row.changes`` is set)."""
        if "created_at" in row.changes:
            row.fail("created_at", _("The creation time cannot change."))

    def resolve(self, ctx: Context, row: Row) -> None:
        """Turn reference texts into ids (errors on the row)."""
        for column in self.columns:
            if column.parse == "member" and column.key in row.values:
                self.resolve_member(row, column.key)

    # --- kept values (a file of new rows confirmed without reading it again) -------------

    def stage_values(self, row: Row) -> dict[str, Any]:
        """A checked new row as JSON: its values (references as ids) and the reference
        cells as the file gave them; ``unstage`` turns it back into the row."""
        return {
            "values": {key: _json(value) for key, value in row.values.items()},
            "refs": row.refs,
        }

    def unstage(self, number: int, staged: dict[str, Any]) -> Row:
        values = staged["values"]
        for column in self.columns:
            value = values.get(column.key)
            if value is not None and column.parse == "date":
                values[column.key] = date.fromisoformat(value)
            elif value is not None and column.parse == "decimal":
                values[column.key] = Decimal(value)
        return Row(number=number, values=values, outcome="new", refs=staged["refs"])

    def recheck_staged(self, ctx: Context, rows: list[Row]) -> None:
        """The dry run's new rows checked again against the records as they are now, as
        the dry run checked them but without reading the file: every reference cell is
        resolved again among what the importer sees now and must name the same record;
        an external id used since is an error (the row is no longer new); the row's own
        checks (dates against today, amounts, stages) run again. Errors go on the rows."""
        if not rows:
            return
        present = set(rows[0].values)
        references = list(rows[0].refs)
        # Each distinct reference cell is resolved once (a probe row holding just it).
        probes = {
            (key, text): Row(number=0, values={key: text})
            for row in rows
            for key, text in row.refs.items()
            if text is not None
        }
        self.load_references(ctx, list(probes.values()), present)
        for probe in probes.values():
            self.resolve(ctx, probe)
        match = self.match_column
        used = self.used_external_ids(
            ctx, {row.values[match] for row in rows if row.values.get(match)}
        )
        for row in rows:
            for key in references:
                text = row.refs[key]
                if text is None:
                    continue
                probe = probes[(key, text)]
                if probe.errors:
                    row.errors.extend(probe.errors)
                elif probe.values[key] != row.values.get(key):
                    row.fail(key, _("This now names another record than at the dry run."))
            if row.values.get(match) in used:
                row.fail(match, _("A record with this external id was made since the dry run."))
            if not row.errors:
                self.check_new(ctx, row)
            if row.errors:
                row.outcome = "error"

    def used_external_ids(self, ctx: Context, exts: set[str]) -> set[str]:
        """Which of ``exts`` any record of the tenant has now (deleted ones included)."""
        if not exts:
            return set()
        table = connection.ops.quote_name(self.model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT external_id FROM {table} WHERE tenant_id = %s AND external_id = ANY(%s)",
                [ctx.tenant.pk, list(exts)],
            )
            return {ext for (ext,) in cursor.fetchall()}

    # --- writing -------------------------------------------------------------------------

    def create(self, ctx: Context, rows: list[Row]) -> list[Any]:
        raise NotImplementedError

    def created_instances(self, created: list[Any]) -> Iterable[Any]:
        """The records ``create`` made, for their events."""
        return created

    def update(self, ctx: Context, row: Row) -> None:
        instance = self.model._default_manager.get(pk=row.target_id)
        changes = {self.field_of(key): value for key, value in row.changes.items()}
        services.sync_update(instance, expected_version=None, **changes)  # type: ignore[type-var]

    def field_of(self, key: str) -> str:
        column = next((c for c in self.columns if c.key == key), None)
        if column is not None and column.is_reference:
            return f"{key}_id"
        return key

    # --- export ----------------------------------------------------------------------------

    def export_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset

    def export_rows(self, queryset: QuerySet[Any], zone: Any) -> Iterator[list[Any]]:
        paths = [column.export_path for column in self.columns]
        rows = self.export_queryset(queryset).order_by("pk").values_list(*paths)
        dates = [i for i, column in enumerate(self.columns) if column.key == "created_at"]
        for values in rows.iterator(chunk_size=BATCH):
            out = list(values)
            for i in dates:
                out[i] = cols.local_date(out[i], zone)
            yield out


def _ref(path: str) -> Any:
    """A reference exported as the record's external id, else its id."""
    return Coalesce(f"{path}__external_id", Cast(f"{path}_id", CharField()))


class CustomerKind(Kind):
    name = "customers"
    model = Customer
    columns = cols.CUSTOMER_COLUMNS
    compare = {
        "name": "name",
        "industry": "industry",
        "level": "level",
        "region": "region",
        "source": "source",
        "owner": "owner_id",
        "address": "address",
        "latitude": "latitude",
        "longitude": "longitude",
        "created_at": "created_at",
    }

    def visible(self, member: Membership) -> QuerySet[Any]:
        return selectors.visible_customers(member)

    def check_new(self, ctx: Context, row: Row) -> None:
        check_date(row, ctx, "created_at", row.values.get("created_at"))

    def create(self, ctx: Context, rows: list[Row]) -> list[Any]:
        made = [
            Customer(
                tenant_id=ctx.tenant.pk,
                external_id=row.values.get("external_id"),
                name=row.values["name"],
                industry=row.values.get("industry") or "",
                level=row.values.get("level") or "C",
                region=row.values.get("region") or "",
                source=row.values.get("source") or "",
                owner_id=row.values.get("owner"),
                first_owner_id=row.values.get("owner"),
                address=row.values.get("address") or "",
                latitude=row.values.get("latitude"),
                longitude=row.values.get("longitude"),
                created_at=ctx.moment(row.values.get("created_at")),
            )
            for row in rows
        ]
        return Customer.objects.bulk_create(made, batch_size=BATCH)


class CustomerReferences:
    """Customers named by external id or id, among those the importer sees."""

    def load_customers(self, ctx: Context, rows: list[Row], column: str) -> None:
        texts = {str(row.values[column]) for row in rows if row.values.get(column)}
        ids = {int(text) for text in texts if text.isdigit()}
        self.customers: dict[str, int] = {}
        visible = selectors.visible_customers(ctx.member)
        text_list, id_list = list(texts), list(ids)
        for start in range(0, max(len(text_list), len(id_list)), BATCH):
            query = Q(external_id__in=text_list[start : start + BATCH]) | Q(
                pk__in=id_list[start : start + BATCH]
            )
            for pk, ext in visible.filter(query).values_list("pk", "external_id"):
                self.customers[str(pk)] = pk
                if ext:
                    self.customers[f"ext:{ext}"] = pk

    def resolve_customer(self, row: Row, column: str) -> None:
        text = row.values.get(column)
        if text is None:
            return
        pk = self.customers.get(f"ext:{text}") or self.customers.get(str(text))
        if pk is None:
            row.fail(column, _("No customer you can see has this external id or id."))
            return
        row.values[column] = pk


class ContactKind(CustomerReferences, Kind):
    name = "contacts"
    model = Contact
    columns = cols.CONTACT_COLUMNS
    compare = {
        "customer": "customer_id",
        "name": "name",
        "title": "title",
        "phone": "phone",
        "email": "email",
    }

    def visible(self, member: Membership) -> QuerySet[Any]:
        return selectors.visible_contacts(member)

    def load_references(self, ctx: Context, rows: list[Row], present: set[str]) -> None:
        super().load_references(ctx, rows, present)
        self.load_customers(ctx, rows, "customer")

    def resolve(self, ctx: Context, row: Row) -> None:
        self.resolve_customer(row, "customer")

    def create(self, ctx: Context, rows: list[Row]) -> list[Any]:
        made = [
            Contact(
                tenant_id=ctx.tenant.pk,
                external_id=row.values.get("external_id"),
                customer_id=row.values["customer"],
                name=row.values["name"],
                title=row.values.get("title") or "",
                phone=row.values.get("phone") or "",
                email=row.values.get("email") or "",
            )
            for row in rows
        ]
        return Contact.objects.bulk_create(made, batch_size=BATCH)

    def export_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.annotate(customer_ref=_ref("customer"))


class LeadKind(Kind):
    name = "leads"
    model = Lead
    columns = cols.LEAD_COLUMNS
    compare = {
        "name": "name",
        "company": "company",
        "phone": "phone",
        "email": "email",
        "source": "source",
        "status": "status",
        "owner": "owner_id",
        "created_at": "created_at",
    }

    def visible(self, member: Membership) -> QuerySet[Any]:
        return selectors.visible_leads(member)

    def check_new(self, ctx: Context, row: Row) -> None:
        check_date(row, ctx, "created_at", row.values.get("created_at"))

    def create(self, ctx: Context, rows: list[Row]) -> list[Any]:
        made = [
            Lead(
                tenant_id=ctx.tenant.pk,
                external_id=row.values.get("external_id"),
                name=row.values["name"],
                company=row.values.get("company") or "",
                phone=row.values.get("phone") or "",
                email=row.values.get("email") or "",
                source=row.values.get("source") or "",
                status=row.values.get("status") or LeadStatus.NEW,
                owner_id=row.values["owner"],
                created_at=ctx.moment(row.values.get("created_at")),
            )
            for row in rows
        ]
        return Lead.objects.bulk_create(made, batch_size=BATCH)


# A new deal's fields as ``OpportunityKind.create`` sends them (a JSON array per deal,
# in this order), with their SQL types.
DEAL_FIELDS = {
    "id": "bigint",
    "external_id": "text",
    "name": "text",
    "customer_id": "bigint",
    "owner_id": "bigint",
    "pipeline_id": "bigint",
    "stage_id": "bigint",
    "amount": "numeric",
    "product_line_id": "bigint",
    "expected_close_date": "date",
    "lost_reason": "text",
    "closed_date": "date",
    "created_at": "timestamptz",
    "closed_at": "timestamptz",
    "first_stage_id": "bigint",
    "credited_member_id": "bigint",
    "credited_org_unit_id": "bigint",
}
_DEALS = "(SELECT {} FROM jsonb_array_elements(%(deals)s::jsonb) AS d(e)) AS s".format(
    ", ".join(
        f"(e->>{index})::{kind} AS {name}" for index, (name, kind) in enumerate(DEAL_FIELDS.items())
    )
)

# Every column of ``crm_opportunity`` a create writes (the others stay NULL: client id,
# deleted at, probability override, source lead), as ``Opportunity(...)`` would.
INSERT_DEALS = f"""
INSERT INTO crm_opportunity (
    id, tenant_id, external_id, name, customer_id, owner_id, pipeline_id, stage_id,
    amount, product_line_id, expected_close_date, lost_reason, closed_date, created_at,
    updated_at, stage_entered_at, version, forecast_category_override,
    credited_member_id, credited_org_unit_id)
SELECT s.id, %(tenant)s, s.external_id, s.name, s.customer_id, s.owner_id, s.pipeline_id,
    s.stage_id, s.amount, s.product_line_id, s.expected_close_date, s.lost_reason,
    s.closed_date, s.created_at, %(now)s, COALESCE(s.closed_at, s.created_at), 1, '',
    s.credited_member_id, s.credited_org_unit_id
FROM {_DEALS}
"""

# One change from nothing into the deal's stage; or, for a deal closed after its
# creation, into the first open stage (left at the close) and on into the closed stage.
INSERT_STAGE_CHANGES = f"""
WITH s AS MATERIALIZED (SELECT * FROM {_DEALS})
INSERT INTO crm_stagechange (
    tenant_id, opportunity_id, from_stage_id, to_stage_id, changed_at, exited_at,
    changed_by_id, amount)
SELECT %(tenant)s, s.id, NULL, COALESCE(s.first_stage_id, s.stage_id), s.created_at,
    CASE WHEN s.first_stage_id IS NOT NULL THEN s.closed_at END, %(member)s, s.amount
FROM s
UNION ALL
SELECT %(tenant)s, s.id, s.first_stage_id, s.stage_id, s.closed_at, NULL, %(member)s, s.amount
FROM s WHERE s.first_stage_id IS NOT NULL
"""


class OpportunityKind(CustomerReferences, Kind):
    name = "opportunities"
    model = Opportunity
    columns = cols.OPPORTUNITY_COLUMNS
    compare = {
        "name": "name",
        "customer": "customer_id",
        "owner": "owner_id",
        "stage": "stage_id",
        "amount": "amount",
        "product_line": "product_line_id",
        "expected_close_date": "expected_close_date",
        "lost_reason": "lost_reason",
        "created_at": "created_at",
        "closed_date": "closed_date",
    }
    context = {"stage_entered_at": "stage_entered_at"}
    stages_new_rows = True

    def visible(self, member: Membership) -> QuerySet[Any]:
        return selectors.visible_opportunities(member)

    def load_references(self, ctx: Context, rows: list[Row], present: set[str]) -> None:
        super().load_references(ctx, rows, present)
        self.load_customers(ctx, rows, "customer")
        default = Pipeline.objects.filter(is_default=True).values_list("pk", flat=True).first()
        self.stages: dict[str, Stage] = {}
        self.stage_by_id: dict[int, Stage] = {}
        # The default pipeline's names win over another pipeline's stage of the same name.
        for stage in sorted(Stage.objects.all(), key=lambda s: s.pipeline_id == default):
            self.stage_by_id[stage.pk] = stage
            for text in (stage.name, stage.name_zh, str(stage)):
                if text:
                    self.stages[text.casefold()] = stage
        self.first_open: dict[int, Stage] = {}
        for stage in sorted(self.stage_by_id.values(), key=lambda s: s.order, reverse=True):
            if stage.kind == StageKind.OPEN:
                self.first_open[stage.pipeline_id] = stage
        self.product_lines = {
            name.casefold(): pk for pk, name in ProductLine.objects.values_list("pk", "name")
        }
        self.units = {pk: unit for pk, unit in self.members.values()}

    def resolve(self, ctx: Context, row: Row) -> None:
        super().resolve(ctx, row)
        self.resolve_customer(row, "customer")
        text = row.values.get("stage")
        if text is not None:
            stage = self.stages.get(str(text).casefold())
            if stage is None and str(text).isdigit():
                stage = self.stage_by_id.get(int(text))
            if stage is None:
                row.fail("stage", _("No stage has this name."))
            else:
                row.values["stage"] = stage.pk
        text = row.values.get("product_line")
        if text is not None:
            pk = self.product_lines.get(str(text).casefold())
            if pk is None:
                row.fail("product_line", _("No product line has this name."))
            else:
                row.values["product_line"] = pk

    def _check_amounts_and_dates(self, ctx: Context, row: Row, stage: Stage) -> None:
        amount = row.values.get("amount")
        if amount is not None and amount < 0:
            row.fail("amount", _("An amount cannot be negative."))
        closed = row.values.get("closed_date")
        if stage.kind == StageKind.OPEN and closed is not None:
            row.fail("closed_date", _("Only a won or lost deal has a closed date."))
        if stage.kind == StageKind.WON and (amount is None or amount <= 0):
            row.fail("amount", _("A deal is won with a positive amount."))
        if stage.kind == StageKind.LOST and not (row.values.get("lost_reason") or "").strip():
            row.fail("lost_reason", _("Say why the deal was lost."))
        if stage.kind != StageKind.OPEN:
            check_date(row, ctx, "closed_date", closed)
        try:
            services.check_expected_close(row.values.get("expected_close_date"), today=ctx.today)
        except ValidationError as error:
            for column, message in _validation_messages(error):
                row.fail(column, message)

    def check_new(self, ctx: Context, row: Row) -> None:
        created = row.values.get("created_at")
        check_date(row, ctx, "created_at", created)
        stage = self.stage_by_id.get(row.values.get("stage") or 0)
        if stage is None:
            return
        self._check_amounts_and_dates(ctx, row, stage)
        closed = row.values.get("closed_date")
        if created is not None and closed is not None and closed < created:
            row.fail("closed_date", _("A deal closes on or after the day it was created."))

    def check_update(self, ctx: Context, row: Row) -> None:
        super().check_update(ctx, row)
        current = self.stage_by_id[row.target["stage"]]
        stage = self.stage_by_id.get(row.values.get("stage") or current.pk, current)
        if current.kind != StageKind.OPEN:
            frozen = [f for f in ("amount", "product_line", "closed_date") if f in row.changes]
            for column in frozen:
                row.fail(
                    column,
                    _(
                        "This deal is closed: its amount, product line and closed date change "
                        "only through a correction by a manager above its owner or an admin."
                    ),
                )
            if "stage" in row.changes:
                row.fail("stage", _("This deal is closed; reopen it in the app to move it."))
            return
        self._check_amounts_and_dates(ctx, row, stage)
        closed = row.values.get("closed_date")
        if stage.kind != StageKind.OPEN and closed is not None:
            # Last year's win or loss keeps its day; its stage change is dated then, so
            # the history stays in order: not before the deal was made or reached its stage.
            entered = cols.local_date(row.target["stage_entered_at"], ctx.zone)
            if closed < row.target["created_at"]:
                row.fail("closed_date", _("A deal closes on or after the day it was created."))
            elif entered is not None and closed < entered:
                row.fail(
                    "closed_date",
                    _("The deal entered its current stage on %(day)s: it closes on or after.")
                    % {"day": entered.isoformat()},
                )

    def create(self, ctx: Context, rows: list[Row]) -> list[Any]:
        """New deals and their stage changes, set-based (one ``INSERT … SELECT`` from
        arrays each): what ``opportunity_create`` and ``opportunity_move`` would write.

        A deal is created at its created date (noon, local) in its pipeline's first open
        stage; a closed one moves on into its won or lost stage at its closed date (the
        first change's exit time set), with the closed date, the credit of a win (owner
        and owner's unit) and the owner's unit of a loss (SPEC 10). Returns the ids."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('crm_opportunity', 'id')) "
                "FROM generate_series(1, %s)",
                [len(rows)],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
        deals: list[list[Any]] = []
        for pk, row in zip(ids, rows, strict=True):
            values = row.values
            stage = self.stage_by_id[values["stage"]]
            created = ctx.moment(values.get("created_at"))
            closed_date = closed_at = first = None
            if stage.kind != StageKind.OPEN:
                closed_date = values.get("closed_date") or ctx.today
                closed_at = ctx.moment(closed_date)
                created = min(created, closed_at)
                opening = self.first_open.get(stage.pipeline_id)
                if opening is not None and closed_at != created:
                    # Created in the first open stage, closed later: the cycle reads both.
                    first = opening.pk
            won = stage.kind == StageKind.WON
            # In the order of DEAL_FIELDS.
            deals.append(
                [
                    pk,
                    values.get("external_id"),
                    values["name"],
                    values["customer"],
                    values["owner"],
                    stage.pipeline_id,
                    stage.pk,
                    _json(values.get("amount")),
                    values.get("product_line"),
                    _json(values.get("expected_close_date")),
                    (values.get("lost_reason") or "").strip()
                    if stage.kind == StageKind.LOST
                    else "",
                    _json(closed_date),
                    created.isoformat(),
                    None if closed_at is None else closed_at.isoformat(),
                    first,
                    values["owner"] if won else None,
                    # A loss records the owner's unit at the loss too (SPEC 10's review).
                    self.units.get(values["owner"]) if closed_date else None,
                ]
            )
        params = {
            "tenant": ctx.tenant.pk,
            "member": ctx.member.pk,
            "now": timezone.now(),
            # One JSON document for all the rows: the server reads it in one go, where
            # Python lists are adapted element by element.
            "deals": json.dumps(deals, ensure_ascii=False),
        }
        self._insert_deals(params)
        self._insert_stage_changes(params)
        return ids

    def _insert_deals(self, params: dict[str, Any]) -> None:
        execute_bound(INSERT_DEALS, params)

    def _insert_stage_changes(self, params: dict[str, Any]) -> None:
        execute_bound(INSERT_STAGE_CHANGES, params)

    def created_instances(self, created: list[Any]) -> Iterable[Any]:
        for start in range(0, len(created), BATCH):
            yield from Opportunity.objects.filter(pk__in=created[start : start + BATCH]).order_by(
                "pk"
            )

    def update(self, ctx: Context, row: Row) -> None:
        changes = dict(row.changes)
        stage_id = changes.pop("stage", None)
        closed_date = changes.pop("closed_date", None)
        lost_reason = changes.pop("lost_reason", None) if stage_id else None
        deal = Opportunity.objects.get(pk=row.target["pk"])
        if changes:
            deal = services.opportunity_update(
                member=ctx.member,
                opportunity=deal,
                expected_version=None,
                **{self.field_of(key): value for key, value in changes.items()},
            )
        if stage_id is not None:
            stage = self.stage_by_id[stage_id]
            closing = stage.kind != StageKind.OPEN
            at = None
            if closing and closed_date is not None and closed_date < ctx.today:
                # The stage change on the closed day (noon there), never before the deal
                # entered its stage (checked by the dry run, and by the service).
                at = max(ctx.moment(closed_date), deal.stage_entered_at)
            services.opportunity_move(
                member=ctx.member,
                opportunity=deal,
                stage=stage,
                lost_reason=lost_reason or row.values.get("lost_reason") or "",
                closed_date=closed_date if closing else None,
                at=at,
            )

    def export_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.annotate(customer_ref=_ref("customer"))


class PaymentKind(Kind):
    name = "payments"
    model = Payment
    columns = cols.PAYMENT_COLUMNS
    compare = {
        "opportunity": "opportunity_id",
        "amount": "amount",
        "planned_date": "planned_date",
        "received_date": "received_date",
        "status": "status",
        "note": "note",
    }

    def visible(self, member: Membership) -> QuerySet[Any]:
        return selectors.visible_payments(member)

    def load_references(self, ctx: Context, rows: list[Row], present: set[str]) -> None:
        super().load_references(ctx, rows, present)
        texts = {str(row.values["opportunity"]) for row in rows if row.values.get("opportunity")}
        ids = {int(text) for text in texts if text.isdigit()}
        self.deals: dict[str, tuple[int, str]] = {}
        visible = selectors.visible_opportunities(ctx.member)
        text_list, id_list = list(texts), list(ids)
        for start in range(0, max(len(text_list), len(id_list)), BATCH):
            query = Q(external_id__in=text_list[start : start + BATCH]) | Q(
                pk__in=id_list[start : start + BATCH]
            )
            for pk, ext, kind in visible.filter(query).values_list(
                "pk", "external_id", "stage__kind"
            ):
                self.deals[str(pk)] = (pk, kind)
                if ext:
                    self.deals[f"ext:{ext}"] = (pk, kind)

    def resolve(self, ctx: Context, row: Row) -> None:
        text = row.values.get("opportunity")
        if text is None:
            return
        found = self.deals.get(f"ext:{text}") or self.deals.get(str(text))
        if found is None:
            row.fail("opportunity", _("No deal you can see has this external id or id."))
            return
        row.values["opportunity"] = found[0]
        row.values["_deal_kind"] = found[1]

    def check_new(self, ctx: Context, row: Row) -> None:
        values = row.values
        amount = values.get("amount")
        if amount is not None and amount <= 0:
            row.fail("amount", _("A payment is positive; reverse it to undo it."))
        if values.get("_deal_kind") not in (None, StageKind.WON):
            row.fail("opportunity", _("Payments are recorded on won deals."))
        check_date(row, ctx, "received_date", values.get("received_date"))
        if values.get("planned_date") is None and values.get("received_date") is None:
            row.fail("planned_date", _("Give a planned date, a received date or both."))
        status = values.get("status")
        expected = PaymentStatus.RECEIVED if values.get("received_date") else PaymentStatus.PLANNED
        if status is not None and status != expected:
            row.fail(
                "status",
                _("A new payment is received when it has a received date, else planned."),
            )

    def check_update(self, ctx: Context, row: Row) -> None:
        receiving = (
            row.target["status"] == PaymentStatus.PLANNED
            and set(row.changes) <= {"received_date", "status"}
            and row.changes.get("received_date") is not None
            and row.changes.get("status", PaymentStatus.RECEIVED) == PaymentStatus.RECEIVED
        )
        if not receiving:
            for column in row.changes:
                row.fail(
                    column,
                    _(
                        "A payment changes only by being received (a received date on a "
                        "planned payment); reverse it in the app to undo it."
                    ),
                )
            return
        check_date(row, ctx, "received_date", row.changes["received_date"])

    def create(self, ctx: Context, rows: list[Row]) -> list[Any]:
        made = [
            Payment(
                tenant_id=ctx.tenant.pk,
                external_id=row.values.get("external_id"),
                opportunity_id=row.values["opportunity"],
                amount=row.values["amount"],
                planned_date=row.values.get("planned_date"),
                received_date=row.values.get("received_date"),
                status=PaymentStatus.RECEIVED
                if row.values.get("received_date")
                else PaymentStatus.PLANNED,
                recorded_by=ctx.member,
                note=row.values.get("note") or "",
            )
            for row in rows
        ]
        return Payment.objects.bulk_create(made, batch_size=BATCH)

    def update(self, ctx: Context, row: Row) -> None:
        services.payment_receive(
            member=ctx.member,
            payment=Payment.objects.get(pk=row.target["pk"]),
            received_date=row.changes["received_date"],
        )

    def export_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.annotate(opportunity_ref=_ref("opportunity"))


class MemberKind(Kind):
    """Members (admins only): matched by username; a new person gets an account without a
    usable password through ``tenancy.services.membership_create`` (as the API's member
    creation without a password); a person who has an account already (another tenant's
    user, or an e-mail in use) is a row error: they join by accepting an invitation."""

    name = "members"
    model = Membership
    columns = cols.MEMBER_COLUMNS
    match_column = "username"
    admins_only = True
    compare = {
        "username": "user__username",
        "email": "user__email",
        "first_name": "user__first_name",
        "last_name": "user__last_name",
        "role": "role",
        "org_unit": "org_unit_id",
        "start_date": "start_date",
    }

    def visible(self, member: Membership) -> QuerySet[Any]:
        return tenancy_selectors.visible_memberships(member)

    def hidden_message(self) -> str:
        return _(
            "This person already has an account (perhaps with another organisation): "
            "send them an invitation instead; they join when they accept it."
        )

    def current(self, ctx: Context, ids: set[int], exts: set[str]) -> list[dict[str, Any]]:
        paths = {"pk": "pk", **self.compare}
        query = Q(pk__in=list(ids)) | Q(user__username__in=list(exts))
        rows = self.visible(ctx.member).filter(query).values(*paths.values())
        return [{key: values[path] for key, path in paths.items()} for values in rows]

    def hidden_external_ids(self, ctx: Context, exts: set[str]) -> set[str]:
        """Usernames of accounts that are not (visible) members of this tenant."""
        users = get_user_model().objects.filter(username__in=list(exts))
        return set(users.values_list("username", flat=True))

    def load_references(self, ctx: Context, rows: list[Row], present: set[str]) -> None:
        super().load_references(ctx, rows, present)
        self.units: dict[str, int] = {}
        for pk, name in tenancy_selectors.visible_org_units(ctx.member).values_list("pk", "name"):
            self.units[str(pk)] = pk
            self.units.setdefault(f"name:{name.casefold()}", pk)
        emails = {str(row.values["email"]).casefold() for row in rows if row.values.get("email")}
        self.emails: dict[str, str] = {}
        for username, email in (
            get_user_model()
            .objects.annotate(folded=Lower("email"))
            .filter(folded__in=list(emails))
            .values_list("username", "email")
        ):
            self.emails[email.casefold()] = username

    def resolve(self, ctx: Context, row: Row) -> None:
        text = row.values.get("org_unit")
        if text is not None:
            pk = self.units.get(f"name:{str(text).casefold()}") or self.units.get(str(text))
            if pk is None:
                row.fail("org_unit", _("No org unit you can see has this name or id."))
            else:
                row.values["org_unit"] = pk
        email = row.values.get("email")
        if email is not None:
            try:
                validate_email(email)
            except ValidationError:
                row.fail("email", _("Enter a valid email address."))
            owner = self.emails.get(str(email).casefold())
            if owner is not None and owner != row.values.get("username"):
                row.fail(
                    "email",
                    _(
                        "Another account (%(username)s) has this e-mail: use its username, "
                        "or invite that person."
                    )
                    % {"username": owner},
                )

    def check_new(self, ctx: Context, row: Row) -> None:
        try:
            get_user_model()(username=row.values["username"]).clean_fields(
                exclude=["password", "email", "first_name", "last_name", "date_joined"]
            )
        except ValidationError as error:
            for column, message in _validation_messages(error):
                row.fail(column or "username", message)

    def check_update(self, ctx: Context, row: Row) -> None:
        # An empty role or start date keeps the member's (a membership always has both).
        for column in ("role", "start_date"):
            if column in row.changes and row.changes[column] is None:
                del row.changes[column]
        for column in ("username", "email", "first_name", "last_name"):
            if column in row.changes:
                row.fail(
                    column,
                    _(
                        "An import does not change a person's account (username, e-mail, "
                        "name): they change it themselves."
                    ),
                )
        if row.target_id == ctx.member.pk and "role" in row.changes:
            row.fail("role", _("You cannot change your own role."))

    def create(self, ctx: Context, rows: list[Row]) -> list[Any]:
        units = {unit.pk: unit for unit in OrgUnit.objects.filter(pk__in=self.units.values())}
        made: list[Membership] = []
        for row in rows:
            values = row.values
            try:
                made.append(
                    tenancy_services.membership_create(
                        tenant=ctx.tenant,
                        username=values["username"],
                        email=values.get("email") or "",
                        first_name=values.get("first_name") or "",
                        last_name=values.get("last_name") or "",
                        password=None,
                        role=values.get("role") or Role.REP,
                        org_unit=units.get(values.get("org_unit") or 0),
                        start_date=values.get("start_date"),
                    )
                )
            except ValidationError as error:
                # Checked above; a race (the account made meanwhile) undoes the whole import.
                raise Conflict(
                    _("Row %(row)d: %(message)s")
                    % {"row": row.number, "message": "; ".join(error.messages)}
                ) from error
        return made

    def update(self, ctx: Context, row: Row) -> None:
        changes: dict[str, Any] = {}
        for key, value in row.changes.items():
            if key == "org_unit":
                changes["org_unit"] = OrgUnit.objects.filter(pk=value).first()
            else:
                changes[key] = value
        tenancy_services.membership_update(
            membership=Membership.objects.get(pk=row.target["pk"]), **changes
        )

    def export_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        # The members list prefetches managed units; the export reads values only.
        return queryset.prefetch_related(None)


class PlanValueKind(Kind):
    """A draft plan's manual values (the ``manual`` org split, SPEC 4), recorded in the
    plan's decomposition settings (``settings["manual"]``, keyed ``unit:ID`` or
    ``member:ID``) where ``POST /plans/{id}/decompose/`` reads them when its request
    gives no ``manual``. Planners only (``targets.services.require_planner``)."""

    name = "plan_values"
    columns = cols.PLAN_VALUE_COLUMNS
    checks_rows_itself = True

    def require(self, member: Membership) -> None:
        target_services.require_planner(member)

    def load_references(self, ctx: Context, rows: list[Row], present: set[str]) -> None:
        ids = {row.values["plan"] for row in rows if row.values.get("plan") is not None}
        self.plans = {plan.pk: plan for plan in TargetPlan.objects.filter(pk__in=list(ids))}
        self.assignees: dict[str, str] = {}
        for pk, name in OrgUnit.objects.values_list("pk", "name"):
            self.assignees[f"unit:{pk}"] = f"unit:{pk}"
            self.assignees.setdefault(name.casefold(), f"unit:{pk}")
        for pk, username, email in Membership.objects.values_list(
            "pk", "user__username", "user__email"
        ):
            self.assignees[f"member:{pk}"] = f"member:{pk}"
            self.assignees[username.casefold()] = f"member:{pk}"
            if email:
                self.assignees.setdefault(email.casefold(), f"member:{pk}")

    def check_all(self, ctx: Context, rows: list[Row], present: set[str]) -> None:
        seen: dict[tuple[int, str], int] = {}
        for row in rows:
            values = row.values
            plan = self.plans.get(values.get("plan") or 0)
            if values.get("plan") is not None and plan is None:
                row.fail("plan", _("No plan has this id."))
            elif plan is not None and plan.status != PlanStatus.DRAFT:
                row.fail("plan", _("Only a draft plan takes manual values."))
            text = values.get("assignee")
            key = None if text is None else self.assignees.get(str(text).casefold())
            if text is not None and key is None:
                row.fail(
                    "assignee",
                    _("No member (username or e-mail) or org unit (name) is named so."),
                )
            amount = values.get("amount")
            if amount is not None and amount < 0:
                row.fail("amount", _("An amount cannot be negative."))
            if plan is not None and key is not None:
                values["_key"] = f"{plan.pk}:{key}"
                if (plan.pk, key) in seen:
                    row.fail(
                        "assignee",
                        _("This plan and assignee are also on row %(row)d.")
                        % {"row": seen[(plan.pk, key)]},
                    )
                seen.setdefault((plan.pk, key), row.number)
                values["_assignee"] = key
            if row.errors:
                row.outcome = "error"
                continue
            assert plan is not None and key is not None
            current = (plan.settings.get("manual") or {}).get(key)
            if current is None:
                row.outcome = "new"
            elif Decimal(str(current)) == amount:
                row.outcome = "unchanged"
            else:
                row.outcome = "update"

    def _store(self, rows: list[Row]) -> None:
        by_plan: dict[int, dict[str, str]] = {}
        for row in rows:
            by_plan.setdefault(row.values["plan"], {})[row.values["_assignee"]] = str(
                row.values["amount"]
            )
        for pk, values in by_plan.items():
            plan = TargetPlan.objects.select_for_update().get(pk=pk)
            if plan.status != PlanStatus.DRAFT:
                raise Conflict(_("Only a draft plan takes manual values."))
            plan.settings = {
                **plan.settings,
                "manual": {**(plan.settings.get("manual") or {}), **values},
            }
            plan.save(update_fields=["settings", "updated_at"])

    def create(self, ctx: Context, rows: list[Row]) -> list[Any]:
        self._store(rows)
        return []  # no records: nothing to announce

    def update(self, ctx: Context, row: Row) -> None:
        self._store([row])


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        CustomerKind(),
        ContactKind(),
        LeadKind(),
        OpportunityKind(),
        PaymentKind(),
        MemberKind(),
        PlanValueKind(),
    )
}


def get_kind(name: str) -> Kind:
    # A fresh instance per import: the references it loads are the import's own.
    return type(KINDS[name])()


@dataclass
class Checked:
    rows: list[Row]
    counts: dict[str, int]
    file_format: str
    encoding: str


def check_rows(
    kind: Kind,
    ctx: Context,
    header: list[str],
    cells: Iterable[tuple[int, list[Any]]],
    progress: Callable[[int], None] | None = None,
) -> list[Row]:
    """Every row's outcome (new, update, unchanged, error with field and message).

    Raises ``ValidationError`` for the file as a whole: a required column missing,
    a column given twice, no known column."""
    accepted = cols.header_map(kind.columns)
    positions: dict[str, int] = {}
    for index, text in enumerate(header):
        column = accepted.get(text.strip().casefold())
        if column is None:
            continue
        if column.key in positions:
            raise ValidationError(
                {"file": _("The column “%(column)s” is given twice.") % {"column": text}}
            )
        positions[column.key] = index
    missing = [str(c.label) for c in kind.columns if c.required and c.key not in positions]
    if missing:
        raise ValidationError(
            {
                "file": _("The file lacks the required column(s): %(columns)s.")
                % {"columns": ", ".join(missing)}
            }
        )
    present = set(positions)
    by_key = {column.key: column for column in kind.columns}
    references = [c.key for c in kind.columns if c.is_reference and c.key in present]
    rows: list[Row] = []
    for number, line in cells:
        row = Row(number=number, values={})
        for key, index in positions.items():
            column = by_key[key]
            cell = line[index] if index < len(line) else None
            try:
                value = cols.parse_cell(column, cell)
            except CellError as error:
                row.fail(key, str(error))
                continue
            if value is None and column.required:
                row.fail(key, _("This field is required."))
            row.values[key] = value
        rows.append(row)
        if progress is not None and len(rows) % 5000 == 0:
            progress(len(rows))

    kind.load_references(ctx, rows, present)
    if kind.checks_rows_itself:
        kind.check_all(ctx, rows, present)
        return rows
    ids = {row.values["id"] for row in rows if row.values.get("id") is not None}
    match = kind.match_column
    exts = {row.values[match] for row in rows if row.values.get(match)}
    existing = kind.current(ctx, ids, exts)
    by_id = {values["pk"]: values for values in existing}
    by_ext = {values[match]: values for values in existing if values[match]}
    hidden = kind.hidden_external_ids(ctx, exts) - set(by_ext)
    seen_ids: dict[int, int] = {}
    seen_exts: dict[str, int] = {}
    for row in rows:
        ext, pk = row.values.get(match), row.values.get("id")
        if ext is not None:
            if ext in seen_exts:
                row.fail(
                    match,
                    _("This value is also on row %(row)d.") % {"row": seen_exts[ext]}
                    if match != "external_id"
                    else _("This external id is also on row %(row)d.") % {"row": seen_exts[ext]},
                )
            seen_exts.setdefault(ext, row.number)
        if pk is not None:
            if pk in seen_ids:
                row.fail("id", _("This id is also on row %(row)d.") % {"row": seen_ids[pk]})
            seen_ids.setdefault(pk, row.number)
        row.refs = {key: row.values.get(key) for key in references}
        kind.resolve(ctx, row)
        target = None
        if pk is not None:
            target = by_id.get(pk)
            if target is None:
                row.fail("id", _("No record you can see has this id."))
            elif ext is not None and by_ext.get(ext, target)["pk"] != target["pk"]:
                row.fail(match, _("Another record has this external id."))
        elif ext is not None:
            target = by_ext.get(ext)
            if target is None and ext in hidden:
                row.fail(match, kind.hidden_message())
        if target is not None and not row.errors:
            row.target, row.target_id = target, target["pk"]
            row.changes = {
                key: row.values[key]
                for key in present
                if key in kind.compare and _differs(row.values[key], target[key])
            }
            if (
                match == "external_id"
                and "external_id" in present
                and ext is not None
                and ext != target["external_id"]
            ):
                row.changes["external_id"] = ext
            if row.changes:
                kind.check_update(ctx, row)
        elif not row.errors:
            kind.check_new(ctx, row)
        if row.errors:
            row.outcome = "error"
        elif target is None:
            row.outcome = "new"
        else:
            row.outcome = "update" if row.changes else "unchanged"
    return rows


def _differs(new: Any, old: Any) -> bool:
    if new in (None, "") and old in (None, ""):
        return False
    if isinstance(new, Decimal) and isinstance(old, Decimal):
        return new != old
    return bool(new != old)


def write_rows(kind: Kind, ctx: Context, rows: list[Row], *, send_events: bool) -> dict[str, int]:
    """Write the checked rows (none may be an error): new ones set-based, updates through
    the services. Runs inside the caller's transaction."""
    new = [row for row in rows if row.outcome == "new"]
    created = kind.create(ctx, new) if new else []
    if send_events:
        for instance in kind.created_instances(created):
            emit("created", source=instance, member=ctx.member)
    updates = [row for row in rows if row.outcome == "update"]
    for row in updates:
        kind.update(ctx, row)
    with connection.cursor() as cursor:
        # The foreign keys are checked at commit: check them now, so a record deleted
        # meanwhile fails the import here (a conflict), not the request's commit.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    counts = {"new": len(new), "update": len(updates), "unchanged": 0, "error": 0}
    counts["unchanged"] = sum(1 for row in rows if row.outcome == "unchanged")
    return counts
