"""The API's model serializers build their fields once per class (issue #11 item 8):
every instance still gets fields of its own, bound to itself, equal to DRF's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import get_resolver
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from tenancy.api.serializers import ModelSerializer
from tenancy.api.views import MemberSerializer, UserSerializer
from tenancy.models import Membership, OrgUnit
from tenancy.scope import tenant_scope
from tests.factories import TenantTree


class Shouting(serializers.CharField):
    """A field that renders with its serializer: it reads the context's ``mark``."""

    def to_representation(self, value: Any) -> str:
        return f"{value}{self.context.get('mark', '')}"


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


#: The apps whose serializers make the API (a test's own subclasses, which the class
#: plans keep alive, are not among them).
APPS = {"crm", "tenancy", "funnel", "targets", "incentives", "integrations", "web"}


def _api_serializers() -> list[type[Any]]:
    get_resolver().url_patterns  # noqa: B018 - imports every API module
    classes = {
        cls for cls in _all_subclasses(ModelSerializer) if cls.__module__.split(".")[0] in APPS
    }
    return sorted(classes, key=lambda cls: cls.__qualname__)


def test_every_model_serializer_of_the_api_uses_the_prototype() -> None:
    direct = {
        cls
        for cls in _all_subclasses(serializers.ModelSerializer)
        if cls.__module__.split(".")[0] in APPS and not issubclass(cls, ModelSerializer)
    }
    assert direct == set()
    assert len(_api_serializers()) >= 40


@pytest.mark.parametrize("cls", _api_serializers(), ids=lambda cls: cls.__qualname__)
def test_fields_equal_drf_and_belong_to_their_instance(cls: type[Any]) -> None:
    first, second = cls(), cls()
    built_by_drf = serializers.ModelSerializer.get_fields(cls())
    if cls.get_fields is ModelSerializer.get_fields:
        # Without a per-request adjustment, the prototype's copies are DRF's fields.
        assert {name: repr(field) for name, field in first.fields.items()} == {
            name: repr(field) for name, field in built_by_drf.items()
        }
    for name, field in first.fields.items():
        other = second.fields[name]
        assert field is not other
        assert field.parent is first and other.parent is second
        assert field.field_name == name
        for child in ("child", "child_relation"):
            if hasattr(field, child):
                assert getattr(field, child) is not getattr(other, child)
                assert getattr(field, child).parent is field


def test_a_per_request_queryset_stays_on_its_instance(tree_a: TenantTree) -> None:
    """MemberSerializer opens ``org_unit`` to the caller's visible units when the request
    writes (none without a caller or on a read): that never reaches another instance."""
    factory = APIRequestFactory()
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        request = factory.post("/")  # a write: the related fields are narrowed then
        request.membership = Membership.objects.select_related("org_unit").get(pk=rep.pk)  # type: ignore[attr-defined]
        narrowed: Any = MemberSerializer(context={"request": request}).fields["org_unit"]
        plain: Any = MemberSerializer().fields["org_unit"]
        visible = set(narrowed.get_queryset().values_list("pk", flat=True))
        every = set(plain.get_queryset().values_list("pk", flat=True))
        assert visible == {rep.org_unit_id}
        assert every == set()
        again: Any = MemberSerializer().fields["org_unit"]
        assert set(again.get_queryset().values_list("pk", flat=True)) == set()
        read = factory.get("/")
        read.membership = request.membership  # type: ignore[attr-defined]
        on_read: Any = MemberSerializer(context={"request": read}).fields["org_unit"]
        assert set(on_read.get_queryset().values_list("pk", flat=True)) == set()
        assert OrgUnit.objects.count() > 1
        # Rendered through the prototype, a member reads as DRF renders it.
        member = Membership.objects.get(pk=rep.pk)
        member.managed_links = []  # type: ignore[attr-defined]
        ours = MemberSerializer(member, context={"request": request}).data
        drf = serializers.ModelSerializer.get_fields(MemberSerializer())
        assert set(ours) == set(drf)
        assert ours["org_unit"] == rep.org_unit_id and ours["role"] == rep.role


