"""What a process makes once and reuses across requests, kept up to a bound.

Several parts keep, per process, something costly to make whose key a request may
choose (a filter form per set of given parameters, a tenant's querysets, an ORDER BY per
ordering asked for): ``remember`` keeps each under its key and, when the store holds
``limit`` keys, forgets them all at once (they are made again on use), so no request can
make a store grow without end.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(store: dict[K, V], key: K, value: V, limit: int) -> V:
    """Keep ``value`` under ``key`` in ``store`` (emptied first when it holds ``limit``
    keys); returns ``value``."""
    if len(store) >= limit:
        store.clear()
    store[key] = value
    return value
