"""A class plan that binds nothing renders through a function written out from the plan
(``tenancy.api.serializers._renderer``): the same dict as the plan's loop (``_render``),
key for key and in the same order, for every API serializer and every kind of field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from tenancy.api.serializers import (
    _COLUMN,
    _DECIMAL,
    _ID,
    _MOMENT,
    _NESTED,
    _PROPERTY,
    _UNBOUND_PLANS,
    _compile,
    _render,
    _renderer,
)
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests.factories import TenantTree
from tests.tenancy.test_serializer_fields import ZONES, _api_serializers

Plan = list[tuple[str, Any, int, str | None]]


def _both(plan: Plan, row: Any, zone: Any) -> tuple[Any, Any]:
    """What the compiled function and the loop give (or raise) for ``row``."""
    results: list[Any] = []
    for render in (_renderer(plan), lambda row, zone: _render(plan, row, zone)):
        try:
            results.append(list(render(row, (zone,)).items()))
        except Exception as error:  # noqa: BLE001 - both must fail alike
            results.append(type(error))
    return results[0], results[1]


def test_every_unbound_class_plan_renders_its_rows_as_the_loop_does(tree_a: TenantTree) -> None:
    from tests import records

    compared: set[str] = set()
    with tenant_scope(tree_a.tenant):
        records.one_of_each(tree_a)
        for cls in _api_serializers():
            if getattr(cls.Meta, "model", None) is Membership:
                continue  # a member needs its managed links prefetched
            cls()._read_plan()  # plans the class
            plan = _UNBOUND_PLANS.get(cls)
            if plan is None:
                continue  # a field binds to its serializer: rendered by the loop alone
            assert _renderer(plan) is _renderer(plan)  # written once
            for row in cls.Meta.model._default_manager.all()[:5]:
                for zone in ZONES:
                    with timezone.override(zone):
                        ours, loop = _both(plan, row, timezone.get_current_timezone())
                        assert ours == loop, (cls.__qualname__, zone)
                        assert dict(cls(row).data) == dict(loop)
                compared.add(cls.__qualname__)
    assert len(compared) >= 15, sorted(compared)


class _Row:
    """A row with a value of every kind, and properties that raise."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    @property
    def missing(self) -> Any:
        raise ObjectDoesNotExist

    @property
    def broken(self) -> Any:
        raise AttributeError("broken")

    @property
    def unkeyed(self) -> Any:
        raise KeyError("unkeyed")


class _Nested:
    def __init__(self, pk: int) -> None:
        self.pk = pk


def _plan() -> Plan:
    nested_plan: Plan = [("id", serializers.IntegerField(), _COLUMN, "pk")]
    prototype = serializers.CharField()
    return [
        ("id", serializers.IntegerField(), _COLUMN, "id"),
        ("名字", serializers.CharField(), _COLUMN, "name"),
        ("flag", serializers.BooleanField(), _COLUMN, "flag"),
        ("owner", serializers.IntegerField(), _ID, "owner_id"),
        ("at", serializers.DateTimeField(), _MOMENT, "at"),
        ("amount", serializers.DecimalField(max_digits=8, decimal_places=2), _DECIMAL, "amount"),
        ("day", serializers.DateField(), _COLUMN, "day"),
        ("prop", serializers.IntegerField(read_only=True), _PROPERTY, "prop"),
        ("missing", serializers.IntegerField(read_only=True), _PROPERTY, "missing"),
        ("broken", serializers.IntegerField(read_only=True), _PROPERTY, "broken"),
        ("unkeyed", serializers.IntegerField(read_only=True), _PROPERTY, "unkeyed"),
        ("nested", (nested_plan, _Nested, prototype), _NESTED, "nested"),
        ("big", serializers.BigIntegerField(), _COLUMN, "big"),
        ("big text", serializers.BigIntegerField(coerce_to_string=True), _COLUMN, "big"),
        ("choice", serializers.ChoiceField(choices=CHOICES), _COLUMN, "choice"),
    ]


class _Kind(models.TextChoices):
    OPEN = "open", "Open"
    ONE = "1", "One"
    NONE = "", "None"


#: A choice of a text, a number and an enum's member (one of them empty: an empty text
#: is shown as given, not as the member).
CHOICES = [("open", "Open"), (1, "One"), (_Kind.ONE, "One, an enum"), (_Kind.NONE, "None")]


