"""The API's model serializer: DRF's, with the fields built once per class.

DRF builds a ``ModelSerializer``'s fields on every instantiation: it walks the model's
fields, derives each serializer field's arguments (validators, choices, labels, related
querysets) and instantiates it, about 60 µs per field here, so 1–2 ms for a wide record
before a single row is read, on every request. Nothing in that work depends on the
request: the result is a function of the class (its ``Meta`` and declared fields).

So the first instance of each class builds its fields as DRF does and keeps them as a
prototype; later instances get copies of the prototype:

* a plain field is copied shallowly: ``bind()`` sets everything that belongs to one
  serializer (name, parent, source, label), and a field's other attributes are not
  changed after construction (a view that narrows a related field's ``queryset`` in
  ``get_fields`` assigns a new one on its copy; DRF's ``get_queryset`` clones it);
* a nested serializer, a many-related field and a list or dict field are deep-copied as
  DRF would: each holds a child bound to itself.

Subclasses that adjust fields per request (``get_fields`` calling ``super()``) keep
working: they receive fresh copies. ``tests/tenancy/test_serializer_fields.py`` checks
that every serializer of the API renders and validates the same with the prototype.

Rendering a row takes DRF's path for each field: ``get_attribute`` (walking the source,
testing for callables, for a foreign key wrapping the id in a stand-in object), then
``to_representation``. For a field that reads one concrete column of the model, the
walk always ends at ``getattr(row, column)``, so the serializer plans its readable
fields and reads such columns directly: a foreign key rendered as its id is the id
(``PrimaryKeyRelatedField`` without a ``pk_field``), a moment (a plain ``DateTimeField``
in ISO 8601) is shown in the request's time zone, read once per serializer where DRF
reads it for every value, and any other column goes through its field's
``to_representation``. A model property shown by one of DRF's read-only scalar fields
is read as DRF reads it (a missing related row is None, ``AttributeError`` leaves the
field out), and a nested serializer of a forward foreign key renders along its own
class's plan when that plan binds nothing. Every other field (methods, other nested
serializers, dotted sources) takes DRF's path. A row that is not an instance of the
model (a dict) is rendered by DRF entirely.

The plan is made once per class, when a read's fields would be the class's own (its
``get_fields`` is this one, or says it changes fields only on writes:
``fields_change_on_writes_only``): a read then never builds its fields at all. A column
of DRF's own field classes renders through the class's prototype (their
``to_representation`` reads nothing of the serializer); any other field gets a copy
bound to the instance, as before. Building and binding fields was most of ``/me/``.
``ModelSerializer.represent`` renders a row whose class plan binds nothing without
making a serializer at all, and such a plan is written out once as a function, a
statement per field (``_renderer``), instead of being walked for every row.
"""

from __future__ import annotations

import copy
import inspect
import keyword
import zoneinfo
import zoneinfo._zoneinfo as _zoneinfo_rules
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import orjson
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.signals import setting_changed
from django.db.models import Model
from django.dispatch import receiver
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.fields import SkipField, empty
from rest_framework.relations import (
    ManyRelatedField,
    PKOnlyObject,
    PrimaryKeyRelatedField,
    RelatedField,
)
from rest_framework.settings import api_settings

from tenancy.copying import shallow_copy
from tenancy.memo import remember
from tenancy.orm import ColumnRow, column_row_class, row_properties

M = TypeVar("M", bound=Model)

_PROTOTYPES: dict[type, dict[str, serializers.Field[Any, Any, Any, Any]]] = {}


def copied_deep(field: serializers.Field[Any, Any, Any, Any]) -> bool:
    """Whether ``_copy_field`` copies ``field`` deeply: it holds other fields (a nested
    serializer, a many-related field, a list's child), as DRF copies its fields."""
    return isinstance(field, (serializers.BaseSerializer, ManyRelatedField)) or hasattr(
        field, "child"
    )


def _copy_field(field: serializers.Field[Any, Any, Any, Any]) -> Any:
    return copy.deepcopy(field) if copied_deep(field) else shallow_copy(field)


#: How a planned field is read: through DRF, as a foreign key's id, as a column, as a
#: column holding a moment (shown in the request's time zone, ISO 8601, as DRF shows it),
#: as a column holding a decimal (shown as a string, as DRF shows it), as the row a
#: foreign key leads to, rendered along the nested serializer class's own plan.
#: And as a property of the model read by one of DRF's own read-only scalar fields.
_DRF, _ID, _COLUMN, _MOMENT, _DECIMAL, _NESTED, _PROPERTY = 0, 1, 2, 3, 4, 5, 6


