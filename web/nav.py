"""The pages' navigation: one line per page (url name, label, who sees it). The review
page joins with one more line here."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from tenancy.models import Role
from tenancy.paths import is_app

EVERYONE = (Role.REP, Role.MANAGER, Role.ADMIN)
LEADERS = (Role.MANAGER, Role.ADMIN)

NAV: list[tuple[str, Any, tuple[str, ...]]] = [
    ("web:my-day", _("My day"), EVERYONE),
    ("web:team", _("Team"), LEADERS),
    ("web:plans", _("Plans"), LEADERS),
    ("web:incentives", _("Incentives"), EVERYONE),
    ("web:reviews", _("Reviews"), EVERYONE),
]


def nav(request: Any) -> dict[str, Any]:
    """Context processor: the entries the member may open, the current one marked."""
    member = getattr(request, "membership", None)
    if member is None or not is_app(request):
        return {}
    entries = []
    for name, label, roles in NAV:
        if member.role in roles:
            url = reverse(name)
            current = request.path == url or (url != "/app/" and request.path.startswith(url))
            entries.append({"url": url, "label": label, "current": current})
    return {"web_nav": entries}