ROWS = [
    _Row(
        id=1,
        name="华东",
        flag=True,
        owner_id=7,
        at=datetime(2026, 12, 6, 1, 2, 3, 456, tzinfo=UTC),
        amount=Decimal("12.30"),
        day=datetime(2026, 12, 6).date(),
        prop=4,
        nested=_Nested(9),
        big=2**40,
        choice="open",
    ),
    # Every value None: shown as None, none of the fields' methods called.
    _Row(
        id=None,
        name=None,
        flag=None,
        owner_id=None,
        at=None,
        amount=None,
        day=None,
        prop=None,
        nested=None,
        big=None,
        choice=None,
    ),
    # Values not of the column's type: the field's own method decides.
    _Row(
        id="12",
        name=12,
        flag="yes",
        owner_id="7",
        at=datetime(2026, 12, 6, 1, 2, 3),  # naive: DRF makes it aware
        amount=12.5,  # a float: quantized by DRF
        day=datetime(2026, 12, 6, 5, 0, tzinfo=UTC),
        prop=Decimal("3"),
        nested="not a row",
        big="12",  # text: DRF makes it a number (or keeps it text)
        choice="1",  # the text of a number's choice: DRF shows the number
    ),
    # A decimal with more places than the field: DRF quantizes it.
    _Row(
        id=True,
        name="",
        flag=0,
        owner_id=0,
        at=datetime(2026, 6, 1, tzinfo=UTC),
        amount=Decimal("1.005"),
        day=None,
        prop=0,
        nested=_Nested(0),
        big=True,  # a boolean is an int, not of its exact type
        choice="",  # an empty text stays empty
    ),
    # A moment the tenant's zone cannot show: both raise alike.
    _Row(
        id=1,
        name="x",
        flag=False,
        owner_id=1,
        at=datetime.max.replace(tzinfo=UTC),
        amount=Decimal("1.00"),
        day=None,
        prop=1,
        nested=None,
        big=0,
        choice="no such choice",  # shown as given
    ),
    # A moment in another zone than UTC (not as read from the database), a choice that is
    # an enum's member, a number where a choice's text is kept.
    _Row(
        id=2,
        name="y",
        flag=True,
        owner_id=2,
        at=datetime(2026, 12, 6, 1, 2, 3, tzinfo=timezone.get_fixed_timezone(-150)),
        amount=Decimal("2.00"),
        day=None,
        prop=2,
        nested=None,
        big=-(2**62),
        choice=_Kind.OPEN,
    ),
    _Row(
        id=3,
        name="z",
        flag=False,
        owner_id=3,
        at=datetime(2026, 12, 6, 1, 2, 3, tzinfo=timezone.get_fixed_timezone(0)),
        amount=Decimal("3.00"),
        day=None,
        prop=3,
        nested=None,
        big=3,
        choice=1,
    ),
]


@pytest.mark.parametrize("zone", [None, UTC, *ZONES])
@pytest.mark.parametrize("index", range(len(ROWS)))
def test_every_kind_of_field_renders_as_the_loop_does(zone: Any, index: int) -> None:
    plan = _plan()
    if isinstance(zone, str):
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(zone)
    ours, loop = _both(plan, ROWS[index], zone)
    assert ours == loop
    if isinstance(loop, list):  # equal values of the same types (an enum's text is a str)
        assert [type(value) for _name, value in ours] == [type(value) for _name, value in loop]
        shown = dict(loop)
        assert "broken" not in shown and "unkeyed" not in shown  # left out, as DRF does
        assert shown["missing"] is None


def test_the_written_out_function_is_used_and_a_plan_it_cannot_write_uses_the_loop() -> None:
    plan = _plan()
    assert _renderer(plan).__name__ == "render"
    odd: Plan = [("x", serializers.IntegerField(), _COLUMN, "not an identifier")]
    assert _renderer(odd).func is _render  # type: ignore[attr-defined]
    keyword: Plan = [("x", serializers.IntegerField(), _COLUMN, "class")]
    assert _renderer(keyword).func is _render  # type: ignore[attr-defined]
    row = _Row(**{"not an identifier": 3, "class": 4})
    assert _renderer(odd)(row, (None,)) == {"x": 3}
    assert _renderer(keyword)(row, (None,)) == {"x": 4}


