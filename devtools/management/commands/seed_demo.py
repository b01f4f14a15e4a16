"""``manage.py seed_demo``: the demo tenant with an org tree, about 20 members and 18
months of CRM history (``devtools.datagen``): a few hundred customers, ~1,500 deals moving
through the stages, wins and losses with reasons, payments, visits, activities with some
overdue follow-ups, a few leads and four product lines, one of them new.

Idempotent: running it again finds what exists and adds only what is missing; the
history is written once, when the tenant has no opportunities yet.
Then the demo's target plans (``devtools.demo_targets``).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand
from django.utils import timezone

from crm.models import Opportunity
from devtools import datagen
from devtools.demo_incentives import seed_demo_incentives
from devtools.demo_targets import seed_demo_plans
from tenancy.models import Membership, OrgUnit, Role
from tenancy.scope import tenant_scope
from tenancy.services import (
    membership_create,
    org_unit_create,
    org_unit_set_managers,
    tenant_create,
)

DEMO_PASSWORD = "demo"
HISTORY = datagen.Volumes(
    customers=300, opportunities=1_500, activities=6_000, visits=1_200, leads=40, months=18
)
HISTORY_SEED = 2024

# (name, parent name); the root is the company itself.
UNITS = [
    ("华东大区 East China", None),
    ("华南大区 South China", None),
    ("上海一组 Shanghai Team 1", "华东大区 East China"),
    ("杭州组 Hangzhou Team", "华东大区 East China"),
    ("广州组 Guangzhou Team", "华南大区 South China"),
    ("深圳组 Shenzhen Team", "华南大区 South China"),
]

# (username, first name, last name, role, unit name or None for the root, manages, start)
PEOPLE: list[tuple[str, str, str, str, str | None, bool, date]] = [
    (
        "demo-manager",
        "Wei",
        "Zhang 张伟",
        Role.MANAGER,
        "华东大区 East China",
        True,
        date(2021, 3, 1),
    ),
    ("li.na", "Na", "Li 李娜", Role.MANAGER, "华南大区 South China", True, date(2020, 7, 1)),
    (
        "wang.fang",
        "Fang",
        "Wang 王芳",
        Role.MANAGER,
        "上海一组 Shanghai Team 1",
        True,
        date(2021, 1, 4),
    ),
    ("chen.jie", "Jie", "Chen 陈杰", Role.MANAGER, "杭州组 Hangzhou Team", True, date(2022, 2, 14)),
    ("liu.yang", "Yang", "Liu 刘洋", Role.MANAGER, "广州组 Guangzhou Team", True, date(2021, 9, 1)),
    ("zhao.min", "Min", "Zhao 赵敏", Role.MANAGER, "深圳组 Shenzhen Team", True, date(2023, 4, 3)),
    ("demo-rep", "Lei", "Sun 孙磊", Role.REP, "上海一组 Shanghai Team 1", False, date(2023, 5, 8)),
    (
        "zhou.jing",
        "Jing",
        "Zhou 周静",
        Role.REP,
        "上海一组 Shanghai Team 1",
        False,
        date(2022, 8, 1),
    ),
    ("wu.hao", "Hao", "Wu 吴昊", Role.REP, "上海一组 Shanghai Team 1", False, date(2024, 1, 2)),
    ("xu.li", "Li", "Xu 徐丽", Role.REP, "杭州组 Hangzhou Team", False, date(2021, 11, 15)),
    ("ma.chao", "Chao", "Ma 马超", Role.REP, "杭州组 Hangzhou Team", False, date(2023, 3, 20)),
    ("hu.xin", "Xin", "Hu 胡欣", Role.REP, "杭州组 Hangzhou Team", False, date(2026, 9, 1)),
    ("guo.qiang", "Qiang", "Guo 郭强", Role.REP, "广州组 Guangzhou Team", False, date(2020, 5, 6)),
    ("he.yu", "Yu", "He 何雨", Role.REP, "广州组 Guangzhou Team", False, date(2022, 6, 13)),
    ("lin.tao", "Tao", "Lin 林涛", Role.REP, "广州组 Guangzhou Team", False, date(2024, 7, 1)),
    ("luo.ping", "Ping", "Luo 罗平", Role.REP, "深圳组 Shenzhen Team", False, date(2021, 4, 19)),
    ("song.jia", "Jia", "Song 宋佳", Role.REP, "深圳组 Shenzhen Team", False, date(2023, 10, 9)),
    ("tang.kai", "Kai", "Tang 唐凯", Role.REP, "深圳组 Shenzhen Team", False, date(2025, 2, 17)),
    (
        "emma.wright",
        "Emma",
        "Wright",
        Role.REP,
        "上海一组 Shanghai Team 1",
        False,
        date(2022, 3, 7),
    ),
]


class Command(BaseCommand):
    help = "Create or complete the demo tenant (slug 'demo'). Safe to run again."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--as-of",
            type=date.fromisoformat,
            default=None,
            help="Seed as if today were this date (YYYY-MM-DD): history up to it, plans on it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = tenant_create(
            name="示例科技 Demo Tech",
            slug="demo",
            admin_username="demo-admin",
            admin_email="demo-admin@example.com",
            admin_password=DEMO_PASSWORD,
        )
        tenant = result.tenant
        created_units = created_people = 0
        with tenant_scope(tenant):
            units = {unit.name: unit for unit in OrgUnit.objects.all()}
            for name, parent_name in UNITS:
                if name not in units:
                    parent = units[parent_name] if parent_name else result.root
                    units[name] = org_unit_create(tenant=tenant, name=name, parent=parent)
                    created_units += 1
            existing = set(Membership.objects.values_list("user__username", flat=True))
            for username, first, last, role, unit_name, manages, start in PEOPLE:
                if username in existing:
                    continue
                unit = units[unit_name] if unit_name else result.root
                member = membership_create(
                    tenant=tenant,
                    username=username,
                    email=f"{username}@example.com",
                    first_name=first,
                    last_name=last,
                    password=DEMO_PASSWORD,
                    role=role,
                    org_unit=unit,
                    start_date=start,
                    is_staff=True,
                )
                if manages:
                    org_unit_set_managers(unit=unit, managers=[*unit.managers.all(), member])
                created_people += 1
            total_members = Membership.objects.count()
            deals = Opportunity.all_objects.count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo tenant '{tenant.slug}': {created_units} units and {created_people} members "
                f"added ({total_members} members in all)."
            )
        )
        if deals:
            self.stdout.write(f"History already there ({deals:,} opportunities): nothing added.")
        else:
            now = (
                datetime.combine(options["as_of"], time(18), ZoneInfo(tenant.time_zone))
                if options.get("as_of")
                else timezone.now()
            )
            reps = datagen.existing_reps(tenant, as_of=now)
            counts = datagen.generate_history(tenant, reps, HISTORY, seed=HISTORY_SEED, as_of=now)
            self.stdout.write(
                f"History of {HISTORY.months} months added: {counts.customers:,} customers, "
                f"{counts.opportunities:,} opportunities ({counts.won:,} won, {counts.lost:,} "
                f"lost), {counts.payments:,} payments, {counts.visits:,} visits, "
                f"{counts.activities:,} activities, {counts.leads:,} leads."
            )
        # The apps' demo data on top of the history (devtools may use every app).
        seed_demo_plans(tenant=tenant, stdout=self.stdout, as_of=options.get("as_of"))
        seed_demo_incentives(tenant=tenant, stdout=self.stdout, as_of=options.get("as_of"))
        self.stdout.write(
            "Logins (password 'demo'): demo-admin (admin), demo-manager (manager, East China), "
            "demo-rep (rep, Shanghai Team 1)."
        )
