"""Believable, internally consistent CRM history for demos and benchmarks (SPEC section 3).

``generate_history`` writes customers (with contacts), leads, opportunities with their
stage changes and payments, visits and activities for a list of reps, spread over the
last ``months`` months before ``as_of``. Everything derives from one
``random.Random(seed)``, so the same seed, reps and ``as_of`` give the same rows.

Consistency rules, the ones a service would enforce:

* every opportunity starts with a stage change from nothing, moves forward in time
  (sometimes skipping a stage) and ends in its current stage; won deals carry a
  positive amount, the owner and the owner's unit as credit and the tenant-local date
  of the win as closed date; lost deals carry a reason and were lost from an open stage;
* payments belong to won deals only: planned, received after the win, a few reversed by
  a negative row pointing at the one it reverses;
* a visit's distance is the haversine distance of its check-in from the customer, and it
  is verified exactly when that distance is within the tenant's radius;
* activities happen while their deal is alive; some follow-ups are overdue.

Rows are produced in chunks and written with PostgreSQL ``COPY``, one tenant scope (one
transaction) per chunk, so memory and transaction size stay bounded whatever the
volume: only a few numbers per customer and per opportunity are kept between phases.
PostgreSQL refuses ``COPY FROM`` into a table with row-level security, so each chunk is
copied into a temporary table first and moved with ``INSERT … SELECT``, which the
tenant policy checks like any insert.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.db.models import Model

from crm.geo import haversine_m
from crm.models import (
    Activity,
    Contact,
    Customer,
    Lead,
    Opportunity,
    Payment,
    ProductLine,
    Stage,
    StageChange,
    Visit,
)
from tenancy.db import owner_role
from tenancy.models import Membership, OrgUnit, OrgUnitManager, Role, Tenant
from tenancy.scope import tenant_scope
from tenancy.services import org_unit_create

DAY = 86_400.0
HOUR = 3_600.0

# --- built-in name lists ------------------------------------------------------------------
# fmt: off

# Regions in order: (Chinese, English, [(city Chinese, city English, latitude, longitude)]).
REGIONS: list[tuple[str, str, list[tuple[str, str, float, float]]]] = [
    ("华东大区", "East China", [
        ("上海", "Shanghai", 31.230416, 121.473701), ("杭州", "Hangzhou", 30.274084, 120.155070),
        ("南京", "Nanjing", 32.060255, 118.796877), ("苏州", "Suzhou", 31.298886, 120.585316),
        ("宁波", "Ningbo", 29.868336, 121.543990), ("合肥", "Hefei", 31.820592, 117.227239)]),
    ("华南大区", "South China", [
        ("广州", "Guangzhou", 23.129110, 113.264385), ("深圳", "Shenzhen", 22.543096, 114.057865),
        ("厦门", "Xiamen", 24.479834, 118.089425), ("福州", "Fuzhou", 26.074508, 119.296494),
        ("东莞", "Dongguan", 23.020536, 113.751765), ("南宁", "Nanning", 22.817002, 108.366543)]),
    ("华北大区", "North China", [
        ("北京", "Beijing", 39.904200, 116.407396), ("天津", "Tianjin", 39.084158, 117.200983),
        ("济南", "Jinan", 36.651216, 117.120095), ("青岛", "Qingdao", 36.067082, 120.382640),
        ("石家庄", "Shijiazhuang", 38.042307, 114.514860),
        ("太原", "Taiyuan", 37.870590, 112.548879)]),
    ("华中大区", "Central China", [
        ("武汉", "Wuhan", 30.592849, 114.305539), ("长沙", "Changsha", 28.228209, 112.938814),
        ("郑州", "Zhengzhou", 34.746600, 113.625368), ("南昌", "Nanchang", 28.682892, 115.858197)]),
    ("西南大区", "Southwest China", [
        ("成都", "Chengdu", 30.572815, 104.066801), ("重庆", "Chongqing", 29.563010, 106.551557),
        ("昆明", "Kunming", 24.880095, 102.832892), ("贵阳", "Guiyang", 26.647661, 106.630153)]),
    ("西北大区", "Northwest China", [
        ("西安", "Xi'an", 34.341575, 108.939840), ("兰州", "Lanzhou", 36.061089, 103.834304),
        ("银川", "Yinchuan", 38.487194, 106.230909), ("乌鲁木齐", "Urumqi", 43.825592, 87.616848)]),
    ("东北大区", "Northeast China", [
        ("沈阳", "Shenyang", 41.805699, 123.431472), ("大连", "Dalian", 38.914003, 121.614682),
        ("哈尔滨", "Harbin", 45.803775, 126.534967), ("长春", "Changchun", 43.817072, 125.323544)]),
    ("海外大区", "Overseas", [
        ("新加坡", "Singapore", 1.352083, 103.819836),
        ("吉隆坡", "Kuala Lumpur", 3.139003, 101.686855),
        ("曼谷", "Bangkok", 13.756331, 100.501765), ("雅加达", "Jakarta", -6.208763, 106.845599)]),
]
SURNAMES = [
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"),
    ("黄", "Huang"), ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"), ("徐", "Xu"), ("孙", "Sun"),
    ("马", "Ma"), ("朱", "Zhu"), ("胡", "Hu"), ("郭", "Guo"), ("何", "He"), ("高", "Gao"),
    ("林", "Lin"), ("罗", "Luo"), ("郑", "Zheng"), ("梁", "Liang"), ("谢", "Xie"), ("宋", "Song"),
]
GIVEN_NAMES = [
    ("伟", "Wei"), ("芳", "Fang"), ("娜", "Na"), ("敏", "Min"), ("静", "Jing"), ("丽", "Li"),
    ("强", "Qiang"), ("磊", "Lei"), ("军", "Jun"), ("洋", "Yang"), ("勇", "Yong"), ("艳", "Yan"),
    ("杰", "Jie"), ("涛", "Tao"), ("明", "Ming"), ("超", "Chao"), ("秀英", "Xiuying"),
    ("霞", "Xia"), ("平", "Ping"), ("刚", "Gang"), ("思远", "Siyuan"), ("佳怡", "Jiayi"),
    ("浩然", "Haoran"), ("雨婷", "Yuting"),
]
ENGLISH_FIRST = ["Emma", "Oliver", "Sophia", "James", "Mia", "Lucas", "Grace", "Daniel",
                 "Chloe", "Ethan", "Hannah", "Ryan"]
ENGLISH_LAST = ["Walker", "Reed", "Hughes", "Bennett", "Foster", "Carter", "Morgan", "Hayes",
                "Turner", "Parker", "Brooks", "Ellis"]
BRANDS = [
    ("华信", "Huaxin"), ("远航", "Yuanhang"), ("恒通", "Hengtong"), ("中科", "Zhongke"),
    ("天成", "Tiancheng"), ("鼎盛", "Dingsheng"), ("新元", "Xinyuan"), ("瑞丰", "Ruifeng"),
    ("宏达", "Hongda"), ("金桥", "Jinqiao"), ("东方", "Dongfang"), ("博远", "Boyuan"),
    ("海纳", "Haina"), ("安泰", "Antai"), ("汇金", "Huijin"), ("星辰", "Xingchen"),
    ("嘉禾", "Jiahe"), ("永兴", "Yongxing"), ("联创", "Lianchuang"), ("明德", "Mingde"),
    ("同力", "Tongli"), ("蓝海", "Lanhai"), ("启航", "Qihang"), ("正泰", "Zhengtai"),
]
# (company word Chinese, company word English, the customer's industry)
INDUSTRIES = [
    ("科技", "Technology", "软件信息 Software & IT"),
    ("制造", "Manufacturing", "制造 Manufacturing"),
    ("医药", "Pharma", "医药 Healthcare"), ("物流", "Logistics", "物流 Logistics"),
    ("食品", "Foods", "食品 Food & Beverage"), ("能源", "Energy", "能源 Energy"),
    ("建材", "Building Materials", "建筑 Construction"),
    ("电子", "Electronics", "电子 Electronics"),
    ("零售", "Retail", "零售 Retail"), ("教育", "Education", "教育 Education"),
    ("汽配", "Auto Parts", "汽车 Automotive"), ("化工", "Chemicals", "化工 Chemicals"),
]
STREETS = [
    ("人民路", "Renmin Rd"), ("中山路", "Zhongshan Rd"), ("解放路", "Jiefang Rd"),
    ("建设路", "Jianshe Rd"), ("和平路", "Heping Rd"), ("科技园路", "Science Park Rd"),
    ("长江路", "Changjiang Rd"), ("工业大道", "Industrial Ave"), ("滨江大道", "Riverside Ave"),
    ("高新路", "Gaoxin Rd"),
]
SOURCES = ["展会 Trade show", "官网 Website", "转介绍 Referral", "电话营销 Cold call",
           "合作伙伴 Partner", "线上广告 Online ads"]
CONTACT_TITLES = ["总经理 General Manager", "采购经理 Purchasing Manager", "IT总监 IT Director",
                  "财务总监 CFO", "运营总监 Operations Director", "项目经理 Project Manager"]
# (name, is new, weight): the new line is sold only since its launch, six months ago.
PRODUCT_LINES = [("云ERP Cloud ERP", False, 35), ("CRM套件 CRM Suite", False, 30),
                 ("智能工厂 Smart Factory", False, 20), ("AI分析 AI Analytics", True, 15)]
DEAL_KINDS = [("新购", "new purchase"), ("扩容", "expansion"), ("续约", "renewal"),
              ("升级", "upgrade"), ("试点", "pilot")]
LOST_REASONS = [("价格 Price", 30), ("竞品 Competitor", 25), ("预算 Budget", 20),
                ("时机 Timing", 15), ("无决策 No decision", 10)]
# (type, weight, subjects, share with a due date)
ACTIVITY_TYPES: list[tuple[str, int, list[str], float]] = [
    ("call", 32, ["电话跟进 Follow-up call", "确认需求 Confirm requirements",
                  "回访 Check-in call"], 0.7),
    ("email", 18, ["发送报价 Send quote", "发送方案 Send proposal", "会议纪要 Meeting notes"], 0.3),
    ("meeting", 10, ["方案演示 Solution demo", "商务谈判 Commercial negotiation"], 0.5),
    ("visit", 10, ["上门拜访 On-site visit", "现场调研 Site survey"], 0.4),
    ("note", 12, ["客户反馈 Customer feedback", "竞品动态 Competitor news"], 0.0),
    ("task", 18, ["准备合同 Prepare contract", "跟进回款 Chase payment",
                  "安排试用 Set up trial"], 0.95),
]
ACTIVITY_OUTCOMES = ["已完成 Done", "客户确认 Confirmed", "待回复 Awaiting reply", ""]
VISIT_PURPOSES = ["需求调研 Discovery", "方案演示 Demo", "商务谈判 Negotiation",
                  "售后回访 After-sales check", "合同签署 Contract signing"]
VISIT_OUTCOMES = ["客户有兴趣 Interested", "需要报价 Wants a quote", "推迟决策 Decision postponed",
                  "签约意向明确 Ready to sign", "需要再次拜访 Needs another visit"]
NEXT_STEPS = ["发送报价 Send a quote", "安排演示 Arrange a demo", "约见决策人 Meet the decider",
              "准备合同 Prepare the contract", "两周后回访 Call back in two weeks"]

# Moves out of each open stage (orders 1–4; 5 won, 6 lost): (cumulative probability, target).
# Deals mostly advance one stage, sometimes skip one, and drop out at every stage.
# About 30% of the deals that close are won.
TRANSITIONS = {
    1: [(0.64, 2), (0.70, 3), (1.0, 6)],
    2: [(0.68, 3), (0.73, 4), (1.0, 6)],
    3: [(0.68, 4), (0.76, 5), (1.0, 6)],
    4: [(0.68, 5), (1.0, 6)],
}
MEAN_DWELL_DAYS = {1: 12.0, 2: 16.0, 3: 12.0, 4: 10.0}
WON, LOST = 5, 6

# fmt: on


# --- plans, results, progress -----------------------------------------------------------


@dataclass(frozen=True)
class Volumes:
    """How much history to write: row counts and the span in months before ``as_of``."""

    customers: int
    opportunities: int
    activities: int
    visits: int
    leads: int = 0
    months: int = 12


@dataclass
class Counts:
    """Rows written, by kind."""

    customers: int = 0
    contacts: int = 0
    leads: int = 0
    opportunities: int = 0
    stage_changes: int = 0
    won: int = 0
    lost: int = 0
    payments: int = 0
    visits: int = 0
    verified_visits: int = 0
    activities: int = 0
    overdue_follow_ups: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class City:
    name_zh: str
    name_en: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class RepProfile:
    """A rep who owns generated records, and where they sell."""

    membership_id: int
    org_unit_id: int | None
    region: str
    city: City
    start: float  # their start date, epoch seconds


@dataclass(frozen=True)
class OrgSummary:
    regions: int
    teams: int
    managers: int
    reps: int


class Progress:
    """One progress line per phase: bar, counts, rate; redrawn at most every ``interval``.

    On a terminal the line is redrawn in place; elsewhere (logs, pipes) a line is
    printed at most every ``log_interval`` seconds so a long run does not flood the log.
    """

    def __init__(
        self,
        write: Callable[[str], Any] | None,
        *,
        tty: bool = False,
        interval: float = 0.5,
        log_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write = write
        self.tty = tty
        self.interval = interval if tty else log_interval
        self.clock = clock

    @contextmanager
    def phase(self, name: str, total: int) -> Iterator[Callable[[int], None]]:
        """Yield ``advance(count)``; the final line is written when the phase ends."""
        started = last = self.clock()
        done = 0

        def line(now: float) -> str:
            share = done / total if total else 1.0
            filled = int(share * 24)
            rate = done / (now - started) if now > started else 0.0
            return (
                f"{name:<14} [{'#' * filled}{'.' * (24 - filled)}] {done:>11,}/{total:,} "
                f"{share:>4.0%} {rate:>10,.0f}/s {now - started:7.1f}s"
            )

        def advance(count: int) -> None:
            nonlocal done, last
            done += count
            now = self.clock()
            # The phase's last line is written when it ends.
            if self.write is not None and now - last >= self.interval and done < total:
                last = now
                self.write("\r" + line(now) if self.tty else line(now) + "\n")

        yield advance
        if self.write is not None:
            self.write(("\r" if self.tty else "") + line(self.clock()) + "\n")


# --- writing rows -------------------------------------------------------------------------


def copy_rows(model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Bulk-insert ``rows`` (values in ``columns`` order) into ``model``'s table; the count.

    ``COPY`` into a temporary table, then one ``INSERT … SELECT`` into the tenant table:
    PostgreSQL rejects ``COPY FROM`` into a table with row-level security ("COPY FROM
    not supported with row-level security"), while the insert is checked by the tenant
    policy like any other. Must run inside ``tenant_scope``.
    """
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    staging = quote(f"datagen_{model._meta.db_table}")
    column_list = ", ".join(quote(column) for column in columns)
    count = 0
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {staging}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "
            f"SELECT {column_list} FROM {table} WITH NO DATA"
        )
        with cursor.copy(f"COPY {staging} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        cursor.execute(f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {staging}")
        cursor.execute(f"DROP TABLE {staging}")
    return count