ZONES = ["UTC", "Asia/Shanghai", "America/New_York"]


def test_every_serializer_renders_rows_as_drf_does(tree_a: TenantTree) -> None:
    """The read plan (a column read directly, a foreign key as its id) gives DRF's output
    for every API serializer over rows of every kind the fixtures make."""
    from tests import records

    factory = APIRequestFactory()
    admin = tree_a.members["admin"]
    compared: set[str] = set()
    with tenant_scope(tree_a.tenant):
        records.one_of_each(tree_a)
        request = factory.get("/")
        request.membership = Membership.objects.select_related("tenant").get(pk=admin.pk)  # type: ignore[attr-defined]
        for cls, zone in ((c, z) for c in _api_serializers() for z in ZONES):
            model = cls.Meta.model
            rows = list(model._default_manager.all()[:5])
            for row in rows:
                for name in ("managed_links",):
                    setattr(row, name, [])
                with timezone.override(zone):  # moments shown in the request's zone
                    ours = cls(row, context={"request": request})
                    drf = cls(row, context={"request": request})
                    try:
                        expected = serializers.Serializer.to_representation(drf, row)
                    except Exception as error:  # noqa: BLE001 - ours must fail alike
                        with pytest.raises(type(error)):
                            ours.to_representation(row)
                        continue
                    assert ours.to_representation(row) == expected, (cls.__qualname__, zone)
                compared.add(cls.__qualname__)
    assert len(compared) >= 20, sorted(compared)


def test_filter_sets_copy_their_filters_per_request() -> None:
    """Filters are copied shallowly per filter set, each with its own ``extra`` and form
    field, bound to its own filter set; django-filter's lookups are unchanged."""
    from crm.api.records import ContactFilter, OpportunityFilter
    from crm.models import Contact, Opportunity

    first = OpportunityFilter(data={"status": "open"}, queryset=Opportunity.objects.none())
    second = OpportunityFilter(data={"status": "won"}, queryset=Opportunity.objects.none())
    assert set(first.filters) == set(OpportunityFilter.base_filters)
    for name, filter_ in first.filters.items():
        other = second.filters[name]
        assert filter_ is not other and filter_.parent is first and other.parent is second
        assert filter_.extra is not other.extra
        assert filter_.extra == OpportunityFilter.base_filters[name].extra
        assert filter_.field is not other.field
        if filter_.method is not None:  # calls back its own filter set's method
            assert filter_.filter.f is filter_ and other.filter.f is other
    assert first.filters["org_unit"].method == "filter_org_unit"
    assert first.form.is_valid() and second.form.is_valid()
    assert (first.form.cleaned_data["status"], second.form.cleaned_data["status"]) == (
        "open",
        "won",
    )
    # A related filter's form field takes its queryset on the copy, never on the class.
    contacts = ContactFilter(data={}, queryset=Contact.objects.none())
    assert "queryset" in contacts.filters["customer"].extra
    assert contacts.filters["customer"].field.queryset is not None
    assert "_field" not in ContactFilter.base_filters["customer"].__dict__