def _plan_field(field: Any, model: type[Model]) -> tuple[int, str | None]:
    if len(field.source_attrs) != 1 or isinstance(field, serializers.BaseSerializer):
        return _DRF, None
    try:
        column: Any = model._meta.get_field(field.source_attrs[0])
    except Exception:  # noqa: BLE001 - not a model field: a property, a method …
        return _plan_property(field, model)
    if not getattr(column, "concrete", False) or column.many_to_many:
        return _DRF, None
    if column.many_to_one or column.one_to_one:
        plain_id = (
            type(field).to_representation is PrimaryKeyRelatedField.to_representation
            and isinstance(field, PrimaryKeyRelatedField)
            and field.pk_field is None
            and field.use_pk_only_optimization()
        )
        return (_ID, column.attname) if plain_id else (_DRF, None)
    if isinstance(field, (RelatedField, ManyRelatedField, serializers.SerializerMethodField)):
        return _DRF, None
    if (
        type(field) is serializers.DateTimeField
        and not hasattr(field, "timezone")
        and str(getattr(field, "format", api_settings.DATETIME_FORMAT)).lower() == ISO_8601
    ):
        return _MOMENT, column.attname
    if (
        isinstance(field, serializers.DecimalField)
        and type(field).to_representation is serializers.DecimalField.to_representation
        and type(field).quantize is serializers.DecimalField.quantize
        and not field.localize
        and getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
    ):
        return _DECIMAL, column.attname
    return _COLUMN, column.attname


def _plan_property(field: Any, model: type[Model]) -> tuple[int, str | None]:
    """A property of the model shown by one of DRF's scalar fields, read-only, without a
    default or null: read with ``getattr`` as DRF reads it (a missing related row is
    None; ``AttributeError`` or ``KeyError`` leaves the field out, as DRF leaves out a
    field that is not required); any other field takes DRF's path."""
    name = field.source_attrs[0]
    if (
        isinstance(inspect.getattr_static(model, name, None), property)
        and type(field).to_representation.__module__ == "rest_framework.fields"
        and type(field).get_attribute is serializers.Field.get_attribute
        and not isinstance(field, (RelatedField, ManyRelatedField))
        and not isinstance(field, serializers.SerializerMethodField)
        and field.read_only
        and not field.required
        and not field.allow_null
        and field.default is empty
    ):
        return _PROPERTY, name
    return _DRF, None


def _decimal_text(value: Decimal, field: Any) -> str:
    """DRF's ``DecimalField.to_representation`` of a value that already has the field's
    places (as a column of that scale reads back): quantizing changes nothing, so the
    text is the value's; any other value is quantized by DRF (a fresh context and a
    power of ten per value, most of the cost of a list's money and coordinates)."""
    places, digits = field.decimal_places, field.max_digits
    if places is not None:
        # The plain text (no exponent, so not NaN or infinite either) with exactly the
        # field's places is the value at the field's scale; its digits, leading zeros
        # counted, are no more than the value's digits. Most columns read back this way,
        # for a third of the cost of taking the value apart.
        text = str(value)
        if "E" not in text and "N" not in text and "n" not in text:
            dot = text.find(".")
            shown = len(text) - dot - 1 if dot >= 0 else 0
            if shown == places and (
                digits is None or len(text) - (text[0] == "-") - (dot >= 0) <= digits
            ):
                return text
    shape = value.as_tuple()
    if (places is None or shape.exponent == -places) and (
        digits is None or len(shape.digits) <= digits
    ):
        return f"{value:f}"
    return str(field.to_representation(value))


_PLANNED: dict[tuple[Any, ...], tuple[int, str | None]] = {}


def _planned(field: Any, model: type[Model]) -> tuple[int, str | None]:
    """``_plan_field``, decided once per kind of field: what decides it is the model, the
    field's class, its source, whether it renders a related id through a ``pk_field``
    and, for a moment, its format and whether it names its own time zone."""
    key = (
        model,
        type(field),
        field.source,
        getattr(field, "pk_field", None) is None,
        str(getattr(field, "format", "")),
        hasattr(field, "timezone"),
        getattr(field, "localize", None),
        getattr(field, "coerce_to_string", None),
        field.read_only,
        field.required,
        field.allow_null,
        field.default is empty,
    )
    decided = _PLANNED.get(key)
    if decided is None:
        decided = _PLANNED[key] = _plan_field(field, model)
    return decided