def analyze(models: Iterable[type[Model]]) -> None:
    """``ANALYZE`` the tables a bulk load wrote: a fresh table's planner statistics say
    "empty", and the first queries over it (the nightly warnings took 70 s instead of
    1 s on a fresh generated tenant) pick plans for an empty table. Only a table's owner
    may ``ANALYZE`` it (PostgreSQL 15), so this runs as the owner (login) role; where the
    login role is the application role, PostgreSQL skips it with a warning."""
    quote = connection.ops.quote_name
    tables = sorted({quote(model._meta.db_table) for model in models})
    with owner_role(), connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables)}")


def reserve_ids(model: type[Model], count: int) -> list[int]:
    """Take ``count`` ids from the table's identity sequence, so rows can refer to each other."""
    if count <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


class IdPool:
    """Ids of one table handed out one at a time, reserved from its sequence in blocks."""

    def __init__(self, model: type[Model], block: int = 2_000) -> None:
        self.model = model
        self.block = block
        self.free: list[int] = []

    def take(self) -> int:
        if not self.free:
            self.free = reserve_ids(self.model, self.block)[::-1]
        return self.free.pop()


def _chunks(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _weighted(rng: Random, choices: Sequence[tuple[Any, float]]) -> Any:
    roll = rng.random() * sum(weight for _choice, weight in choices)
    for choice, weight in choices:
        roll -= weight
        if roll < 0:
            return choice
    return choices[-1][0]


def _offset(
    latitude: float, longitude: float, metres: float, bearing: float
) -> tuple[float, float]:
    """A point ``metres`` away in direction ``bearing``, rounded as the database keeps it."""
    north = metres * math.cos(bearing) / 111_320
    east = metres * math.sin(bearing) / (111_320 * math.cos(math.radians(latitude)))
    return round(latitude + north, 6), round(longitude + east, 6)


# --- org tree for generated tenants -------------------------------------------------------


def build_org(
    tenant: Tenant,
    *,
    root: OrgUnit,
    reps: int,
    seed: int,
    as_of: datetime,
    password: str = "demo",
    reps_per_team: int = 8,
    teams_per_region: int = 8,
) -> OrgSummary:
    """Regions → teams of about ``reps_per_team`` reps; a manager per team and per region.

    Units go through ``org_unit_create`` (a few dozen); users, memberships and manager
    links are bulk-inserted, with one password hashed once. Team names carry their
    city (``杭州1组 Hangzhou Team 1``), which ``existing_reps`` reads back.
    """
    rng = Random(seed)
    teams = math.ceil(reps / reps_per_team)
    regions = math.ceil(teams / teams_per_region)
    today = as_of.date()
    slug = tenant.slug
    # (username, role, unit, title, start date)
    people: list[tuple[str, str, OrgUnit, str, date]] = []
    with tenant_scope(tenant):
        for region_index in range(regions):
            zh, en, cities = REGIONS[region_index % len(REGIONS)]
            lap = region_index // len(REGIONS)
            suffix = f" {lap + 1}" if lap else ""
            region = org_unit_create(tenant=tenant, name=f"{zh}{suffix} {en}{suffix}", parent=root)
            start = today - timedelta(days=rng.randint(900, 3000))
            people.append(
                (
                    f"{slug}-rm{region_index + 1:03d}",
                    Role.MANAGER,
                    region,
                    "大区总监 Director",
                    start,
                )
            )
            first_team = region_index * teams_per_region
            for position in range(min(teams_per_region, teams - first_team)):
                city_zh, city_en, _latitude, _longitude = cities[position % len(cities)]
                number = position // len(cities) + 1 + lap * 10
                team = org_unit_create(
                    tenant=tenant,
                    name=f"{city_zh}{number}组 {city_en} Team {number}",
                    parent=region,
                )
                team_index = first_team + position
                start = today - timedelta(days=rng.randint(600, 2500))
                people.append(
                    (
                        f"{slug}-tm{team_index + 1:03d}",
                        Role.MANAGER,
                        team,
                        "销售经理 Manager",
                        start,
                    )
                )
                # Reps are dealt round the teams, so team sizes differ by one at most.
                for rep_index in range(team_index, reps, teams):
                    joined_lately = rng.random() < 0.15  # still ramping up
                    days = rng.randint(60, 330) if joined_lately else rng.randint(400, 2600)
                    people.append(
                        (
                            f"{slug}-rep{rep_index + 1:04d}",
                            Role.REP,
                            team,
                            "销售代表 Sales Rep",
                            today - timedelta(days=days),
                        )
                    )

    user_model = get_user_model()
    usernames = [person[0] for person in people]
    taken = sorted(
        user_model.objects.filter(username__in=usernames).values_list("username", flat=True)
    )
    if taken:
        raise ValueError(f"Usernames already taken: {', '.join(taken[:5])}")
    password_hash = make_password(password)
    users = []
    for username in usernames:
        (surname_zh, surname_en), (given_zh, given_en) = (
            rng.choice(SURNAMES),
            rng.choice(GIVEN_NAMES),
        )
        users.append(
            user_model(
                username=username,
                email=f"{username}@{slug}.example.com",
                first_name=given_en,
                last_name=f"{surname_en} {surname_zh}{given_zh}",
                password=password_hash,
            )
        )
    user_model.objects.bulk_create(users, batch_size=1_000)
    with tenant_scope(tenant):
        memberships = Membership.objects.bulk_create(
            [
                Membership(
                    tenant=tenant, user=user, role=role, org_unit=unit, title=title, start_date=day
                )
                for user, (_username, role, unit, title, day) in zip(users, people, strict=True)
            ],
            batch_size=1_000,
        )
        OrgUnitManager.objects.bulk_create(
            OrgUnitManager(tenant=tenant, org_unit=person[2], membership=member)
            for member, person in zip(memberships, people, strict=True)
            if person[1] == Role.MANAGER
        )
    analyze([user_model, Membership, OrgUnitManager])
    managers = sum(1 for person in people if person[1] == Role.MANAGER)
    return OrgSummary(regions=regions, teams=teams, managers=managers, reps=reps)


def _city_for(names: Sequence[str], fallback: int) -> City:
    """The first city named in ``names`` (nearest unit first), else one picked by ``fallback``."""
    cities = [City(*city) for _zh, _en, region_cities in REGIONS for city in region_cities]
    for name in names:
        for city in cities:
            if city.name_en in name or city.name_zh in name:
                return city
    return cities[fallback % len(cities)]


def existing_reps(tenant: Tenant, *, as_of: datetime) -> list[RepProfile]:
    """The tenant's active reps who had started by ``as_of``, each placed in a city.

    The city is the one named by the rep's unit or its nearest parent naming one
    (``上海一组 Shanghai Team 1`` sells in Shanghai), else one is picked by the unit id.
    """
    zone = ZoneInfo(tenant.time_zone)
    with tenant_scope(tenant):
        units = {unit.pk: unit for unit in OrgUnit.objects.all()}
        members = list(
            Membership.objects.filter(role=Role.REP, is_active=True, start_date__lte=as_of.date())
            .order_by("pk")
            .values_list("pk", "org_unit_id", "start_date")
        )
    reps = []
    for pk, unit_id, start in members:
        unit = units.get(unit_id) if unit_id is not None else None
        path = [int(part) for part in unit.path.strip("/").split("/")] if unit else []
        lineage = [units[pk] for pk in reversed(path) if pk in units]  # nearest first
        region = next((u.name for u in lineage if u.depth == 1), unit.name if unit else "")
        reps.append(
            RepProfile(
                membership_id=pk,
                org_unit_id=unit_id,
                region=region,
                city=_city_for([u.name for u in lineage], unit_id or pk),
                start=datetime.combine(start, datetime.min.time(), zone).timestamp(),
            )
        )
    return reps


# --- the generator ------------------------------------------------------------------------

# Columns written per table, in the order of the generated row tuples.
# fmt: off
CUSTOMER_COLUMNS = (
    "id", "tenant_id", "version", "created_at", "updated_at", "name", "industry", "level",
    "region", "source", "owner_id", "first_owner_id", "address", "latitude", "longitude")
CONTACT_COLUMNS = (
    "tenant_id", "version", "created_at", "updated_at", "customer_id", "name", "title", "phone",
    "email")
LEAD_COLUMNS = (
    "id", "tenant_id", "version", "created_at", "updated_at", "name", "company", "phone",
    "email", "source", "status", "owner_id", "converted_at", "converted_customer_id")
OPPORTUNITY_COLUMNS = (
    "id", "tenant_id", "version", "created_at", "updated_at", "name", "customer_id", "owner_id",
    "pipeline_id", "stage_id", "amount", "product_line_id", "expected_close_date",
    "forecast_category_override", "lost_reason", "closed_date", "stage_entered_at",
    "source_lead_id", "credited_member_id", "credited_org_unit_id")
STAGE_CHANGE_COLUMNS = (
    "tenant_id", "opportunity_id", "from_stage_id", "to_stage_id", "changed_at", "exited_at",
    "changed_by_id", "amount")
PAYMENT_COLUMNS = (
    "id", "tenant_id", "version", "created_at", "updated_at", "opportunity_id", "amount",
    "planned_date", "received_date", "status", "reverses_id", "recorded_by_id", "note")
VISIT_COLUMNS = (
    "tenant_id", "version", "created_at", "updated_at", "customer_id", "rep_id",
    "planned_start", "check_in_at", "check_in_device_at", "check_in_latitude",
    "check_in_longitude", "check_in_accuracy_m", "check_out_at", "check_out_device_at",
    "check_out_latitude", "check_out_longitude", "distance_m", "verified", "purpose", "outcome",
    "next_step")
ACTIVITY_COLUMNS = (
    "tenant_id", "version", "created_at", "updated_at", "type", "subject", "customer_id",
    "lead_id", "opportunity_id", "owner_id", "due_at", "done_at", "outcome")
# fmt: on


def _longs() -> array[int]:
    return array("q")


def _floats() -> array[float]:
    return array("d")


@dataclass
class _Customers:
    """What later phases need of each generated customer: a few numbers, no objects."""

    ids: array[int] = field(default_factory=_longs)
    rep: array[int] = field(default_factory=_longs)  # index into the reps, -1 = public pool
    latitude: array[float] = field(default_factory=_floats)
    longitude: array[float] = field(default_factory=_floats)
    created: array[float] = field(default_factory=_floats)
    short_names: list[str] = field(default_factory=list)
    owned: array[int] = field(default_factory=_longs)  # indexes of customers with an owner


@dataclass
class _Opportunities:
    ids: array[int] = field(default_factory=_longs)
    customer: array[int] = field(default_factory=_longs)  # index into _Customers
    created: array[float] = field(default_factory=_floats)
    ended: array[float] = field(default_factory=_floats)  # closed at, or as_of when open


class HistoryGenerator:
    """Writes ``volumes`` of history owned by ``reps``; see the module docstring.

    Times are epoch seconds (floats) until a row is written. Each phase builds a chunk
    of row tuples, then writes it inside its own tenant scope.
    """

    customer_chunk = 10_000
    lead_chunk = 10_000
    opportunity_chunk = 5_000
    visit_chunk = 20_000
    activity_chunk = 50_000

    def __init__(
        self,
        tenant: Tenant,
        reps: Sequence[RepProfile],
        volumes: Volumes,
        *,
        seed: int,
        as_of: datetime,
        progress: Progress | None = None,
    ) -> None:
        if not reps:
            raise ValueError("The tenant has no active reps to own the generated records.")
        self.tenant = tenant
        self.tenant_id = tenant.pk
        self.reps = list(reps)
        self.volumes = volumes
        self.rng = Random(seed)
        self.progress = progress or Progress(None)
        self.zone = ZoneInfo(tenant.time_zone)
        self.as_of = as_of.timestamp()
        self.start = (as_of - timedelta(days=round(volumes.months * 30.44))).timestamp()
        self.today = as_of.astimezone(self.zone).date()
        offset = as_of.astimezone(self.zone).utcoffset()
        self.utc_offset = offset.total_seconds() if offset else 0.0
        # The new product line was launched six months ago (mid-window for short windows).
        self.launch = self.as_of - min(182.0, volumes.months * 15.2) * DAY
        # The share of the window each rep has been selling in.
        self.active_share = [
            max(
                0.02,
                min(1.0, (self.as_of - max(rep.start, self.start)) / (self.as_of - self.start)),
            )
            for rep in self.reps
        ]
        self.counts = Counts()
        self.customers = _Customers()
        self.opportunities = _Opportunities()
        self.converted_leads: dict[int, tuple[int, float]] = {}  # customer index → lead
        self.leads_by_rep: dict[int, list[int]] = {}
        self.payment_ids = IdPool(Payment)
        self.stage_ids: dict[int, int] = {}
        self.pipeline_id = 0
        self.product_lines: list[tuple[int, str, bool, int]] = []  # id, name, new, weight

    def run(self) -> Counts:
        self._reference_data()
        self._customers()
        self._leads()
        self._opportunities()
        self._visits()
        self._activities()
        return self.counts

    # -- time --

    def _local_date(self, ts: float) -> date:
        return datetime.fromtimestamp(ts, self.zone).date()

    def _work_time(self, ts: float) -> float:
        """A working hour (09:00–18:00, tenant time) of the same day, mostly off weekends."""
        day = math.floor((ts + self.utc_offset) / DAY)
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        if weekday >= 5 and self.rng.random() < 0.95:
            day += 7 - weekday
        return day * DAY - self.utc_offset + 9 * HOUR + self.rng.random() * 9 * HOUR

    def _work_time_between(self, low: float, high: float) -> float:
        """A working hour between ``low`` and ``high``, clamped into them."""
        moment = self._work_time(low + (high - low) * self.rng.random())
        return max(low, min(moment, high))

    def _noon(self, day: date) -> float:
        """Noon, tenant time, of a local date: when rows recorded on a date were written."""
        return datetime.combine(day, datetime.min.time(), self.zone).timestamp() + 12 * HOUR

    # -- names --

    def _company(self, city: City) -> tuple[str, str, str]:
        """(full name, short name, industry)."""
        rng = self.rng
        word_zh, word_en, industry = rng.choice(INDUSTRIES)
        if rng.random() < 0.15:
            first, second = rng.sample(ENGLISH_LAST, 2)
            return f"{first} & {second} {word_en} Ltd.", f"{first} & {second}", industry
        brand_zh, brand_en = rng.choice(BRANDS)
        full = f"{city.name_zh}{brand_zh}{word_zh}有限公司 {city.name_en} {brand_en} {word_en}"
        return f"{full} Co., Ltd.", f"{brand_zh}{word_zh} {brand_en} {word_en}", industry

    def _person(self) -> tuple[str, str]:
        """(display name, e-mail local part)."""
        rng = self.rng
        if rng.random() < 0.1:
            first, last = rng.choice(ENGLISH_FIRST), rng.choice(ENGLISH_LAST)
            return f"{first} {last}", f"{first}.{last}".lower()
        (surname_zh, surname_en), (given_zh, given_en) = (
            rng.choice(SURNAMES),
            rng.choice(GIVEN_NAMES),
        )
        return f"{surname_zh}{given_zh} {given_en} {surname_en}", f"{given_en}.{surname_en}".lower()

    def _phone(self) -> str:
        return f"1{self.rng.choice('3589')}{self.rng.randrange(10**9):09d}"

    # -- phases --

    def _reference_data(self) -> None:
        """The default pipeline's six stages, and the product lines (created when missing)."""
        with tenant_scope(self.tenant):
            stages = list(Stage.objects.filter(pipeline__is_default=True).order_by("order"))
            kinds = {stage.order: stage.kind for stage in stages}
            expected = {1: "open", 2: "open", 3: "open", 4: "open", WON: "won", LOST: "lost"}
            if kinds != expected:
                raise ValueError("The default pipeline must have the six default stages.")
            self.stage_ids = {stage.order: stage.pk for stage in stages}
            self.pipeline_id = stages[0].pipeline_id
            for name, is_new, weight in PRODUCT_LINES:
                line, _created = ProductLine.objects.get_or_create(
                    name=name, defaults={"tenant": self.tenant, "is_new": is_new}
                )
                self.product_lines.append((line.pk, name, line.is_new, weight))

    def _customers(self) -> None:
        """Customers round their rep's city, with one or two contacts; 8% in the public pool."""
        rng, reps, table = self.rng, self.reps, self.customers
        # Books differ in size: a few reps hold many more accounts than the others, and
        # a rep who joined during the window has a smaller one.
        cumulative = list(
            itertools.accumulate(
                rng.lognormvariate(0, 0.5) * (0.5 + share / 2) for share in self.active_share
            )
        )
        with self.progress.phase("customers", self.volumes.customers) as advance:
            for size in _chunks(self.volumes.customers, self.customer_chunk):
                customers: list[tuple[Any, ...]] = []
                contacts: list[tuple[Any, ...]] = []
                for customer_id in reserve_ids(Customer, size):
                    index = len(table.ids)
                    if index < len(reps):
                        rep_index = index  # every rep gets an account first
                    else:
                        rep_index = bisect.bisect(cumulative, rng.random() * cumulative[-1])
                        rep_index = min(rep_index, len(reps) - 1)
                    rep = reps[rep_index]
                    pooled = index >= len(reps) and rng.random() < 0.08
                    if rng.random() < 0.6:  # the customer base from before the window
                        created = self._work_time(self.start - rng.random() * 730 * DAY)
                    else:
                        created = self._work_time_between(self.start, self.as_of - 7 * DAY)
                    updated = created
                    if rng.random() < 0.5:
                        updated = created + rng.random() * (self.as_of - created)
                    full, short, industry = self._company(rep.city)
                    latitude, longitude = _offset(
                        rep.city.latitude,
                        rep.city.longitude,
                        15_000 * math.sqrt(rng.random()),
                        rng.random() * 2 * math.pi,
                    )
                    street_zh, street_en = rng.choice(STREETS)
                    number = rng.randint(1, 999)
                    level = "A" if rng.random() < 0.1 else "B" if rng.random() < 0.35 else "C"
                    owner = None if pooled else rep.membership_id
                    # Half the pool once had an owner who released the customer.
                    first_owner = None if pooled and rng.random() < 0.5 else rep.membership_id
                    address = (
                        f"{rep.city.name_zh}市{street_zh}{number}号 "
                        f"{number} {street_en}, {rep.city.name_en}"
                    )
                    customers.append((
                        customer_id, self.tenant_id, 1 if updated == created else 2,
                        _at(created), _at(updated), full, industry, level, rep.region,
                        rng.choice(SOURCES), owner, first_owner, address, f"{latitude:.6f}",
                        f"{longitude:.6f}",
                    ))  # fmt: skip
                    for _ in range(1 + (rng.random() < 0.5)):
                        name, mail = self._person()
                        contacts.append((
                            self.tenant_id, 1, _at(created), _at(created), customer_id, name,
                            rng.choice(CONTACT_TITLES), self._phone(),
                            f"{mail}@c{customer_id}.example.com",
                        ))  # fmt: skip
                    table.ids.append(customer_id)
                    table.rep.append(-1 if pooled else rep_index)
                    table.latitude.append(latitude)
                    table.longitude.append(longitude)
                    table.created.append(created)
                    table.short_names.append(short)
                    if not pooled:
                        table.owned.append(index)
                with tenant_scope(self.tenant):
                    self.counts.customers += copy_rows(Customer, CUSTOMER_COLUMNS, customers)
                    self.counts.contacts += copy_rows(Contact, CONTACT_COLUMNS, contacts)
                advance(size)

    def _random_owned_customer(self) -> int:
        """A customer with an owner, less likely the shorter its rep has been selling.

        Deals, visits and activities happen only while the rep is with the company, so a
        rep who joined two months ago has two months' worth of them, not the window's.
        """
        owned, rep_of = self.customers.owned, self.customers.rep
        if not owned:
            raise ValueError("Opportunities, visits and activities need customers with an owner.")
        for _attempt in range(50):
            index = owned[self.rng.randrange(len(owned))]
            if self.rng.random() < self.active_share[rep_of[index]]:
                break
        return index

    def _leads(self) -> None:
        """线索: new, working, qualified (most converted into a customer and a deal), lost."""
        rng, table = self.rng, self.customers
        statuses = [("new", 0.3), ("working", 0.6), ("qualified", 0.85), ("disqualified", 1.0)]
        with self.progress.phase("leads", self.volumes.leads) as advance:
            for size in _chunks(self.volumes.leads, self.lead_chunk):
                leads: list[tuple[Any, ...]] = []
                for lead_id in reserve_ids(Lead, size):
                    roll = rng.random()
                    status = next(name for name, share in statuses if roll < share)
                    rep_index = rng.randrange(len(self.reps))
                    converted_at = converted_customer = None
                    if status == "qualified" and table.owned and rng.random() < 0.7:
                        customer_index = self._random_owned_customer()
                        if customer_index not in self.converted_leads:
                            rep_index = table.rep[customer_index]
                            low = max(
                                self.start,
                                table.created[customer_index],
                                self.reps[rep_index].start,
                            )
                            converted_at = self._work_time_between(low, self.as_of - 2 * DAY)
                            converted_customer = table.ids[customer_index]
                            # The customer's next deal comes from this lead.
                            self.converted_leads[customer_index] = (lead_id, converted_at)
                    rep = self.reps[rep_index]
                    created = self._work_time_between(max(self.start, rep.start), self.as_of - DAY)
                    if converted_at is not None:
                        created = min(created, converted_at - rng.uniform(1, 20) * DAY)
                        updated = converted_at
                    elif status == "new":
                        updated = created
                    else:
                        updated = min(self.as_of, created + rng.uniform(1, 30) * DAY)
                    name, mail = self._person()
                    company, _short, _industry = self._company(rep.city)
                    leads.append((
                        lead_id, self.tenant_id, 1 if updated == created else 2, _at(created),
                        _at(updated), name, company, self._phone(),
                        f"{mail}@l{lead_id}.example.com", rng.choice(SOURCES), status,
                        rep.membership_id, None if converted_at is None else _at(converted_at),
                        converted_customer,
                    ))  # fmt: skip
                    self.leads_by_rep.setdefault(rep_index, []).append(lead_id)
                with tenant_scope(self.tenant):
                    self.counts.leads += copy_rows(Lead, LEAD_COLUMNS, leads)
                advance(size)

    def _opportunities(self) -> None:
        """商机 with their stage changes and, for won ones, their payments."""
        with self.progress.phase("opportunities", self.volumes.opportunities) as advance:
            for size in _chunks(self.volumes.opportunities, self.opportunity_chunk):
                opportunities: list[tuple[Any, ...]] = []
                changes: list[tuple[Any, ...]] = []
                payments: list[tuple[Any, ...]] = []
                for opportunity_id in reserve_ids(Opportunity, size):
                    opportunities.append(self._opportunity(opportunity_id, changes, payments))
                with tenant_scope(self.tenant):
                    copy_rows(Opportunity, OPPORTUNITY_COLUMNS, opportunities)
                    self.counts.stage_changes += copy_rows(
                        StageChange, STAGE_CHANGE_COLUMNS, changes
                    )
                    self.counts.payments += copy_rows(Payment, PAYMENT_COLUMNS, payments)
                self.counts.opportunities += size
                advance(size)

    def _amount(self) -> int:
        """A deal size in cents: log-normal round ¥150,000, whole hundreds of yuan."""
        yuan = min(max(self.rng.lognormvariate(math.log(150_000), 0.9), 5_000), 5_000_000)
        return round(yuan / 100) * 10_000

    def _opportunity(
        self, opportunity_id: int, changes: list[tuple[Any, ...]], payments: list[tuple[Any, ...]]
    ) -> tuple[Any, ...]:
        """One deal and its history: forward through the stages until closed or ``as_of``."""
        rng, table = self.rng, self.customers
        customer_index = self._random_owned_customer()
        rep = self.reps[table.rep[customer_index]]
        owner = rep.membership_id
        source_lead = None
        lead = self.converted_leads.pop(customer_index, None)
        if lead is not None:
            source_lead, created = lead
        else:
            low = max(self.start, table.created[customer_index] + DAY, rep.start)
            high = self.as_of - HOUR
            # More deals lately: the business grows over the window.
            moment = low + (high - low) * rng.random() ** 0.85
            created = max(low, min(self._work_time(moment), high)) if high > low else high
        stage = 1 if rng.random() < 0.9 else 2  # some enter the funnel with a need defined
        cents: int | None = self._amount()
        if stage == 1 and rng.random() < 0.25:
            cents = None  # not sized yet
        # (from stage, to stage, at, amount then); the first comes from nothing.
        history: list[tuple[int | None, int, float, int | None]] = [(None, stage, created, cents)]
        at, lost_reason = created, ""
        stalled = rng.random() < 0.1
        while stage < WON:
            dwell = (rng.expovariate(1 / MEAN_DWELL_DAYS[stage]) + 0.5) * (4 if stalled else 1)
            following = self._work_time(at + dwell * DAY)
            if following <= at + 60:
                following = at + rng.uniform(600, 7_200)
            if following > self.as_of:
                break  # still in this stage today
            roll = rng.random()
            target = next(target for share, target in TRANSITIONS[stage] if roll < share)
            if target == LOST:
                lost_reason = _weighted(rng, LOST_REASONS)
            elif cents is None:
                cents = self._amount()
            elif target in (3, 4) and rng.random() < 0.4:  # re-quoted, or discounted
                cents = max(10_000, round(cents * rng.uniform(0.85, 1.15) / 10_000) * 10_000)
            history.append((stage, target, following, cents))
            stage, at = target, following
        exits: list[float | None] = [changed_at for _f, _t, changed_at, _a in history[1:]]
        exits.append(None)
        for (from_stage, to_stage, changed_at, amount), exited_at in zip(
            history, exits, strict=True
        ):
            changes.append((
                self.tenant_id, opportunity_id, self.stage_ids.get(from_stage or 0),
                self.stage_ids[to_stage], _at(changed_at),
                None if exited_at is None else _at(exited_at), owner,
                None if amount is None else _money(amount),
            ))  # fmt: skip
        closed_date = credited_member = credited_unit = None
        if stage == WON:
            assert cents is not None
            closed_date = self._local_date(at)
            credited_member, credited_unit = owner, rep.org_unit_id
            self._payments(payments, opportunity_id, cents, at, owner)
            self.counts.won += 1
        elif stage == LOST:
            closed_date = self._local_date(at)
            credited_unit = rep.org_unit_id  # the owner's unit at the loss (SPEC 10)
            self.counts.lost += 1
        line_id, line_name = self._product_line(created)
        kind_zh, kind_en = rng.choice(DEAL_KINDS)
        expected_close = self._local_date(created + rng.uniform(30, 120) * DAY)
        deals = self.opportunities
        deals.ids.append(opportunity_id)
        deals.customer.append(customer_index)
        deals.created.append(created)
        deals.ended.append(self.as_of if closed_date is None else at)
        return (
            opportunity_id, self.tenant_id, len(history), _at(created), _at(at),
            f"{table.short_names[customer_index]} · {line_name} {kind_zh} {kind_en}",
            table.ids[customer_index], owner, self.pipeline_id, self.stage_ids[stage],
            None if cents is None else _money(cents), line_id, expected_close, "", lost_reason,
            closed_date, _at(at), source_lead, credited_member, credited_unit,
        )  # fmt: skip

    def _product_line(self, created: float) -> tuple[int, str]:
        choices = [
            ((line_id, name), weight)
            for line_id, name, is_new, weight in self.product_lines
            if created >= self.launch or not is_new
        ]
        chosen: tuple[int, str] = _weighted(self.rng, choices)
        return chosen

    def _payments(
        self,
        rows: list[tuple[Any, ...]],
        opportunity_id: int,
        cents: int,
        won_at: float,
        owner: int,
    ) -> None:
        """回款 of a won deal: one to three instalments after the win; 3% of received reversed.

        An instalment due by ``as_of`` is mostly received (some days around its due date,
        never before the win); the others stay planned.
        """
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return  # nothing recorded yet
        if roll < 0.45:
            shares = [100]
        elif roll < 0.85:
            shares = [50, 50] if roll < 0.7 else [30, 70]
        else:
            shares = [30, 40, 30]
        won_day = self._local_date(won_at)
        recorded = min(won_at + rng.uniform(0.1, 2) * DAY, self.as_of)
        due, remaining = won_day, cents
        for position, share in enumerate(shares):
            part = remaining if position == len(shares) - 1 else cents * share // 100
            remaining -= part
            due += timedelta(days=rng.randint(0, 30) if position == 0 else rng.randint(30, 90))
            received_day = max(due + timedelta(days=rng.randint(-5, 25)), won_day)
            payment_id = self.payment_ids.take()
            if received_day > self.today or rng.random() < 0.08:
                rows.append((
                    payment_id, self.tenant_id, 1, _at(recorded), _at(recorded), opportunity_id,
                    _money(part), due, None, "planned", None, owner, "",
                ))  # fmt: skip
                continue
            received_at = min(max(self._noon(received_day), recorded), self.as_of)
            rows.append((
                payment_id, self.tenant_id, 2, _at(min(recorded, received_at)), _at(received_at),
                opportunity_id, _money(part), due, received_day, "received", None, owner, "",
            ))  # fmt: skip
            reversed_day = received_day + timedelta(days=rng.randint(1, 20))
            if rng.random() < 0.03 and reversed_day <= self.today:
                reversed_at = max(min(self._noon(reversed_day), self.as_of), received_at)
                rows.append((
                    self.payment_ids.take(), self.tenant_id, 1, _at(reversed_at), _at(reversed_at),
                    opportunity_id, _money(-part), None, reversed_day, "reversed", payment_id,
                    owner, "退票冲销 Bounced, reversed",
                ))  # fmt: skip

    def _visits(self) -> None:
        """拜访 of owned customers: most checked in near the customer, some far, a few ahead."""
        rng, table = self.rng, self.customers
        radius = float(self.tenant.visit_radius_m)
        with self.progress.phase("visits", self.volumes.visits) as advance:
            for size in _chunks(self.volumes.visits, self.visit_chunk):
                visits: list[tuple[Any, ...]] = []
                for _ in range(size):
                    customer_index = self._random_owned_customer()
                    rep = self.reps[table.rep[customer_index]]
                    low = max(self.start, table.created[customer_index], rep.start)
                    if rng.random() < 0.04:  # planned for the next two weeks
                        planned = max(
                            self._work_time(self.as_of + rng.uniform(0.5, 14) * DAY),
                            self.as_of + HOUR,
                        )
                        created = self.as_of - rng.uniform(0.1, 7) * DAY
                    else:
                        planned = self._work_time_between(low, self.as_of - HOUR)
                        created = planned - rng.uniform(0.2, 7) * DAY
                    customer_latitude = table.latitude[customer_index]
                    customer_longitude = table.longitude[customer_index]
                    check_in = planned + rng.gauss(0, 1_200)
                    check_in_row: tuple[Any, ...] = (None,) * 7
                    check_out_row: tuple[Any, ...] = (None, None, None, None, "", "")
                    updated, version = created, 1
                    if rng.random() < 0.92 and created <= check_in <= self.as_of:
                        if rng.random() < 0.85:  # at the customer's door, give or take
                            metres = radius * 0.9 * math.sqrt(rng.random())
                        else:  # checked in from somewhere else
                            metres = radius * 1.3 + rng.expovariate(1 / 3_000)
                        latitude, longitude = _offset(
                            customer_latitude, customer_longitude, metres, rng.random() * 6.2832
                        )
                        distance = haversine_m(
                            latitude, longitude, customer_latitude, customer_longitude
                        )
                        verified = distance <= radius
                        check_in_row = (
                            _at(check_in), _at(check_in - rng.uniform(0, 20)), f"{latitude:.6f}",
                            f"{longitude:.6f}", f"{rng.uniform(4, 60):.1f}", distance, verified,
                        )  # fmt: skip
                        self.counts.verified_visits += verified
                        updated, version = check_in, 2
                        check_out = check_in + rng.uniform(20, 120) * 60
                        if rng.random() < 0.9 and check_out <= self.as_of:
                            out_latitude, out_longitude = _offset(
                                latitude, longitude, rng.uniform(0, 60), rng.random() * 6.2832
                            )
                            check_out_row = (
                                _at(check_out), _at(check_out - rng.uniform(0, 20)),
                                f"{out_latitude:.6f}", f"{out_longitude:.6f}",
                                rng.choice(VISIT_OUTCOMES), rng.choice(NEXT_STEPS),
                            )  # fmt: skip
                            updated, version = check_out, 3
                    (in_at, in_device, in_lat, in_lng, accuracy, distance_m, verified_flag) = (
                        check_in_row
                    )
                    (out_at, out_device, out_lat, out_lng, outcome, next_step) = check_out_row
                    visits.append((
                        self.tenant_id, version, _at(created), _at(updated),
                        table.ids[customer_index], rep.membership_id, _at(planned), in_at,
                        in_device, in_lat, in_lng, accuracy, out_at, out_device, out_lat, out_lng,
                        distance_m, bool(verified_flag), rng.choice(VISIT_PURPOSES), outcome,
                        next_step,
                    ))  # fmt: skip
                with tenant_scope(self.tenant):
                    self.counts.visits += copy_rows(Visit, VISIT_COLUMNS, visits)
                advance(size)

    def _activities(self) -> None:
        """Activities on deals (while alive), customers or leads; follow-ups, some overdue."""
        rng, table, deals = self.rng, self.customers, self.opportunities
        types = [(kind, weight) for kind, weight, _subjects, _due in ACTIVITY_TYPES]
        subjects = {kind: options for kind, _weight, options, _due in ACTIVITY_TYPES}
        due_share = {kind: share for kind, _weight, _subjects, share in ACTIVITY_TYPES}
        with self.progress.phase("activities", self.volumes.activities) as advance:
            for size in _chunks(self.volumes.activities, self.activity_chunk):
                activities: list[tuple[Any, ...]] = []
                for _ in range(size):
                    roll = rng.random()
                    lead_id = opportunity_id = None
                    if roll < 0.55 and deals.ids:
                        position = rng.randrange(len(deals.ids))
                        customer_index = deals.customer[position]
                        opportunity_id = deals.ids[position]
                        low, high = deals.created[position], deals.ended[position]
                    else:
                        customer_index = self._random_owned_customer()
                        low, high = max(self.start, table.created[customer_index]), self.as_of
                    rep_index = table.rep[customer_index]
                    rep = self.reps[rep_index]
                    customer_id: int | None = table.ids[customer_index]
                    if opportunity_id is None and roll > 0.93 and rep_index in self.leads_by_rep:
                        rep_leads = self.leads_by_rep[rep_index]
                        lead_id, customer_id = rep_leads[rng.randrange(len(rep_leads))], None
                    kind = _weighted(rng, types)
                    low = max(low, rep.start)
                    created = min(
                        self._work_time_between(low, max(low, high - HOUR)), self.as_of - 60
                    )
                    due = done = None
                    if rng.random() < due_share[kind]:
                        due = max(
                            self._work_time(created + rng.uniform(0.5, 14) * DAY), created + HOUR
                        )
                        if due <= self.as_of:
                            if rng.random() < 0.85:
                                done = self._work_time(due + rng.uniform(-2, 1) * DAY)
                                done = min(max(created + 60, done), self.as_of)
                            else:
                                self.counts.overdue_follow_ups += 1
                    else:
                        done = created  # logged when it happened
                    updated = created if done is None else done
                    activities.append((
                        self.tenant_id, 1 if updated == created else 2, _at(created), _at(updated),
                        kind, rng.choice(subjects[kind]), customer_id, lead_id, opportunity_id,
                        rep.membership_id, None if due is None else _at(due),
                        None if done is None else _at(done),
                        "" if done is None else rng.choice(ACTIVITY_OUTCOMES),
                    ))  # fmt: skip
                with tenant_scope(self.tenant):
                    self.counts.activities += copy_rows(Activity, ACTIVITY_COLUMNS, activities)
                advance(size)


# Every table ``HistoryGenerator`` bulk-loads, for ``analyze``.
HISTORY_MODELS: tuple[type[Model], ...] = (
    Customer,
    Contact,
    Lead,
    Opportunity,
    StageChange,
    Payment,
    Visit,
    Activity,
)


def generate_history(
    tenant: Tenant,
    reps: Sequence[RepProfile],
    volumes: Volumes,
    *,
    seed: int,
    as_of: datetime,
    progress: Progress | None = None,
) -> Counts:
    """Write ``volumes`` of history owned by ``reps`` (see the module docstring), then
    ``ANALYZE`` the tables it loaded."""
    counts = HistoryGenerator(
        tenant, reps, volumes, seed=seed, as_of=as_of, progress=progress
    ).run()
    analyze(HISTORY_MODELS)
    return counts