def test_filters_and_fields_are_copied_as_copy_copies_them() -> None:
    """Every filter of every filter set of the API, and every field of every API
    serializer, is copied as ``copy.copy`` copies it (the same class and attributes, a
    new object); a class with a copy protocol of its own, or slots, is copied by
    ``copy.copy`` (``tenancy.copying``)."""
    import copy

    from crm.api import records  # noqa: F401 - the API's filter sets
    from tenancy.api.filters import TenantFilterSet
    from tenancy.api.serializers import copied_deep
    from tenancy.copying import copied_by_dict, shallow_copy

    def subclasses(cls: type) -> list[type]:
        return [cls, *(sub for direct in cls.__subclasses__() for sub in subclasses(direct))]

    originals: list[Any] = [
        filter_
        for filterset in subclasses(TenantFilterSet)
        for filter_ in filterset.base_filters.values()  # type: ignore[attr-defined]
    ]
    filters = len(originals)
    for cls in _api_serializers():
        originals += [field for field in cls().fields.values() if not copied_deep(field)]
    assert filters >= 30 and len(originals) - filters >= 200
    for original in originals:
        ours, theirs = shallow_copy(original), copy.copy(original)
        assert type(ours) is type(theirs) and ours is not original
        assert ours.__dict__ == theirs.__dict__ == original.__dict__
        assert copied_by_dict(type(original))

    class Own:
        def __init__(self) -> None:
            self.made = 1

        def __copy__(self) -> Own:
            return self

    class Reduced(Own):
        __copy__ = None  # type: ignore[assignment]

        def __reduce_ex__(self, protocol: Any) -> Any:
            return (dict, ())  # a copy made by the protocol is a dict

    class Slotted:
        __slots__ = ("made",)

        def __init__(self) -> None:
            self.made = 1

    own, reduced, slotted = Own(), Reduced(), Slotted()
    assert shallow_copy(own) is own
    assert shallow_copy(reduced) == {}
    assert shallow_copy(slotted) is not slotted and shallow_copy(slotted).made == 1
    assert not any(copied_by_dict(cls) for cls in (Own, Reduced, Slotted))


def test_a_filter_set_copies_a_filter_when_it_is_first_read() -> None:
    import django_filters

    from crm.api.records import OpportunityFilter
    from crm.models import Opportunity

    none = Opportunity.objects.none()
    OpportunityFilter(data={"status": "open"}, queryset=none).qs  # noqa: B018 - the form class
    given = OpportunityFilter(data={"status": "open"}, queryset=none)
    assert given.is_valid() and given.qs is not None
    copies: Any = given.filters
    assert set(copies._copies) == {"status"}  # the one the request names
    assert len(copies) == len(OpportunityFilter.base_filters) and "closed" in copies
    assert list(copies) == list(OpportunityFilter.base_filters)
    assert copies["closed"] is copies["closed"] is not OpportunityFilter.base_filters["closed"]
    with pytest.raises(KeyError):
        copies["nope"]  # noqa: B018
    with pytest.raises(KeyError):
        del copies["nope"]
    extra = django_filters.CharFilter(field_name="name")
    copies["named"] = extra
    assert copies["named"] is extra and list(copies)[-1] == "named"
    del copies["closed"]
    assert "closed" not in copies and len(copies) == len(OpportunityFilter.base_filters)
    assert {name: f.parent for name, f in copies.items() if name != "named"} == {
        name: given for name in copies if name != "named"
    }


def test_a_filter_sets_form_class_is_made_once_and_speaks_the_callers_language(
    tree_a: TenantTree, client_for: Any
) -> None:
    from crm.api.records import OpportunityFilter
    from crm.models import Opportunity

    first = OpportunityFilter(data={"status": "open"}, queryset=Opportunity.objects.none())
    second = OpportunityFilter(data={"status": "bogus"}, queryset=Opportunity.objects.none())
    assert first.get_form_class() is second.get_form_class()
    assert first.form is not second.form and first.form.is_valid()
    assert not second.form.is_valid()
    client = client_for(tree_a.members["admin"])
    messages: dict[str, set[str]] = {}
    for language in ("zh-hans", "en", "zh-hans"):
        response = client.get(
            "/api/v1/opportunities/", {"status": "bogus"}, HTTP_ACCEPT_LANGUAGE=language
        )
        assert response.status_code == 400
        messages.setdefault(language, set()).add(str(response.json()))
    assert len(messages["zh-hans"]) == 1 and messages["zh-hans"] != messages["en"]
    assert "bogus" in next(iter(messages["en"])) and "Select a valid choice" in str(messages["en"])


