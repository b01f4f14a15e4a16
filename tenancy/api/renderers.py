"""The API's JSON renderer: DRF's ``JSONRenderer`` with its bytes made by orjson.

DRF builds a response body with ``json.dumps`` and a Python encoder: about 5 µs a row
of a list (a page of 50 deals took 0.25 ms here), on every list and every answer. orjson
writes the same JSON in a fraction of that. What it would write differently goes through
DRF's own encoder (``encoders.JSONEncoder.default``), so the body stays DRF's:

* dates, times and moments (``OPT_PASSTHROUGH_DATETIME``): DRF writes UTC as ``Z``;
* dataclasses (``OPT_PASSTHROUGH_DATACLASS``), decimals, lazy translations, querysets
  and anything else that is not JSON already;
* U+2028 and U+2029 are escaped, as DRF does (JSON allows them, JavaScript did not);
* a pretty-printed answer (``Accept: application/json; indent=4``, the browsable API)
  and an integer beyond 64 bits are rendered by DRF itself.

Two differences remain, neither in the data: a float is written in its shortest form
(``1e16``, where Python writes ``1e+16``), and a float that is not a number is written
``null`` (DRF's strict JSON would refuse it with a 500; the API sends decimals as text).
``tests/tenancy/test_renderers.py`` compares the two renderers' bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework import renderers
from rest_framework.utils import encoders

_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
_LINE_SEPARATOR, _PARAGRAPH_SEPARATOR = "\u2028".encode(), "\u2029".encode()
#: Either separator. One search for both with a compiled pattern: ``in`` twice took
#: 16 µs for a 12 KB page of visits with Chinese text (most of whose bytes share the
#: separators' lead and continuation bytes), the pattern 3 µs.
_SEPARATORS = re.compile(re.escape(_LINE_SEPARATOR) + b"|" + re.escape(_PARAGRAPH_SEPARATOR))
_default = encoders.JSONEncoder().default


class JSONRenderer(renderers.JSONRenderer):
    """``rest_framework.renderers.JSONRenderer``, compact bodies written by orjson."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        if (
            self.ensure_ascii
            or not self.compact
            or (self.get_indent(accepted_media_type or "", renderer_context or {}) is not None)
        ):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_default, option=_OPTIONS)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, say: DRF decides
            return super().render(data, accepted_media_type, renderer_context)
        if _SEPARATORS.search(body) is not None:
            body = body.replace(_LINE_SEPARATOR, b"\\u2028").replace(
                _PARAGRAPH_SEPARATOR, b"\\u2029"
            )
        return body
