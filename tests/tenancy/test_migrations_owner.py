"""Every migration runs as a database owner that is not a superuser (the README's
production set-up), on a server where the application role already exists.

Each test makes its own database and owner (``tests/tenancy/scratch_db.py``) and runs
``manage.py`` in a subprocess, as a deployment does.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from psycopg import sql

from tenancy.db import app_role, ensure_app_role, owner_role
from tests.tenancy.scratch_db import ScratchDatabase, _connect, scratch_database


@pytest.fixture
def scratch() -> Iterator[ScratchDatabase]:
    with scratch_database() as database:
        yield database


ROOT = Path(__file__).resolve().parents[2]


def _is_member(scratch: ScratchDatabase) -> bool:
    with scratch.connect() as conn:
        row = conn.execute(
            "SELECT pg_has_role(current_user, %s, 'MEMBER')", [app_role()]
        ).fetchone()
    return bool(row and row[0])


def test_migrate_starts_when_the_app_role_exists_but_is_not_granted_to_the_owner(
    scratch: ScratchDatabase,
) -> None:
    assert not _is_member(scratch)

    scratch.manage("migrate", "--noinput")

    assert _is_member(scratch)
    # The app, logged in as the owner, now works as the application role under RLS.
    seen = scratch.scoped_counts([])
    assert (seen["user"], seen["superuser"]) == (app_role(), False)
    with scratch.connect() as conn:
        applied = conn.execute(
            "SELECT count(*) FROM django_migrations WHERE app = 'tenancy'"
        ).fetchone()
    on_disk = [path for path in (ROOT / "tenancy" / "migrations").glob("0*.py") if path.is_file()]
    assert applied == (len(on_disk),)  # every tenancy migration ran


def test_an_owner_that_may_not_grant_the_role_is_told_what_to_run() -> None:
    with scratch_database(createrole=False) as scratch:
        result = scratch.manage("migrate", "--noinput", check=False)
    assert result.returncode != 0
    assert f"As a superuser, run: GRANT {app_role()} TO {scratch.owner};" in result.stderr
    assert "Traceback" not in result.stderr


# --- targets/0002_series under a non-superuser owner ------------------------------------

# Two tenants at the targets/0001 state: one period row per year, quarter and month of
# each assignee. Tenant A's fiscal year starts in April, tenant B's in January.
MEMBER_MONTHS = [Decimal(100 * m) for m in range(1, 13)]  # Q 600, 1500, 2400, 3300; year 7800
UNIT_MONTHS = [Decimal("1000.00")] * 12  # Q 3000, year 12000
B_UNIT_MONTHS = [Decimal("10.25")] * 12  # Q 30.75, year 123.00


def _periods(
    fiscal_start_month: int, months: list[Decimal]
) -> list[tuple[str, int, str, str, Decimal]]:
    """(kind, index, start, end, value) of the year, the quarters and the months of FY2026."""
    from datetime import date

    def month_start(offset: int) -> date:
        year, month = divmod(fiscal_start_month - 1 + offset, 12)
        return date(2026 + year, month + 1, 1)

    def span(first: int, length: int) -> tuple[str, str]:
        from datetime import timedelta

        return str(month_start(first)), str(month_start(first + length) - timedelta(days=1))

    rows = [("year", 0, *span(0, 12), sum(months, Decimal(0)))]
    rows += [
        ("quarter", q, *span((q - 1) * 3, 3), sum(months[(q - 1) * 3 : q * 3], Decimal(0)))
        for q in range(1, 5)
    ]
    rows += [("month", m, *span(m - 1, 1), months[m - 1]) for m in range(1, 13)]
    return rows


def _insert(conn: object, table: str, **values: object) -> int:
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    row = conn.execute(  # type: ignore[attr-defined]
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id", list(values.values())
    ).fetchone()
    return int(row[0])


def _seed_targets_0001(scratch: ScratchDatabase) -> dict[str, object]:
    """The old period rows, an adjustment of tenant A's member's Q2, snapshots of tenant
    A's unit's month 3 and tenant B's unit's year; returns their ids."""
    ids: dict[str, object] = {}
    with scratch.connect() as conn, conn.transaction():
        now = "2026-05-01T00:00:00Z"
        user = _insert(
            conn,
            "auth_user",
            password="!",
            last_login=now,
            is_superuser=False,
            username="rep",
            first_name="",
            last_name="",
            email="",
            is_staff=False,
            is_active=True,
            date_joined=now,
        )
        for key, slug, fiscal_start in (("a", "acme", 4), ("b", "globex", 1)):
            tenant = _insert(
                conn,
                "crm_tenant",
                name=slug,
                slug=slug,
                time_zone="Asia/Shanghai",
                currency="CNY",
                fiscal_year_start_month=fiscal_start,
                visit_radius_m=500,
                pace_threshold=Decimal("0.9"),
                is_active=True,
                created_at=now,
            )
            unit = _insert(
                conn,
                "crm_orgunit",
                name="East",
                path="",
                depth=0,
                created_at=now,
                updated_at=now,
                parent_id=None,
                tenant_id=tenant,
            )
            plan = _insert(
                conn,
                "targets_targetplan",
                fiscal_year=2026,
                metric="won_amount",
                name="FY",
                annual_total=Decimal(0),
                status="published",
                settings="{}",
                unassigned=Decimal(0),
                created_at=now,
                updated_at=now,
                created_by_id=None,
                tenant_id=tenant,
            )
            ids[f"tenant_{key}"], ids[f"fiscal_{key}"] = tenant, fiscal_start
            assignees: list[tuple[str, dict[str, int | None], list[Decimal]]] = [
                (
                    "unit",
                    {"org_unit_id": unit, "member_id": None},
                    UNIT_MONTHS if key == "a" else B_UNIT_MONTHS,
                )
            ]
            if key == "a":
                member = _insert(
                    conn,
                    "crm_membership",
                    role="rep",
                    title="",
                    start_date="2026-01-01",
                    end_date=None,
                    is_active=True,
                    token_version=0,
                    created_at=now,
                    updated_at=now,
                    user_id=user,
                    org_unit_id=unit,
                    tenant_id=tenant,
                )
                assignees.append(
                    ("member", {"org_unit_id": None, "member_id": member}, MEMBER_MONTHS)
                )
            for name, assignee, months in assignees:
                for kind, index, start, end, value in _periods(fiscal_start, months):
                    target = _insert(
                        conn,
                        "targets_target",
                        period_kind=kind,
                        period_index=index,
                        period_start=start,
                        period_end=end,
                        value=value,
                        version=3,
                        updated_at=now,
                        product_line_id=None,
                        tenant_id=tenant,
                        plan_id=plan,
                        **assignee,
                    )
                    ids[f"{key}_{name}_{kind}_{index}"] = target
                ids[f"{key}_{name}"] = assignee
        ids["adjustment"] = _insert(
            conn,
            "targets_targetadjustment",
            old_value=Decimal(1500),
            new_value=Decimal(1800),
            target_version=3,
            reason="bigger",
            trigger="manual",
            status="pending",
            effective_from="2026-07-01",
            created_at=now,
            decided_at=None,
            approved_by_id=None,
            requested_by_id=None,
            target_id=ids["a_member_quarter_2"],
            tenant_id=ids["tenant_a"],
        )
        for key, snapshot_target in (
            ("snapshot_a", ids["a_unit_month_3"]),
            ("snapshot_b", ids["b_unit_year_0"]),
        ):
            ids[key] = _insert(
                conn,
                "targets_achievementsnapshot",
                as_of="2026-05-31",
                actual=Decimal(10),
                attainment=None,
                expected_to_date=None,
                pace=None,
                status="on_track",
                gap=None,
                required_per_day=None,
                projected=None,
                projected_commit=None,
                computed_at=now,
                tenant_id=ids["tenant_a" if key == "snapshot_a" else "tenant_b"],
                target_id=snapshot_target,
            )
    return ids


PLAIN_DJANGO_MIGRATE = """
from django.core.management import call_command
from django.core.management.commands.migrate import Command
from tenancy.db import owner_role
with owner_role():
    call_command(Command(), "targets", "0002_series", verbosity=0)