_SHARED_PLANS: dict[type, list[tuple[str, Any, int, str | None]]] = {}
#: The class plans among them that bind no field: an instance renders along the list
#: itself, a nested field along it, ``represent`` without an instance.
_UNBOUND_PLANS: dict[type, list[tuple[str, Any, int, str | None]]] = {}
#: ``ModelSerializer._row_renderer``'s answer per class, with the class plan it was found
#: for (an answer holds while that plan is the class's).
_ROW_RENDERERS: dict[type, tuple[list[tuple[str, Any, int, str | None]], Any]] = {}


def _renders_alone(field: Any, how: int) -> bool:
    """A field whose ``to_representation`` needs nothing of the serializer it is bound to
    (DRF's own scalar fields), so its unbound prototype renders a column for any
    instance; a foreign key read as its id needs no field at all."""
    if how == _ID:
        return True
    if how in (_COLUMN, _MOMENT, _DECIMAL, _PROPERTY):
        return getattr(type(field).to_representation, "__module__", "") == "rest_framework.fields"
    return False


def _nested_plan(field: Any, model: type[Model]) -> list[tuple[str, Any, int, str | None]] | None:
    """The class plan a nested serializer field renders its row along, when that needs
    no instance of it: one of our model serializers, not overriding how a row is shown,
    reading a forward foreign key, and every field of its plan rendering alone (nested
    ones included). None otherwise (the field takes DRF's path, as before)."""
    cls = type(field)
    if (
        not isinstance(field, ModelSerializer)
        or cls.to_representation is not ModelSerializer.to_representation
        or len(field.source_attrs) != 1
    ):
        return None
    try:
        column: Any = model._meta.get_field(field.source_attrs[0])
    except Exception:  # noqa: BLE001 - not a model field
        return None
    if not (column.concrete and (column.many_to_one or column.one_to_one)):
        return None
    if not cls._reads_share_the_class_plan():
        return None
    if cls not in _SHARED_PLANS:
        cls()._read_plan()  # a read of the class plans it
    return _UNBOUND_PLANS.get(cls)


def current_zone() -> tuple[Any]:
    """DRF's ``default_timezone()``: the zone moments are shown in, held in a tuple (what
    ``represent`` takes as ``zone``). Each read of the active zone goes through asgiref's
    ``Local`` (about 19,000 instructions): read it once for rows shown together."""
    return (timezone.get_current_timezone() if settings.USE_TZ else None,)


def _render(
    plan: list[tuple[str, Any, int, str | None]], instance: Any, zone: tuple[Any]
) -> dict[str, Any]:
    """A row along a read plan; ``zone`` holds the time zone moments are shown in."""
    row: dict[str, Any] = {}
    for name, field, how, attname in plan:
        if how == _DRF:
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            value = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            row[name] = None if value is None else field.to_representation(attribute)
            continue
        if how == _PROPERTY:
            try:
                value = getattr(instance, attname)  # type: ignore[arg-type]
            except ObjectDoesNotExist:  # DRF's get_attribute: a missing related row is None
                value = None
            except (AttributeError, KeyError):
                continue  # DRF skips a field that is not required
            row[name] = None if value is None else field.to_representation(value)
            continue
        value = getattr(instance, attname)  # type: ignore[arg-type]
        if value is None or how == _ID:
            row[name] = value
        elif how == _MOMENT and zone[0] is not None and timezone.is_aware(value):
            try:
                row[name] = _isoformat(value.astimezone(zone[0]))
            except OverflowError:  # DRF's own error
                row[name] = field.to_representation(value)
        elif how == _DECIMAL and type(value) is Decimal:
            row[name] = _decimal_text(value, field)
        elif how == _NESTED:
            nested_plan, nested_model, prototype = field
            if isinstance(value, nested_model):
                row[name] = _render(nested_plan, value, zone)
            else:  # not a row of its model (a foreign key's descriptor never gives one)
                row[name] = _copy_field(prototype).to_representation(value)
        else:
            row[name] = field.to_representation(value)
    return row


