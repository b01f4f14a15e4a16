"""Raw SQL repeats the tenant on every large tenant table it reads.

Row-level security filters every row anyway, but PostgreSQL plans a statement before it
knows the policy's value: without an explicit ``alias.tenant_id = …`` it cannot use the
tenant-led indexes, and one team's figures took seconds instead of milliseconds (three
statements had this bug before this check). The check reads every SQL string literal of
the apps (f-strings by their constant parts) and fails when a large table appears in
``FROM`` or ``JOIN`` with an alias that the same literal never filters by tenant.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ["tenancy", "crm", "targets", "funnel", "incentives", "devtools"]
LARGE = {
    "crm_opportunity",
    "crm_stagechange",
    "crm_activity",
    "crm_payment",
    "crm_visit",
    "crm_customer",
    "crm_contact",
    "crm_lead",
    "crm_notification",
    "targets_targetseries",
    "targets_achievementsnapshot",
    "funnel_alert",
}
TABLE = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?", re.IGNORECASE)
KEYWORDS = {"where", "join", "on", "group", "order", "left", "inner", "cross", "limit", "using"}


def _literals(path: Path) -> list[tuple[int, str]]:
    found = []
    tree = ast.parse(path.read_text(), str(path))
    parts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
             for part in node.values}  # fmt: skip
    for node in ast.walk(tree):
        if id(node) in parts:  # a piece of an f-string: read with the whole of it
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(
                str(part.value) if isinstance(part, ast.Constant) else " {} "
                for part in node.values
            )
            found.append((node.lineno, text))
    return found


def unfiltered(text: str) -> list[str]:
    """The large tables of one SQL literal read without a tenant filter on their alias."""
    missing = []
    for table, alias in TABLE.findall(text):
        if table not in LARGE:
            continue
        name = alias if alias and alias.lower() not in KEYWORDS else table
        if not re.search(rf"\b{re.escape(name)}\.tenant_id\b", text) and not (
            name == table and re.search(r"\btenant_id\s*=", text)
        ):
            missing.append(f"{table} {name}")
    return missing


def test_the_check_itself_tells_filtered_from_unfiltered() -> None:
    assert unfiltered("SELECT 1 FROM crm_opportunity o WHERE o.tenant_id = %s") == []
    assert unfiltered("SELECT 1 FROM crm_opportunity o JOIN crm_stage s ON s.id = o.stage_id "
                      "WHERE o.tenant_id = %s") == []  # fmt: skip
    assert unfiltered("FROM crm_payment p JOIN crm_opportunity o ON o.id = p.opportunity_id "
                      "WHERE p.tenant_id = %s") == ["crm_opportunity o"]  # fmt: skip
    assert unfiltered("DELETE FROM crm_activity WHERE tenant_id = %s") == []
    assert unfiltered("SELECT count(*) FROM crm_visit WHERE id = 1") == ["crm_visit crm_visit"]


def test_every_raw_sql_literal_filters_its_large_tables_by_tenant() -> None:
    problems = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for line, text in _literals(path):
                if not re.search(r"\b(SELECT|UPDATE|DELETE|INSERT)\b", text):
                    continue
                for table in unfiltered(text):
                    problems.append(f"{path.relative_to(ROOT)}:{line}: {table}")
    assert problems == []