"""


@pytest.mark.parametrize("runner", ["manage.py migrate", "Django's own migrate command"])
def test_series_migration_keeps_every_period_target_under_a_non_superuser_owner(
    scratch: ScratchDatabase, runner: str
) -> None:
    scratch.manage("migrate", "targets", "0001_initial", "--noinput")
    ids = _seed_targets_0001(scratch)

    if runner == "manage.py migrate":
        scratch.manage("migrate", "targets", "0002_series", "--noinput")
    else:
        # Not our command, so not its connection-wide bypass: the migration's own.
        scratch.python(PLAIN_DJANGO_MIGRATE)

    with scratch.connect() as conn:
        series = {
            (tenant, unit, member): (sid, months, version)
            for sid, tenant, unit, member, months, version in conn.execute(
                "SELECT id, tenant_id, org_unit_id, member_id, months, version"
                " FROM targets_targetseries"
            )
        }
        assert len(series) == 3

        def series_of(key: str, name: str) -> tuple[int, list[Decimal], int]:
            assignee = ids[f"{key}_{name}"]
            assert isinstance(assignee, dict)
            return series[(ids[f"tenant_{key}"], assignee["org_unit_id"], assignee["member_id"])]

        expected_months = {
            ("a", "unit"): UNIT_MONTHS,
            ("a", "member"): MEMBER_MONTHS,
            ("b", "unit"): B_UNIT_MONTHS,
        }
        for (key, name), months in expected_months.items():
            sid, stored, version = series_of(key, name)
            assert (stored, version) == (months, 3)
            periods = conn.execute(
                "SELECT id, period_kind, period_index, period_start::text, period_end::text, value"
                " FROM targets_target WHERE series_id = %s ORDER BY id",
                [sid],
            ).fetchall()
            code = {"year": 0, "quarter": 0, "month": 4}
            expected = sorted(
                (sid * 32 + code[kind] + index, kind, index, start, end, value)
                for kind, index, start, end, value in _periods(int(ids[f"fiscal_{key}"]), months)  # type: ignore[call-overload]
            )
            assert periods == expected  # 17 periods, each on its dates with its value
        assert conn.execute("SELECT count(*) FROM targets_target").fetchone() == (51,)

        member_series = series_of("a", "member")[0]
        unit_series_a = series_of("a", "unit")[0]
        unit_series_b = series_of("b", "unit")[0]
        adjustment = conn.execute(
            "SELECT series_id, target_id FROM targets_targetadjustment WHERE id = %s",
            [ids["adjustment"]],
        ).fetchone()
        assert adjustment == (member_series, member_series * 32 + 2)  # its Q2
        snapshots = {
            sid: (series_id, target_id)
            for sid, series_id, target_id in conn.execute(
                "SELECT id, series_id, target_id FROM targets_achievementsnapshot"
            )
        }
        assert snapshots == {
            ids["snapshot_a"]: (unit_series_a, unit_series_a * 32 + 7),  # month 3
            ids["snapshot_b"]: (unit_series_b, unit_series_b * 32 + 0),  # the year
        }


@pytest.mark.django_db
def test_migrate_gives_its_connection_back_as_the_app_role_without_the_bypass() -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_setting('app.rls_bypass', true)")
        assert cursor.fetchone() == (app_role(), "off")


def test_creating_the_app_role_tolerates_another_database_creating_it_at_the_same_time(
    db: None, settings: Any
) -> None:
    """Roles belong to the server: two databases migrated at once (the suite's parallel
    workers, two deployments on one server) may both find the role missing. The second
    CREATE ROLE waits for the first and then fails; the role exists, which is all the
    migration needs."""
    settings.DATABASE_APP_ROLE = role = f"crm_app_race_{secrets.token_hex(4)}"
    other = _connect("postgres")
    other.autocommit = False
    try:
        other.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        # Committed while this test's CREATE ROLE waits on the other's uncommitted row.
        threading.Timer(0.5, other.commit).start()
        with owner_role():  # as a migration runs it
            ensure_app_role(connection)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [role])
            assert cursor.fetchone() == (1,)
    finally:
        other.rollback()
        other.autocommit = True
        other.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        other.close()