#: A written-out renderer writes an aware moment's text (DRF's: ``isoformat``, with ``Z``
#: for a zero offset) with orjson, which writes RFC 3339 the same way in a fraction of
#: ``isoformat``'s time (the moments were half of rendering a rep's page of visits),
#: except an offset with seconds (``+08:05:43``, a zone's local mean time before 1901),
#: which orjson rounds to minutes: that one, and a zone orjson cannot read, take
#: ``isoformat``. A moment read from the database (in ``datetime.UTC``) shown in a zone
#: with a steady offset (``_steady``: UTC, China since 1991, …) is not converted to the
#: zone. The loop (``_render``) takes ``isoformat`` for every moment, and the tests
#: compare the two.
_UTC_Z = orjson.OPT_UTC_Z
_UNKNOWN = object()
#: Per zone: when its offset is one whole-minute offset from its last change on (UTC
#: always, China since 1991, India since 1945, …), that moment, the offset and its text;
#: else None.
_STEADY: dict[Any, tuple[datetime, timedelta, str] | None] = {}


def _steady(zone: Any) -> tuple[datetime, timedelta, str] | None:
    """The zone's steady offset (``_STEADY``), found once: from the zone's rules as
    ``zoneinfo``'s own Python implementation reads them (its last change, and the one
    offset after it, not a rule of daylight saving time), checked against the zone
    itself (``ZoneInfo("UTC")``: from the start); None for anything else. A moment in UTC
    from then on is shown by moving it by the offset and writing the offset, without
    converting it to the zone (which was half of a moment's cost on a rep's page of
    visits in Asia/Shanghai, and most of it in UTC)."""
    known = _STEADY.get(zone, _UNKNOWN)
    if known is not _UNKNOWN:
        return known  # type: ignore[return-value]
    steady = None
    key = getattr(zone, "key", None)
    if isinstance(zone, zoneinfo.ZoneInfo) and isinstance(key, str):
        try:
            rules: Any = _zoneinfo_rules.ZoneInfo.no_cache(key)
            after = rules._tz_after
            changes = rules._trans_utc
            if isinstance(after, _zoneinfo_rules._ttinfo):
                start = datetime.fromtimestamp(changes[-1], UTC) if changes else _EARLIEST
                offset = after.utcoff
                probes = [max(start, _EARLIEST), datetime(9000, 1, 1, tzinfo=UTC)]
                probes += [start + timedelta(days=1)] if start > _EARLIEST else []
                if not offset % timedelta(minutes=1) and all(
                    probe.astimezone(zone).utcoffset() == offset for probe in probes
                ):
                    steady = (start, offset, _offset_text(offset))
        except Exception:  # noqa: BLE001 - no steady offset known: the usual way
            steady = None
    return remember(_STEADY, zone, steady, 1024)  # zone objects: one per key, usually


_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)


def _offset_text(offset: timedelta) -> str:
    """An offset of whole minutes as ``isoformat`` ends a moment, ``Z`` for zero (DRF)."""
    minutes = offset // timedelta(minutes=1)
    if not minutes:
        return "Z"
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _isoformat(moment: Any) -> str:
    """DRF's text of an aware moment in ISO 8601: ``isoformat``, ``Z`` for a zero offset."""
    text: str = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


#: DRF fields whose ``to_representation`` gives a value of one exact type back unchanged
#: (``int(value)``, ``str(value)``, a boolean's own value): a compiled plan returns such a
#: value without the call.
_UNCHANGED: tuple[tuple[Any, type], ...] = (
    (serializers.IntegerField.to_representation, int),
    (serializers.CharField.to_representation, str),
    (serializers.BooleanField.to_representation, bool),
)


def _unchanged_type(field: Any) -> type | None:
    """The exact type whose values the field's ``to_representation`` gives back unchanged
    (``_UNCHANGED``; a ``BigIntegerField`` not shown as text, the ids, is an integer's)."""
    method = type(field).to_representation
    if method is serializers.BigIntegerField.to_representation:
        as_text = getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING)
        return None if as_text else int
    return next((kind for known, kind in _UNCHANGED if method is known), None)


def _shown(field: Any, index: int, namespace: dict[str, Any]) -> str:
    """The expression a written-out renderer shows a value ``v`` (not None) of field
    ``f<index>`` with: the value itself when the field's ``to_representation`` gives a
    value of its exact type back unchanged (``_unchanged_type``), a date's ``isoformat``
    when the field is DRF's ``DateField`` showing ISO 8601 (what its
    ``to_representation`` returns for a date), a text's choice when the field is DRF's
    ``ChoiceField`` (its ``to_representation`` of a text that is no ``Enum``: the text
    itself when empty, else ``choice_strings_to_values.get(text, text)``), else the
    field's ``to_representation``."""
    method = type(field).to_representation
    to_text = f"f{index}.to_representation(v)"
    exact = _unchanged_type(field)
    if exact is not None:
        namespace[f"t{index}"] = exact
        return f"v if type(v) is t{index} else {to_text}"
    if method is serializers.ChoiceField.to_representation:
        choice = f"(f{index}.choice_strings_to_values.get(v, v) if v else v)"
        return f"{choice} if type(v) is str else {to_text}"
    if (
        method is serializers.DateField.to_representation
        and str(getattr(field, "format", api_settings.DATE_FORMAT)).lower() == ISO_8601
    ):
        namespace[f"t{index}"] = date
        return f"v.isoformat() if type(v) is t{index} else {to_text}"
    return to_text