def test_a_page_of_rows_is_rendered_without_a_serializer_as_drf_renders_it(
    tree_a: TenantTree,
) -> None:
    from tests import records

    compared: set[str] = set()
    with tenant_scope(tree_a.tenant):
        records.one_of_each(tree_a)
        for cls in _api_serializers():
            model = getattr(cls.Meta, "model", None)
            if model is None or model is Membership:
                continue
            rows = list(model._default_manager.all()[:5])
            cls()._read_plan()  # plans the class
            if cls not in _UNBOUND_PLANS:  # a field binds: DRF renders the page
                assert cls.represent_rows(rows) is None, cls.__qualname__
                continue
            drf = [dict(row) for row in cls(rows, many=True).data]
            ours = cls.represent_rows(rows)
            assert ours == drf, cls.__qualname__
            assert [list(row) for row in ours] == [list(row) for row in drf]  # key order
            if rows:
                assert cls.represent_rows([*rows, {"id": 1}]) is None  # a row not of the model
                compared.add(cls.__qualname__)
    assert len(compared) >= 15, sorted(compared)


def test_a_class_that_shows_rows_or_lists_its_own_way_is_rendered_by_drf(
    tree_a: TenantTree,
) -> None:
    from crm.api.records import VisitSerializer
    from crm.models import Visit
    from tests import records

    class Shouting(VisitSerializer):
        def to_representation(self, instance: Any) -> Any:
            return {"purpose": instance.purpose.upper()}

    class Marked(VisitSerializer):
        def to_representation(self, instance: Any) -> Any:
            return {**super().to_representation(instance), "marked": True}

    class OwnList(serializers.ListSerializer[Any]):
        pass

    class Listed(VisitSerializer):
        class Meta(VisitSerializer.Meta):
            list_serializer_class = OwnList

    with tenant_scope(tree_a.tenant):
        records.visit(tree_a)
        rows = list(Visit.objects.all())
        VisitSerializer(rows, many=True).data  # noqa: B018 - plans the class
        assert VisitSerializer.represent_rows(rows) == VisitSerializer(rows, many=True).data
        for cls in (Shouting, Listed):
            cls(rows, many=True).data  # noqa: B018
            assert cls.represent_rows(rows) is None, cls.__qualname__
        assert Shouting(rows, many=True).data == [{"purpose": "DEMO"}]
        # Its plan made (through super()), a row is still shown its own way, alone too.
        assert Marked(rows, many=True).data[0]["marked"] is True
        assert Marked.represent_rows(rows) is None
        assert Marked.represent(rows[0])["marked"] is True
        assert Shouting.represent(rows[0]) == {"purpose": "DEMO"}