def test_a_filter_sets_validation_form_holds_the_given_filters_only() -> None:
    """A request's form holds the filters its query names (a range by either of its two
    parameters) and the required ones; the absent ones filter nothing anyway. The full
    form stays on ``form`` (the browsable API's dialog)."""
    import django_filters

    from crm.api.records import OpportunityFilter
    from crm.models import Opportunity
    from tenancy.api.filters import TenantFilterSet

    none = Opportunity.objects.none()
    given = OpportunityFilter(data={"status": "open", "closed_after": "2026-01-01"}, queryset=none)
    assert given.is_valid()
    assert set(given.form.cleaned_data) == {"status", "closed"}
    assert given.form.cleaned_data["status"] == "open"
    assert given.form.cleaned_data["closed"].start is not None
    bad = OpportunityFilter(data={"status": "bogus", "page_size": "5"}, queryset=none)
    assert not bad.is_valid() and set(bad.errors) == {"status"}
    nothing = OpportunityFilter(data={"page": "2"}, queryset=none)
    assert nothing.is_valid() and set(nothing.form.cleaned_data) == set()
    assert nothing.qs.query.where.children == none.query.where.children  # no filter added
    assert nothing.qs is not none and given.qs is not none  # a queryset of its own
    assert nothing.qs is nothing.qs
    shown = OpportunityFilter(data={"status": "open"}, queryset=none)
    assert set(shown.form.fields) == set(OpportunityFilter.base_filters)  # not validated

    class NeedsStatus(TenantFilterSet):
        status = django_filters.ChoiceFilter(
            field_name="stage__kind", choices=[("open", "open")], required=True
        )

        class Meta:
            model = Opportunity
            fields = ["owner"]

    missing = NeedsStatus(data={"page": "1"}, queryset=none)
    assert not missing.is_valid() and set(missing.errors) == {"status"}


@pytest.mark.parametrize(
    "data",
    [
        {"status": "open", "closed_after": "2026-01-01", "closed_before": "2026-02-01"},
        {"closed_after": "2026-13-01"},
        {"created_after": "2026-01-01T08:00:00+08:00", "updated_since": "yesterday"},
        {"org_unit": "x", "status": "lost"},
        {"expected_close_before": "2026-06-30", "page": "2"},
    ],
)
def test_the_validation_form_shares_its_fields_and_validates_as_the_full_form(
    data: dict[str, str],
) -> None:
    """The narrowed form's instances use its class's fields (validating changes none of
    them) with a dict of their own, and clean what the full form cleans."""
    from django.http import QueryDict

    from crm.api.records import OpportunityFilter
    from crm.models import Opportunity
    from tenancy.api.filters import _CheckedParameters, _given_fields_form

    query = QueryDict(mutable=True)
    query.update(data)
    none = Opportunity.objects.none()
    OpportunityFilter(data=query, queryset=none).is_valid()  # makes the form class
    form_class = _given_fields_form(OpportunityFilter(queryset=none).get_form_class(), query, None)
    assert form_class.checked_without_form  # it only cleans its fields
    forms = [form_class(query) for _ in range(2)]
    valid = {form.is_valid() for form in forms}
    assert forms[0].fields is not forms[1].fields
    for name, field in forms[0].fields.items():
        assert field is type(forms[0]).base_fields[name] is forms[1].fields[name]
    full = OpportunityFilter(data=query, queryset=none).form  # deep-copies, as Django does
    assert full.fields["status"] is not type(full).base_fields["status"]
    assert valid == {full.is_valid()}
    assert forms[0].errors == full.errors
    if full.is_valid():
        given = set(forms[0].fields)
        assert forms[0].cleaned_data == {k: v for k, v in full.cleaned_data.items() if k in given}
        assert all(full.cleaned_data[k] in (None, "", []) or k in given for k in full.cleaned_data)
    # What a request's filter set validates with, without the form: the same.
    checked = _CheckedParameters(form_class, query, None)
    assert checked.is_valid() == forms[0].is_valid()
    assert checked.errors == forms[0].errors
    assert checked.errors.as_data() == forms[0].errors.as_data() or not checked.errors
    assert checked.cleaned_data == forms[0].cleaned_data
    filterset = OpportunityFilter(data=query, queryset=none)
    assert filterset.is_valid() == forms[0].is_valid()
    assert isinstance(filterset.form, _CheckedParameters)