Renderer = Callable[[Any, tuple[Any]], dict[str, Any]]
#: Compiled renderers of the class plans that bind nothing, by the plan's id (the plan
#: is kept with it, so the id stays its own).
_RENDERERS: dict[int, tuple[list[tuple[str, Any, int, str | None]], Renderer]] = {}


def _renderer(plan: list[tuple[str, Any, int, str | None]]) -> Renderer:
    """The function rendering a row along an unbound class ``plan``, made once.

    ``_render`` decides every field's kind for every row; this writes the plan out as one
    function, a statement per field, which renders the same dict (the same keys in the
    same order, the same values, the same fields left out) without the loop and its
    tests: 75–110 µs of a rep's page of visits or deals, measured in alternating
    requests. A plan it cannot write out (a column whose name is not an identifier, a
    field only DRF may render) renders with ``_render``. ``tests/tenancy/
    test_row_renderer.py`` compares the two for every API serializer and every kind."""
    return _made_once(_RENDERERS, plan, lambda: _compile(plan))


def _made_once(
    store: dict[int, tuple[Any, Any]], plan: list[tuple[str, Any, int, str | None]], make: Any
) -> Any:
    """What ``make()`` makes for ``plan``, made once and kept in ``store`` by the plan's
    id (with the plan, so the id stays its own)."""
    known = store.get(id(plan))
    if known is not None and known[0] is plan:
        return known[1]
    made = make()
    store[id(plan)] = (plan, made)
    return made


#: How a column-only plan is read from a ``ColumnRow``: the kinds of fields that show a
#: column of the row and nothing else of it.
_COLUMN_KINDS = frozenset({_ID, _COLUMN, _MOMENT, _DECIMAL})
#: Compiled renderers of ``ColumnRow`` rows, by the plan's id (the plan is kept with it).
_COLUMN_RENDERERS: dict[
    int, tuple[list[tuple[str, Any, int, str | None]], tuple[Renderer, frozenset[str]] | None]
] = {}


def _column_renderer(plan: list[tuple[str, Any, int, str | None]], model: Any) -> Renderer | None:
    """The function rendering a ``ColumnRow`` of ``model`` along an unbound class ``plan``
    as ``_renderer``'s renders the model's instance (the same statements, each column
    read by its position in the row, a row property as an attribute), made once; None
    when a field of the plan shows anything but a column or one of the model's
    ``row_properties``, or the plan cannot be written out."""
    made = _column_rendering(plan, model)
    return made[0] if made is not None else None


def _column_rendering(
    plan: list[tuple[str, Any, int, str | None]], model: Any
) -> tuple[Renderer, frozenset[str]] | None:
    """``_column_renderer``'s function and the relations (foreign keys' names) whose rows
    it reads through the row properties it shows (a page must read them with its rows),
    made once; None as for ``_column_renderer``."""
    made: tuple[Renderer, frozenset[str]] | None = _made_once(
        _COLUMN_RENDERERS, plan, lambda: _make_column_renderer(plan, model)
    )
    return made


def _make_column_renderer(
    plan: list[tuple[str, Any, int, str | None]], model: Any
) -> tuple[Renderer, frozenset[str]] | None:
    properties = row_properties(model)
    positions = column_row_class(model).positions
    reads: set[str] = set()
    for _name, _field, how, attname in plan:
        if how == _PROPERTY and attname in properties:
            reads.update(properties[attname])
        elif how not in _COLUMN_KINDS or attname not in positions:
            return None
    render = _compile(plan, positions)
    if isinstance(render, partial):  # partial: only the loop
        return None
    return render, frozenset(reads)