MOMENT_ZONES = [
    "UTC",
    "Asia/Shanghai",
    "America/New_York",
    "Europe/London",  # a zero offset that is not UTC: Z, as DRF writes it
    "America/St_Johns",  # a half-hour offset, negative
    "Africa/Monrovia",  # an offset with seconds until 1972 (-00:44:30)
    "Asia/Kolkata",
]


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
    | st.datetimes(
        min_value=datetime(1850, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(MOMENT_ZONES),
)
def test_a_moment_is_written_as_drf_writes_it(moment: datetime, zone: str) -> None:
    """The written-out renderers write a moment with orjson where its text is DRF's, and
    with ``isoformat`` where it is not (an offset with seconds): DRF's text either way,
    for an instance and for a row of columns."""
    from zoneinfo import ZoneInfo

    field = serializers.DateTimeField()
    plan: Plan = [("at", field, _MOMENT, "at")]
    shown_in = ZoneInfo(zone)
    with timezone.override(shown_in):
        try:
            expected: Any = field.to_representation(moment)
        except OverflowError:
            expected = OverflowError
        for render, row in (
            (_renderer(plan), _Row(at=moment)),
            (_compile(plan, {"at": 0}), (moment,)),
            (lambda row, zone: _render(plan, row, zone), _Row(at=moment)),
        ):
            try:
                shown: Any = render(row, (shown_in,))["at"]
            except OverflowError:
                shown = OverflowError
            assert shown == expected, (moment, zone)


def test_moments_orjson_would_write_otherwise_are_written_by_isoformat() -> None:
    from zoneinfo import ZoneInfo

    field = serializers.DateTimeField()
    plan: Plan = [("at", field, _MOMENT, "at")]
    cases = {
        ("Asia/Shanghai", datetime(1890, 6, 1, tzinfo=UTC)): "1890-06-01T08:05:43+08:05:43",
        ("Africa/Monrovia", datetime(1971, 6, 1, tzinfo=UTC)): "1971-05-31T23:15:30-00:44:30",
        ("Europe/London", datetime(2026, 1, 5, 9, 0, tzinfo=UTC)): "2026-01-05T09:00:00Z",
        ("America/St_Johns", datetime(2026, 1, 5, 9, 0, 0, 5, tzinfo=UTC)): (
            "2026-01-05T05:30:00.000005-03:30"
        ),
        # Not in UTC, and in the zone's own offset with seconds: its seconds stay, yet
        # the offset has seconds (told by the offset itself).
        ("Asia/Shanghai", datetime(1890, 6, 1, tzinfo=ZoneInfo("Asia/Shanghai"))): (
            "1890-06-01T00:00:00+08:05:43"
        ),
        ("Africa/Monrovia", datetime(1971, 6, 1, 12, tzinfo=ZoneInfo("Asia/Shanghai"))): (
            "1971-06-01T03:15:30-00:44:30"
        ),
    }
    for (zone, moment), text in cases.items():
        with timezone.override(ZoneInfo(zone)):
            assert field.to_representation(moment) == text  # DRF's
            assert _compile(plan, {"at": 0})((moment,), (ZoneInfo(zone),))["at"] == text


@pytest.mark.parametrize("zone", ["UTC", "datetime.UTC", "Etc/UTC"])
def test_a_moment_read_in_utc_and_shown_in_utc_is_written_as_drf_writes_it(zone: str) -> None:
    """Shown in UTC (``ZoneInfo("UTC")``: a steady offset, or ``datetime.UTC``), a
    moment read from the database (in ``datetime.UTC``) is written as DRF writes it:
    with or without microseconds, at either end of the calendar, and for a moment in
    another UTC object (the usual way)."""
    from zoneinfo import ZoneInfo

    shown_in: Any = UTC if zone == "datetime.UTC" else ZoneInfo(zone)
    field = serializers.DateTimeField()
    plan: Plan = [("at", field, _MOMENT, "at")]
    moments = [
        datetime(2026, 12, 7, 0, 58, 7, 878624, tzinfo=UTC),
        datetime(2026, 12, 7, 0, 58, 7, tzinfo=UTC),
        datetime(1, 1, 2, tzinfo=UTC),
        datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 7, 0, 58, 7, 5, tzinfo=ZoneInfo("UTC")),
        datetime(2026, 12, 7, 8, 58, 7, tzinfo=ZoneInfo("Asia/Shanghai")),
    ]
    with timezone.override(shown_in):
        for moment in moments:
            expected = field.to_representation(moment)
            assert expected.endswith("Z"), expected
            assert _compile(plan, {"at": 0})((moment,), (shown_in,))["at"] == expected
            assert _renderer(plan)(_Row(at=moment), (shown_in,))["at"] == expected


