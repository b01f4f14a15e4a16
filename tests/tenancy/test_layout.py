"""The layout's rules (CONVENTIONS, Layout; SPEC preamble), read from the source.

* Dependencies point one way: ``tenancy`` imports no app; ``crm`` only ``tenancy``;
  ``targets`` ``crm`` and ``tenancy``; ``funnel`` and ``incentives`` may read
  ``targets`` too; ``integrations`` and ``web`` use them all; nothing imports ``web``;
  ``devtools`` may use every app and no app imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ["tenancy", "crm", "targets", "funnel", "incentives", "integrations", "web", "devtools"]
ALLOWED: dict[str, set[str]] = {
    "tenancy": set(),
    "crm": {"tenancy"},
    "targets": {"tenancy", "crm"},
    "funnel": {"tenancy", "crm", "targets"},
    "incentives": {"tenancy", "crm", "targets"},
    "integrations": {"tenancy", "crm", "targets", "funnel", "incentives"},
    "web": {"tenancy", "crm", "targets", "funnel", "incentives", "integrations"},
    "devtools": {"tenancy", "crm", "targets", "funnel", "incentives", "integrations"},
}


def _sources(app: str) -> list[Path]:
    return sorted(path for path in (ROOT / app).rglob("*.py") if path.is_file())


def imported_apps(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(APPS)


@pytest.mark.parametrize("app", [app for app in APPS if (ROOT / app).is_dir()])
def test_an_app_imports_only_the_apps_below_it(app: str) -> None:
    wrong = []
    for path in _sources(app):
        if "migrations" in path.parts:
            continue  # history: old migrations name the models where they lived then
        others = imported_apps(ast.parse(path.read_text(), str(path))) - {app}
        for other in sorted(others - ALLOWED[app]):
            wrong.append(f"{path.relative_to(ROOT)} imports {other}")
    assert not wrong, "\n".join(wrong)


def test_the_rule_itself_catches_an_upward_import() -> None:
    assert imported_apps(ast.parse("from crm.models import Customer\nimport web.views")) == {
        "crm",
        "web",
    }


# --- "today" is the tenant's (SPEC preamble, CONVENTIONS "Correctness habits") --------

# ``date.today``, ``timezone.localdate`` and ``datetime.today`` give the server's date,
# called or passed on (``default=timezone.localdate``); so does a naive ``datetime.now()``.
_SERVER_DATES = {("date", "today"), ("timezone", "localdate"), ("datetime", "today")}


def _server_dates(tree: ast.AST) -> list[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if (name, node.attr) in _SERVER_DATES:
                lines.add(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "django.utils.timezone":
            if any(alias.name == "localdate" for alias in node.names):
                lines.add(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            naive = not node.args and not node.keywords
            if name == "datetime" and node.func.attr == "now" and naive:
                lines.add(node.lineno)
    return sorted(lines)


def test_app_code_never_asks_the_server_for_today() -> None:
    wrong = []
    for app in APPS:
        for path in _sources(app) if (ROOT / app).is_dir() else []:
            if "migrations" in path.parts:
                continue  # history: old migrations keep the defaults they had then
            for line in _server_dates(ast.parse(path.read_text(), str(path))):
                wrong.append(f"{path.relative_to(ROOT)}:{line}")
    assert not wrong, "use tenancy.dates.tenant_today(tenant):\n" + "\n".join(wrong)


def test_the_date_rule_catches_each_form() -> None:
    source = (
        "date.today()\n"
        "timezone.localdate()\n"
        "datetime.now()\n"
        "datetime.now(tz=UTC)\n"
        "start = models.DateField(default=timezone.localdate)\n"
        "x = django.utils.timezone.localdate\n"
        "from django.utils.timezone import localdate\n"
        "datetime.datetime.today()\n"
        "tenant_today(tenant)\n"
        "timezone.now()\n"
    )
    assert _server_dates(ast.parse(source)) == [1, 2, 3, 5, 6, 7, 8]