def _compile(
    plan: list[tuple[str, Any, int, str | None]], positions: dict[str, int] | None = None
) -> Renderer:
    """The function rendering a row along ``plan`` (see ``_renderer``); with
    ``positions``, a ``ColumnRow`` whose columns are at those positions."""
    namespace: dict[str, Any] = {
        "Decimal": Decimal,
        "ObjectDoesNotExist": ObjectDoesNotExist,
        "_decimal_text": _decimal_text,
        "_copy_field": _copy_field,
        "_dumps": orjson.dumps,
        "_UTC_Z": _UTC_Z,
        "_UTC": UTC,
        "_EncodeError": orjson.JSONEncodeError,
        "_isoformat": _isoformat,
        "_STEADY": _STEADY,
        "_UNKNOWN": _UNKNOWN,
        "_steady": _steady,
    }
    lines = [
        "def render(instance, zone):",
        "    row = {}",
        "    z = zone[0]",
    ]
    if any(how == _MOMENT for _name, _field, how, _attname in plan):
        lines += [  # the zone's steady offset (_steady), if it has one
            "    sz = _STEADY.get(z, _UNKNOWN)",
            "    if sz is _UNKNOWN:",
            "        sz = _steady(z)",
            "    if sz is not None:",
            "        s_from, s_offset, s_text = sz",
        ]
    for index, (name, field, how, attname) in enumerate(plan):
        if (
            how == _DRF
            or field is None
            or not isinstance(attname, str)
            or not attname.isidentifier()
            or keyword.iskeyword(attname)
        ):
            return partial(_render, plan)
        if positions is not None and how != _PROPERTY:
            read = f"instance[{positions[attname]}]"
        else:
            read = f"instance.{attname}"
        key, to_text = repr(name), f"f{index}.to_representation"
        namespace[f"f{index}"] = field
        if how == _ID:
            lines.append(f"    row[{key}] = {read}")
        elif how == _PROPERTY:
            lines += [
                "    try:",
                f"        v = {read}",
                "    except ObjectDoesNotExist:",
                f"        row[{key}] = None",
                "    except (AttributeError, KeyError):",
                "        pass",
                "    else:",
                f"        row[{key}] = None if v is None else {_shown(field, index, namespace)}",
            ]
        elif how == _MOMENT:
            lines += [
                f"    v = {read}",
                "    if v is None:",
                f"        row[{key}] = None",
                # In the zone's steady offset: moved by it, the offset written after.
                "    elif sz is not None and v.tzinfo is _UTC and v >= s_from:",
                "        try:",
                f"            row[{key}] = "
                "_dumps(v + s_offset, None, _UTC_Z)[1:-2].decode() + s_text",
                "        except OverflowError:",  # DRF's own error
                f"            row[{key}] = {to_text}(v)",
                # timezone.is_aware
                "    elif z is not None and (v.tzinfo is _UTC or v.utcoffset() is not None):",
                "        try:",
                "            w = v.astimezone(z)",
                "        except OverflowError:",
                f"            row[{key}] = {to_text}(v)",
                "        else:",  # orjson's text where it is isoformat's (see _UTC_Z)
                # Whether the zone's offset is whole minutes (see _UTC_Z): a moment in UTC
                # moved by it keeps its seconds exactly then (no call of utcoffset).
                "            if v.tzinfo is _UTC:",
                "                m = w.second == v.second and w.microsecond == v.microsecond",
                "            else:",
                "                o = w.utcoffset()",
                "                m = not (o.seconds % 60 or o.microseconds)",
                "            if m:",
                "                try:",
                f"                    row[{key}] = _dumps(w, None, _UTC_Z)[1:-1].decode()",
                "                except _EncodeError:",
                f"                    row[{key}] = _isoformat(w)",
                "            else:",
                f"                row[{key}] = _isoformat(w)",
                "    else:",
                f"        row[{key}] = {to_text}(v)",
            ]
        elif how == _DECIMAL:
            lines += [f"    v = {read}", "    if v is None:", f"        row[{key}] = None"]
            places, digits = field.decimal_places, field.max_digits
            if isinstance(places, int):  # _decimal_text's first test, written out
                fits = (
                    "" if digits is None else f" and len(s) - (s[0] == '-') - (d >= 0) <= {digits}"
                )
                lines += [
                    "    elif type(v) is Decimal:",
                    "        s = str(v)",
                    "        d = s.find('.')",
                    f"        if (len(s) - d - 1 if d >= 0 else 0) == {places}{fits} and "
                    "'E' not in s and 'N' not in s and 'n' not in s:",
                    f"            row[{key}] = s",
                    "        else:",
                    f"            row[{key}] = _decimal_text(v, f{index})",
                ]
            else:
                lines += [
                    "    elif type(v) is Decimal:",
                    f"        row[{key}] = _decimal_text(v, f{index})",
                ]
            lines += ["    else:", f"        row[{key}] = {to_text}(v)"]
        elif how == _NESTED:
            nested_plan, nested_model, prototype = field
            namespace[f"f{index}"] = prototype
            namespace[f"m{index}"] = nested_model
            namespace[f"r{index}"] = _renderer(nested_plan)
            lines += [
                f"    v = {read}",
                "    if v is None:",
                f"        row[{key}] = None",
                f"    elif isinstance(v, m{index}):",
                f"        row[{key}] = r{index}(v, zone)",
                "    else:",
                f"        row[{key}] = _copy_field(f{index}).to_representation(v)",
            ]
        else:  # a column
            lines += [
                f"    v = {read}",
                f"    row[{key}] = None if v is None else {_shown(field, index, namespace)}",
            ]
    lines.append("    return row")
    source = compile("\n".join(lines), f"<row renderer of {len(plan)} fields>", "exec")
    exec(source, namespace)  # noqa: S102 - our own source, written from the plan above
    return namespace["render"]


