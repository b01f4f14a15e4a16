"""``tenancy.querydict``: a ``QueryDict`` is made as Django makes it, with less work."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from django.core.exceptions import TooManyFieldsSent
from django.http import QueryDict
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from tenancy import querydict

#: Characters that matter to parsing, and some that do not.
_PARTS = st.sampled_from(
    ["&", "=", "+", "%", "%2", "%2A", "%41", "%e4%b8%ad", "%C3", "%zz", "a", "Z", "0", " "]
)
_TEXT = st.lists(st.one_of(_PARTS, st.text(max_size=3)), max_size=12).map("".join)


def _django(query: Any, mutable: bool = False, encoding: str | None = None) -> QueryDict:
    made = QueryDict.__new__(QueryDict)
    querydict._django_init(made, query, mutable, encoding)
    return made


def _made(make: Any) -> tuple[str, Any]:
    try:
        made = make()
    except Exception as error:  # noqa: BLE001 - both must refuse alike
        return "error", (type(error), str(error))
    return "made", (list(made.lists()), made.encoding, made._mutable)


def test_installed_when_the_app_starts() -> None:
    assert QueryDict.__init__ is querydict._init
    assert QueryDict.get is querydict._get_value


@settings(max_examples=300, deadline=None)
@given(
    text=_TEXT,
    keys=st.lists(st.one_of(_PARTS, st.text(max_size=2)), max_size=4),
    default=st.sampled_from([None, "", "d", [], 0]),
)
def test_a_value_is_got_as_django_gets_it(text: str, keys: list[str], default: Any) -> None:
    made = QueryDict(text, mutable=True)
    made.setlist("no values", [])
    made.setlist("an empty list last", ["x", []])  # type: ignore[list-item]
    for key in [*made, *keys, "no values", "an empty list last", "missing"]:
        assert made.get(key, default) == querydict._django_get(made, key, default), key
        assert made.get(key) == querydict._django_get(made, key), key


def test_a_subclass_reading_its_own_way_gets_djangos_get() -> None:
    class Shouting(QueryDict):
        def __getitem__(self, key: str) -> Any:
            return str(super().__getitem__(key)).upper()

    made = Shouting("a=x")
    assert made.get("a") == "X" and made.get("b", "-") == "-"


@settings(max_examples=400, deadline=None)
@given(
    text=_TEXT,
    as_bytes=st.sampled_from(["text", "utf-8", "latin-1", "raw"]),
    raw=st.binary(max_size=12),
    mutable=st.booleans(),
    encoding=st.sampled_from([None, "utf-8", "iso-8859-1"]),
)
def test_a_query_string_makes_what_djangos_makes(
    text: str, as_bytes: str, raw: bytes, mutable: bool, encoding: str | None
) -> None:
    query: Any = text
    if as_bytes == "utf-8":
        query = text.encode()
    elif as_bytes == "latin-1":
        query = text.encode("latin-1", "replace")  # not UTF-8 when it has é
    elif as_bytes == "raw":
        query = raw + b"&" + text.encode()
    ours = _made(lambda: QueryDict(query, mutable=mutable, encoding=encoding))  # type: ignore[call-overload]
    assert ours == _made(lambda: _django(query, mutable, encoding))


@settings(max_examples=300, deadline=None)
@given(text=_TEXT, encoding=st.sampled_from(["utf-8", "iso-8859-1"]))
def test_the_pairs_are_parse_qsls(text: str, encoding: str) -> None:
    assert querydict.parse_pairs(text, encoding, None) == parse_qsl(
        text, keep_blank_values=True, encoding=encoding
    )


@pytest.mark.parametrize("query", [b"a=1&b=2&c=3", "a=1&&&b", b"a&b&c&d"])
def test_too_many_parameters_are_refused_as_django_refuses_them(query: Any) -> None:
    with override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=2):
        with pytest.raises(TooManyFieldsSent) as ours:
            QueryDict(query)
        with pytest.raises(TooManyFieldsSent) as theirs:
            _django(query)
        assert str(ours.value) == str(theirs.value)
        assert QueryDict("a=1&b=2").lists() is not None  # two are allowed
    with override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=None):
        assert len(QueryDict("&".join(f"k{i}=v" for i in range(5000)))) == 5000


def test_repeated_keys_keep_their_order_and_the_dict_behaves_as_djangos() -> None:
    made = QueryDict("ordering=-name&status=open&status=won&page=2&q=a+b%26c&empty=&flag")
    assert made.getlist("status") == ["open", "won"]
    assert made["status"] == "won"  # the last value, as Django gives it
    assert made["q"] == "a b&c" and made["empty"] == "" and made["flag"] == ""
    assert made.urlencode() == _django(made.urlencode()).urlencode()
    with pytest.raises(AttributeError):
        made["status"] = "lost"  # type: ignore[misc]  # immutable, as Django's
    copied = made.copy()
    copied["status"] = "lost"
    assert copied.getlist("status") == ["lost"] and made.getlist("status") == ["open", "won"]
    assert QueryDict(mutable=True) == {} and QueryDict("", mutable=True)._mutable
