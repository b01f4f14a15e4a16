"""A serving process's garbage collector (``config/wsgi.py``, ``config/asgi.py``, each
Celery worker process, and the benchmarks, which measure what production runs).

Python collects its youngest generation after every 700 new container objects: an API
request makes several thousand (rows, fields, querysets), so the collector ran several
times inside each request and walked whatever was young, about 4 % of the request floor
here. ``GC_GEN0_THRESHOLD`` (50,000 by default; ``0`` keeps Python's thresholds) makes
it run once in many requests. Before that, what the start-up made (apps, models, URL
patterns and the views they import) is collected once and frozen (``gc.freeze``): never
garbage, no longer walked by a full collection, and left unwritten in a pre-forked
worker's shared pages. Garbage is still collected: reference counting frees everything
that is not a cycle at once, whatever the thresholds.
"""

from __future__ import annotations

import gc

from django.conf import settings
from django.urls import get_resolver

#: The older generations' thresholds with a raised first one (Python's are 10 and 10).
OLDER_THRESHOLDS = (20, 20)


def tune_garbage_collector() -> tuple[int, ...]:
    """Collect and freeze what the start-up made, then raise the first threshold to
    ``settings.GC_GEN0_THRESHOLD`` (unless it is 0); the thresholds in force after."""
    threshold = int(getattr(settings, "GC_GEN0_THRESHOLD", 0) or 0)
    if threshold > 0:
        gc.collect()
        gc.freeze()
        gc.set_threshold(threshold, *OLDER_THRESHOLDS)
    return gc.get_threshold()


def prepare_web_process() -> tuple[int, ...]:
    """A web process's start (``config/wsgi.py``, ``config/asgi.py``): every view imported
    now (the URLconf), so that it is frozen with the rest, then the collector tuned."""
    get_resolver().url_patterns  # noqa: B018 - imports the views
    return tune_garbage_collector()