class ModelSerializer(serializers.ModelSerializer[M]):
    """``rest_framework.serializers.ModelSerializer`` with its fields built once per class
    and its rows rendered along a plan made once per class (see the module)."""

    #: True on a subclass whose ``get_fields`` changes fields only when the request
    #: writes (it narrows related querysets): a read may share the class's plan.
    fields_change_on_writes_only = False

    def _read_plan(self) -> list[tuple[str, Any, int, str | None]]:
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = self.__dict__["_plan"] = self._make_read_plan()
        return plan

    @classmethod
    def _reads_share_the_class_plan(cls) -> bool:
        """A read's fields are the class's own: its ``get_fields`` is this one, or changes
        fields only on writes."""
        return cls.get_fields is ModelSerializer.get_fields or cls.fields_change_on_writes_only

    def _shares_class_plan(self) -> bool:
        """The fields are not built yet and would be the class's own: the class plan holds."""
        return "fields" not in self.__dict__ and self._reads_share_the_class_plan()

    def _make_read_plan(self) -> list[tuple[str, Any, int, str | None]]:
        model = self.Meta.model
        if not self._shares_class_plan():
            readable = self._readable_fields
            return [(str(field.field_name), field, *_planned(field, model)) for field in readable]
        shared = _SHARED_PLANS.get(type(self))
        if shared is None:
            readable = list(self._readable_fields)  # bound once, to plan by their sources
            prototype = _PROTOTYPES[type(self)]
            shared = []
            for field in readable:
                name = str(field.field_name)
                nested = _nested_plan(field, model)
                if nested is not None:
                    row_of = (nested, field.Meta.model, prototype[name])  # type: ignore[attr-defined]
                    shared.append((name, row_of, _NESTED, field.source_attrs[0]))
                    continue
                how, attname = _planned(field, model)
                alone = prototype[name] if _renders_alone(field, how) else None
                shared.append((name, alone, how, attname))
            if all(alone is not None for _name, alone, _how, _attname in shared):
                _UNBOUND_PLANS[type(self)] = shared
            _SHARED_PLANS[type(self)] = shared
            del self.__dict__["fields"]  # this instance too binds only what it must
        if type(self) in _UNBOUND_PLANS:
            return shared  # nothing to bind: the class's plan itself (never changed)
        plan = []
        for name, alone, how, attname in shared:
            field = alone
            if field is None:  # rendered with the serializer: a copy bound to this one
                field = _copy_field(_PROTOTYPES[type(self)][name])
                field.bind(name, self)
            plan.append((name, field, how, attname))
        return plan

    @classmethod
    def represent(
        cls, instance: Any, context: dict[str, Any] | None = None, zone: tuple[Any] | None = None
    ) -> dict[str, Any]:
        """``cls(instance, context=context).data`` (as a plain dict): a row of the model
        whose class plan binds no field is rendered along the plan, without making a
        serializer (about 10 µs each, a third of ``/me/``'s three), its moments in
        ``zone`` (``current_zone()``, read when not given)."""
        render = cls._class_renderer()
        if render is not None and isinstance(instance, cls.Meta.model):
            return render(instance, current_zone() if zone is None else zone)
        return dict(cls(instance, context=context or {}).data)

    @classmethod
    def _class_renderer(cls) -> Renderer | None:
        """The function rendering a row of ``cls`` without a serializer: when a read of
        ``cls`` has made a plan that binds nothing and ``cls`` shows a row as this class
        does; else None."""
        plan = _UNBOUND_PLANS.get(cls)
        if plan is None or cls.to_representation is not ModelSerializer.to_representation:
            return None
        return _renderer(plan)

    @classmethod
    def _row_renderer(cls) -> Renderer | None:
        """``_class_renderer``, when ``cls`` also shows a list as this class does (no list
        serializer or ``many_init`` of its own); else None. Found once per class plan
        (``_ROW_RENDERERS``): a list asks twice per request."""
        plan = _UNBOUND_PLANS.get(cls)
        known = _ROW_RENDERERS.get(cls)
        if known is not None and known[0] is plan:
            return known[1]
        render = cls._class_renderer()
        if (
            render is None
            or cls.many_init.__func__ is not serializers.BaseSerializer.many_init.__func__  # type: ignore[attr-defined]
            or hasattr(cls.Meta, "list_serializer_class")
        ):
            return None
        if plan is not None:
            _ROW_RENDERERS[cls] = (plan, render)
        return render

    @classmethod
    def column_renderer(cls) -> Renderer | None:
        """The function rendering a ``ColumnRow`` of the model (``tenancy.orm``) as
        ``represent_rows`` renders the model's instance: when ``represent_rows`` renders
        the class's rows without a serializer and every field shows a column of the row
        (a list may then read its page with ``tenancy.orm.reading_columns``); else None."""
        if cls._row_renderer() is None:
            return None
        return _column_renderer(_UNBOUND_PLANS[cls], cls.Meta.model)

    @classmethod
    def column_reads(cls) -> frozenset[str] | None:
        """The relations whose rows ``column_renderer``'s function reads (through the
        model's ``row_properties``): a page read as columns must select them with it.
        None when there is no such function (the page is read as instances)."""
        if cls._row_renderer() is None:
            return None
        made = _column_rendering(_UNBOUND_PLANS[cls], cls.Meta.model)
        return made[1] if made is not None else None

    @classmethod
    def represent_rows(cls, rows: list[Any]) -> list[dict[str, Any]] | None:
        """``cls(rows, many=True).data`` (as a plain list), rendered along the class plan
        without making a serializer, when a read of ``cls`` has made a plan that binds
        nothing, ``cls`` shows rows and lists as this class does and every row is of the
        model; else None (the caller makes the serializer). A list view's page (a
        serializer and its list serializer: about 55 µs a rep's page of visits). Rows
        read as ``ColumnRow`` rows of the model are rendered by ``column_renderer``."""
        render = cls._row_renderer()
        if render is None:
            return None
        model = cls.Meta.model
        if rows and isinstance(rows[0], ColumnRow):
            render = _column_renderer(_UNBOUND_PLANS[cls], model)  # cls renders rows alone
            row_class = column_row_class(model)  # with related rows: a subclass
            if render is None or not all(isinstance(row, row_class) for row in rows):
                raise TypeError(f"{cls.__qualname__} cannot show these rows: {type(rows[0])}.")
        elif not all(isinstance(row, model) for row in rows):
            return None
        zone = current_zone()
        return [render(row, zone) for row in rows]

    def to_representation(self, instance: Any) -> Any:
        if not isinstance(instance, self.Meta.model):
            return super().to_representation(instance)
        zone = self.__dict__.get("_zone")
        if zone is None:  # DRF's default_timezone(), read once per serializer, not per value
            zone = self.__dict__["_zone"] = current_zone()
        plan = self._read_plan()
        if plan is _UNBOUND_PLANS.get(type(self)):
            return _renderer(plan)(instance, zone)
        return _render(plan, instance, zone)

    def get_fields(self) -> dict[str, Any]:
        prototype = _PROTOTYPES.get(type(self))
        if prototype is None:
            prototype = super().get_fields()
            _PROTOTYPES[type(self)] = prototype
        return {name: _copy_field(field) for name, field in prototype.items()}


@receiver(setting_changed)
def _forget_plans(*, setting: str, **kwargs: Any) -> None:
    """DRF's settings changed (a test's ``override_settings``): a field renders along
    them (a big integer as text, a date's format), so the prototypes, the plans and the
    written-out renderers are made again from the new ones."""
    if setting == "REST_FRAMEWORK":
        for kept in (
            _PROTOTYPES,
            _PLANNED,
            _SHARED_PLANS,
            _UNBOUND_PLANS,
            _ROW_RENDERERS,
            _RENDERERS,
            _COLUMN_RENDERERS,
        ):
            kept.clear()