def test_a_zone_in_one_offset_since_its_last_change_shows_later_moments_by_that_offset() -> None:
    """China has kept +08:00 since 1991, India +05:30 since 1945, Liberia zero since 1972:
    a moment in UTC from then on is moved by the offset and the offset written after it;
    earlier ones, and zones with daylight saving time, take the zone's conversion. Either
    way the text is DRF's, and past the calendar's end DRF's error."""
    from zoneinfo import ZoneInfo

    from tenancy.api.serializers import _steady

    shanghai = _steady(ZoneInfo("Asia/Shanghai"))
    assert shanghai is not None
    assert (shanghai[0].year, shanghai[1:]) == (1991, (timedelta(hours=8), "+08:00"))
    assert _steady(ZoneInfo("Asia/Kolkata"))[1:] == (timedelta(hours=5, minutes=30), "+05:30")  # type: ignore[index]
    assert _steady(ZoneInfo("Africa/Monrovia"))[2] == "Z"  # type: ignore[index]
    assert _steady(ZoneInfo("Etc/GMT+5"))[1:] == (timedelta(hours=-5), "-05:00")  # type: ignore[index]
    assert _steady(ZoneInfo("America/New_York")) is None  # daylight saving time
    assert _steady(UTC) is None  # not a zone of the database

    field = serializers.DateTimeField()
    plan: Plan = [("at", field, _MOMENT, "at")]
    cases = {
        ("Asia/Shanghai", datetime(2026, 12, 7, 0, 58, 7, 878624, tzinfo=UTC)),
        ("Asia/Shanghai", datetime(2026, 12, 7, 16, 0, tzinfo=UTC)),  # the next day there
        ("Asia/Shanghai", datetime(1991, 9, 14, 12, tzinfo=UTC)),  # summer time, +09:00
        ("Asia/Kolkata", datetime(2000, 2, 29, 23, 45, tzinfo=UTC)),
        ("Africa/Monrovia", datetime(1999, 1, 1, tzinfo=UTC)),
        ("Africa/Monrovia", datetime(1971, 6, 1, tzinfo=UTC)),  # -00:44:30 then
        ("Etc/GMT+5", datetime(1, 1, 2, 3, tzinfo=UTC)),
    }
    for zone, moment in cases:
        with timezone.override(ZoneInfo(zone)):
            expected = field.to_representation(moment)
            shown = _compile(plan, {"at": 0})((moment,), (ZoneInfo(zone),))["at"]
            assert shown == expected, (zone, moment)
    late = datetime(9999, 12, 31, 20, tzinfo=UTC)
    errors = []
    with timezone.override(ZoneInfo("Asia/Shanghai")):
        for show in (
            lambda: field.to_representation(late),
            lambda: _compile(plan, {"at": 0})((late,), (ZoneInfo("Asia/Shanghai"),)),
        ):
            with pytest.raises(Exception) as raised:  # noqa: PT011 - compared below
                show()
            errors.append((type(raised.value), str(raised.value)))
    assert errors[0] == errors[1] and "out of range" in errors[0][1], errors


def test_a_date_is_shown_as_its_field_shows_it() -> None:
    """A date of DRF's ``DateField`` in ISO 8601 is written as its ``isoformat`` in place;
    a field with a format of its own, a subclass, or a value that is not a date, is
    shown by the field."""
    from datetime import date

    class Shouting(serializers.DateField):
        def to_representation(self, value: Any) -> Any:
            return str(super().to_representation(value)).upper() + "!"

    plan: Plan = [
        ("iso", serializers.DateField(), _COLUMN, "day"),
        ("own", serializers.DateField(format="%d/%m/%Y"), _COLUMN, "day"),
        ("none", serializers.DateField(format=None), _COLUMN, "day"),
        ("sub", Shouting(), _COLUMN, "day"),
    ]
    for day in (date(2026, 12, 6), date(1, 1, 1), "2026-12-06"):
        row = _Row(day=day)
        ours, loop = _both(plan, row, None)
        assert ours == loop
    assert dict(ours)["iso"] == "2026-12-06" and dict(
        _both(plan, _Row(day=date(2026, 12, 6)), None)[0]
    ) == {
        "iso": "2026-12-06",
        "own": "06/12/2026",
        "none": date(2026, 12, 6),
        "sub": "2026-12-06!",
    }


def test_a_change_of_drfs_settings_makes_the_plans_again(tree_a: TenantTree) -> None:
    """An id is shown as a number; with DRF's ``COERCE_BIGINT_TO_STRING`` as text, also
    when a plan was written out before the setting changed (and as a number after)."""
    from django.conf import settings as django_settings
    from django.test import override_settings

    from crm.api.records import VisitSerializer
    from crm.models import Visit
    from tests import records

    def shown(rows: list[Visit]) -> tuple[Any, Any]:
        """The rows as DRF shows them (which plans the class under the settings in force),
        then as ``represent_rows`` does."""
        drf = VisitSerializer(rows, many=True).data
        return VisitSerializer.represent_rows(rows), drf

    with tenant_scope(tree_a.tenant):
        visit = records.visit(tree_a)
        rows = list(Visit.objects.filter(pk=visit.pk))
        ours, drf = shown(rows)
        assert ours is not None and ours[0]["id"] == visit.pk and ours == drf
        found = VisitSerializer._row_renderer()  # found once per class plan
        assert found is not None and VisitSerializer._row_renderer() is found
        text = {**django_settings.REST_FRAMEWORK, "COERCE_BIGINT_TO_STRING": True}
        with override_settings(REST_FRAMEWORK=text):
            ours, drf = shown(rows)
            assert ours is not None and ours[0]["id"] == str(visit.pk) and ours == drf
            assert VisitSerializer._row_renderer() is not found  # the new plan's
        ours, drf = shown(rows)
        assert ours is not None and ours[0]["id"] == visit.pk and ours == drf