def test_a_moment_with_its_own_format_or_zone_is_shown_by_drf(tree_a: TenantTree) -> None:
    """Two serializers of one model and source differ only in a DateTimeField's format or
    zone: each is shown as its own field says, not as the other was planned."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from crm.models import Customer

    class Plain(ModelSerializer[Customer]):
        class Meta:
            model = Customer
            fields = ["id", "created_at"]

    class Dated(ModelSerializer[Customer]):
        created_at = serializers.DateTimeField(format="%Y-%m-%d")

        class Meta:
            model = Customer
            fields = ["id", "created_at"]

    class Zoned(ModelSerializer[Customer]):
        created_at = serializers.DateTimeField(default_timezone=ZoneInfo("Asia/Tokyo"))

        class Meta:
            model = Customer
            fields = ["id", "created_at"]

    row = Customer(id=7, created_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    with timezone.override("Asia/Shanghai"):
        assert Plain(row).data["created_at"] == "2026-03-02T07:30:00+08:00"
        assert Dated(row).data["created_at"] == "2026-03-02"
        assert Zoned(row).data["created_at"] == "2026-03-02T08:30:00+09:00"
    with timezone.override("UTC"):
        assert Plain(row).data["created_at"] == "2026-03-01T23:30:00Z"


def test_a_cached_filter_form_validates_each_tenants_own_ids(
    tree_a: TenantTree, tree_b: TenantTree, client_for: Any
) -> None:
    """The contacts' ``customer`` filter's form class is made by the first request (one
    tenant's); another tenant's request filters by its own customer and never by the
    first tenant's."""
    from tests import records

    made = {}
    for tree in (tree_a, tree_b):
        with tenant_scope(tree.tenant):
            contact = records.contact(tree)
            made[tree.tenant.slug] = (contact.pk, contact.customer_id)
    for tree in (tree_a, tree_b, tree_a):
        client = client_for(tree.members["admin"])
        contact_id, customer_id = made[tree.tenant.slug]
        own = client.get("/api/v1/contacts/", {"customer": customer_id})
        assert own.status_code == 200, own.content
        assert [row["id"] for row in own.json()["results"]] == [contact_id]
        other = next(v for k, v in made.items() if k != tree.tenant.slug)
        foreign = client.get("/api/v1/contacts/", {"customer": other[1]})
        assert foreign.status_code == 400  # not a customer this tenant has


def test_the_class_plan_keeps_per_request_fields_and_contexts() -> None:
    """A read shares its class's plan; a field that renders with its serializer (here,
    with the request's context) is still bound to each instance, and a class that changes
    its fields per request on reads plans its own fields every time."""
    from crm.models import Customer

    class Named(ModelSerializer[Customer]):
        name = Shouting()

        class Meta:
            model = Customer
            fields = ["id", "name", "owner"]

    class Trimmed(Named):
        def get_fields(self) -> dict[str, Any]:
            fields = super().get_fields()
            if self.context.get("hide_owner"):
                del fields["owner"]
            return fields

    row = Customer(id=3, name="Acme", owner_id=9)
    assert Named(row, context={"mark": "!"}).data == {"id": 3, "name": "Acme!", "owner": 9}
    assert Named(row, context={"mark": "?"}).data == {"id": 3, "name": "Acme?", "owner": 9}
    assert Named(row).data == {"id": 3, "name": "Acme", "owner": 9}
    assert Trimmed(row).data == {"id": 3, "name": "Acme", "owner": 9}
    assert Trimmed(row, context={"hide_owner": True}).data == {"id": 3, "name": "Acme"}
    built = Named(row)
    assert set(built.fields) == {"id", "name", "owner"}  # fields built first: its own plan
    assert built.data == {"id": 3, "name": "Acme", "owner": 9}


def test_decimals_are_shown_as_drf_shows_them() -> None:
    """A decimal of the field's scale is shown as it is; any other goes through DRF's
    quantizing (rounded, padded, refused when too long) with the same text."""
    from decimal import Decimal, InvalidOperation

    from tenancy.api.serializers import _decimal_text

    money = serializers.DecimalField(max_digits=6, decimal_places=2)
    free = serializers.DecimalField(max_digits=None, decimal_places=None)
    for field in (money, free):
        for raw in ("12.30", "12.3", "12", "-0.005", "0.125", "9999.99", "NaN", "1E+2"):
            value = Decimal(raw)
            assert _decimal_text(value, field) == field.to_representation(value), (field, raw)
    with pytest.raises(InvalidOperation):
        money.to_representation(Decimal("12345.67"))
    with pytest.raises(InvalidOperation):
        _decimal_text(Decimal("12345.67"), money)


def test_a_nested_row_renders_along_its_class_plan_and_keeps_drfs_output() -> None:
    """A nested serializer of a forward foreign key whose fields all render alone is shown
    along its class's plan (no copy per request); one that needs its instance (a field
    reading the context) still takes DRF's path; a missing row is None."""
    from django.contrib.auth import get_user_model

    from tenancy.api.serializers import _NESTED, _SHARED_PLANS

    user_model = get_user_model()

    class LoudUser(ModelSerializer[Any]):
        username = Shouting()

        class Meta:
            model = user_model
            fields = ["id", "username"]

    class Unit(ModelSerializer[OrgUnit]):
        class Meta:
            model = OrgUnit
            fields = ["id", "name", "updated_at"]

    class Member(ModelSerializer[Membership]):
        user = UserSerializer(read_only=True)
        loud = LoudUser(read_only=True, source="user")
        org_unit = Unit(read_only=True)

        class Meta:
            model = Membership
            fields = ["id", "user", "loud", "org_unit"]

    moment = timezone.now().replace(microsecond=0)
    user = user_model(id=5, username="li", first_name="Li", last_name="Wei", email="li@x.cn")
    unit = OrgUnit(id=7, name="华东 East", updated_at=moment)
    member = Membership(id=3, user=user, org_unit=unit)
    with timezone.override("Asia/Shanghai"):
        shown = Member(member, context={"mark": "!"}).data
        expected_unit = Unit(unit).data
    assert shown["user"] == UserSerializer(user).data
    assert shown["user"]["last_name"] == "Wei"
    assert shown["loud"] == {"id": 5, "username": "li!"}  # the context reached it
    assert shown["org_unit"] == expected_unit
    assert shown["org_unit"]["updated_at"].endswith("+08:00")
    kinds = {name: how for name, _field, how, _attname in _SHARED_PLANS[Member]}
    assert kinds["user"] == _NESTED and kinds["org_unit"] == _NESTED
    assert kinds["loud"] != _NESTED
    assert Member(Membership(id=4, user=user, org_unit=None)).data["org_unit"] is None


def test_represent_is_data_with_or_without_a_serializer() -> None:
    """``represent`` gives ``.data``: along the class plan when it binds no field, through
    an instance otherwise (a field reading the context, a row that is not the model's)."""
    from crm.models import Customer
    from tenancy.api.views import TenantSerializer
    from tenancy.models import Tenant

    class Loud(ModelSerializer[Customer]):
        name = Shouting()

        class Meta:
            model = Customer
            fields = ["id", "name", "updated_at"]

    moment = timezone.now().replace(microsecond=0)
    tenant = Tenant(id=2, name="Acme 顶点", slug="acme", time_zone="Asia/Shanghai")
    customer = Customer(id=3, name="Lanhai", updated_at=moment)
    for zone in ("UTC", "Asia/Shanghai"):
        with timezone.override(zone):
            for _ in range(2):  # the first call plans the class, the second renders alone
                assert TenantSerializer.represent(tenant) == TenantSerializer(tenant).data
                assert Loud.represent(customer, {"mark": "!"}) == dict(
                    Loud(customer, context={"mark": "!"}).data
                )
            assert Loud.represent(customer, {"mark": "!"})["name"] == "Lanhai!"
    as_dict: Any = {"id": 2, "name": "Acme", "slug": "acme"}
    assert TenantSerializer.represent(as_dict) == dict(TenantSerializer(as_dict).data)


def test_a_property_is_read_as_drf_reads_it() -> None:
    """A read-only scalar field of a model's property renders alone, with DRF's output:
    a value, an override, a missing related row (None); a property raising
    AttributeError leaves the field out, as DRF does."""
    from crm.models import Opportunity, Stage
    from tenancy.api.serializers import _PROPERTY, _SHARED_PLANS, _render

    class Deal(ModelSerializer[Opportunity]):
        probability = serializers.IntegerField(read_only=True)
        forecast_category = serializers.CharField(read_only=True)
        nullable = serializers.IntegerField(read_only=True, allow_null=True, source="probability")

        class Meta:
            model = Opportunity
            fields = ["id", "probability", "forecast_category", "nullable"]

    stage = Stage(id=1, probability=40, forecast_category="pipeline")
    rows = [
        Opportunity(id=1, stage=stage),
        Opportunity(id=2, stage=stage, probability_override=90, forecast_category_override="x"),
        Opportunity(id=3),  # no stage: the properties find no related row
    ]
    for row in rows:
        assert Deal(row).data == serializers.Serializer.to_representation(Deal(), row)
    assert Deal(rows[1]).data["probability"] == 90
    assert Deal(rows[2]).data["probability"] is None
    kinds = {name: how for name, _field, how, _attname in _SHARED_PLANS[Deal]}
    assert kinds["probability"] == kinds["forecast_category"] == _PROPERTY
    assert kinds["nullable"] != _PROPERTY

    class Broken:
        @property
        def score(self) -> int:
            raise AttributeError("score")

    plan: list[tuple[str, Any, int, str | None]] = [
        ("score", serializers.IntegerField(read_only=True), _PROPERTY, "score")
    ]
    assert _render(plan, Broken(), (None,)) == {}


@settings(max_examples=400, deadline=None)
@given(
    value=st.decimals(allow_nan=True, allow_infinity=True, places=None)
    | st.decimals(min_value=-(10**7), max_value=10**7, places=6)
    | st.decimals(min_value=-(10**7), max_value=10**7, places=2)
    | st.integers(min_value=-(10**12), max_value=10**12).map(Decimal),
    places=st.sampled_from([None, 0, 1, 2, 6]),
    digits=st.sampled_from([None, 1, 6, 9, 14]),
)
def test_any_decimal_is_shown_as_drf_shows_it(
    value: Decimal, places: int | None, digits: int | None
) -> None:
    from decimal import InvalidOperation

    from tenancy.api.serializers import _decimal_text

    if places is None and digits is not None:
        places = 0  # DRF wants places with digits
    if places is not None and digits is not None and places > digits:
        digits = places
    field = serializers.DecimalField(max_digits=digits, decimal_places=places)
    try:
        expected: Any = field.to_representation(value)
    except (InvalidOperation, ValueError) as error:
        expected = type(error)
    try:
        ours: Any = _decimal_text(value, field)
    except (InvalidOperation, ValueError) as error:
        ours = type(error)
    assert ours == expected
    # The written-out renderers (``_compile``) test the text first themselves: the same.
    from tenancy.api.serializers import _DECIMAL, _compile

    plan: list[tuple[str, Any, int, str | None]] = [("amount", field, _DECIMAL, "amount")]
    for render, row in (
        (_compile(plan), type("Row", (), {"amount": value})()),
        (_compile(plan, {"amount": 0}), (value,)),
    ):
        try:
            shown: Any = render(row, (None,))["amount"]
        except (InvalidOperation, ValueError) as error:
            shown = type(error)
        assert shown == expected


def _filter_sets() -> list[Any]:
    """Every filter set of the API's apps (imported with the URLs)."""
    from tenancy.api.filters import TenantFilterSet

    found: list[Any] = []
    stack = list(TenantFilterSet.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in APPS and cls._meta.model is not None:
            found.append(cls)  # not an abstract base (SyncFilterSet)
    return sorted(set(found), key=lambda cls: cls.__qualname__)


@pytest.mark.parametrize(
    "value", ["", "x", "1", "-3", "2026-01-01", "2026-01-01T08:00:00Z", "true"]
)
def test_every_filter_set_validates_a_parameter_without_its_form_as_with_it(
    tree_a: TenantTree, value: str
) -> None:
    """For each filter of every API filter set, given one value in each of its parameters:
    the validation without the form (``_CheckedParameters``) cleans and refuses what the
    narrowed form does (a filter whose choices depend on the request keeps the form)."""
    from django.http import QueryDict

    from tenancy.api.filters import _FORM_CLASSES, _CheckedParameters, _given_fields_form

    compared = 0
    with tenant_scope(tree_a.tenant):
        for filter_set in _filter_sets():
            model = filter_set._meta.model
            full_class: Any = filter_set(queryset=model._default_manager.none()).get_form_class()
            cached: Any = _FORM_CLASSES.get(filter_set)
            if cached is not full_class:
                continue  # made per request: validated by its form
            for name, field in full_class.base_fields.items():
                suffixes = getattr(field.widget, "suffixes", [""])
                query = QueryDict(mutable=True)
                for suffix in suffixes:
                    query[f"{name}_{suffix}" if suffix else name] = value
                form_class = _given_fields_form(full_class, query, None)
                form = form_class(query)
                checked = _CheckedParameters(form_class, query, None)
                assert checked.is_valid() == form.is_valid(), (filter_set, name, value)
                assert checked.errors == form.errors, (filter_set, name, value)
                assert checked.cleaned_data == form.cleaned_data, (filter_set, name, value)
                compared += 1
    assert compared > 50


def test_a_narrowed_form_kept_per_set_of_names_is_the_one_the_widgets_tell(
    tree_a: TenantTree,
) -> None:
    """The narrowed form is kept per set of parameter names when every widget tells an
    omitted value by the names alone; for every filter set and parameters naming none, one
    or two of its filters (a range by either end, other parameters beside), it has the
    fields the widgets tell, asked again each time. A widget that reads the values is
    asked on every request."""
    from django import forms
    from django.http import QueryDict

    from tenancy.api import filters

    def told(form_class: Any, query: QueryDict) -> set[str]:
        return {
            name
            for name, field in form_class.base_fields.items()
            if field.required or not field.widget.value_omitted_from_data(query, {}, name)
        }

    compared = 0
    with tenant_scope(tree_a.tenant):
        for filter_set in _filter_sets():
            model = filter_set._meta.model
            full_class: Any = filter_set(queryset=model._default_manager.none()).get_form_class()
            names = list(full_class.base_fields)
            queries: list[dict[str, str]] = [{}, {"page_size": "5", "ordering": "id"}]
            for name in names:
                suffixes = getattr(full_class.base_fields[name].widget, "suffixes", [""])
                for suffix in suffixes:
                    queries.append({f"{name}_{suffix}" if suffix else name: "1", "page": "2"})
            queries += [{a: "1", b: ""} for a, b in zip(names, names[1:], strict=False)]
            for raw in queries:
                query = QueryDict(mutable=True)
                query.update(raw)
                for _twice in range(2):  # made, then kept
                    form_class = filters._given_fields_form(full_class, query, None)
                    assert set(form_class.base_fields) == told(full_class, query), (
                        filter_set,
                        raw,
                    )
                compared += 1
            assert filters._BY_NAMES[full_class] is True, filter_set  # ours: all by names
    assert compared > 100

    class ByValue(forms.TextInput):
        def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
            return not data.get(name)  # an empty value counts as omitted

    class Form(forms.Form):
        kind = forms.CharField(required=False, widget=ByValue)

    assert not filters._omitted_by_names(ByValue())
    for value, fields in (("", set()), ("x", {"kind"}), ("", set())):
        query = QueryDict(mutable=True)
        query["kind"] = value
        assert set(filters._given_fields_form(Form, query, None).base_fields) == fields
    assert filters._BY_NAMES[Form] is False
