"""``copy.copy`` without the copy protocol's calls, for the objects copied per request.

A list's filter set copies each filter it reads, and a serializer each of its fields, on
every request. ``copy.copy`` makes such a copy through the protocol (``__reduce_ex__``,
``copyreg.__newobj__``, ``copy._reconstruct``): about 2 µs a field, where the copy it
ends up making, ``cls.__new__(cls)`` given the original's ``__dict__``, takes a third of
that. ``shallow_copy`` makes that copy directly for a class that defines none of the
protocol's methods (``__copy__``, ``__reduce_ex__``, ``__reduce__``, ``__getstate__``,
``__setstate__``) nor slots, and leaves any other to ``copy.copy``.
"""

from __future__ import annotations

import copy
from typing import Any

#: Per class, whether ``copy.copy`` copies its instances by their ``__dict__`` alone.
_COPIED_BY_DICT: dict[type, bool] = {}


def copied_by_dict(cls: type) -> bool:
    """Whether ``copy.copy`` copies an instance of ``cls`` by its ``__dict__`` alone (see
    the module), found once per class."""
    known = _COPIED_BY_DICT.get(cls)
    if known is None:
        known = _COPIED_BY_DICT[cls] = (
            getattr(cls, "__copy__", None) is None
            and cls.__reduce_ex__ is object.__reduce_ex__
            and cls.__reduce__ is object.__reduce__
            and cls.__getstate__ is object.__getstate__
            and getattr(cls, "__setstate__", None) is None
            and not any("__slots__" in vars(kind) for kind in cls.__mro__[:-1])
        )
    return known


def shallow_copy(original: Any) -> Any:
    """``copy.copy(original)``, made directly for a class copied by its ``__dict__``."""
    cls: Any = type(original)
    if not copied_by_dict(cls):
        return copy.copy(original)
    copied = cls.__new__(cls)
    copied.__dict__.update(original.__dict__)
    return copied
