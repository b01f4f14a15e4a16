"""Every ``./manage`` command the README shows exists and runs through the entry point
(SPEC section 9): ``check`` runs as written, each other command answers ``--help``."""

from __future__ import annotations

import re

import pytest

from tests.tenancy.processes import ROOT, database_url_for_tests, run

pytestmark = pytest.mark.django_db

BLOCKS = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
COMMANDS = sorted(
    {match for block in BLOCKS for match in re.findall(r"^\./manage ([a-z_]+)", block, re.M)}
)


def test_the_readme_shows_its_commands_through_the_entry_point() -> None:
    assert {"create_tenant", "seed_demo", "createsuperuser", "generate_data", "check"} <= set(
        COMMANDS
    )
    readme = (ROOT / "README.md").read_text()
    assert ".venv/bin/python manage.py create_tenant" not in readme
    assert "--admin-password" not in readme


@pytest.mark.parametrize("command", COMMANDS)
def test_each_readme_command_runs_through_the_entry_point(command: str) -> None:
    args = ["check"] if command == "check" else [command, "--help"]
    # No DEBUG, SECRET_KEY or broker: ./manage supplies the quick start's environment.
    result = run([str(ROOT / "manage"), *args], {"DATABASE_URL": database_url_for_tests()})
    assert result.returncode == 0, result.stderr
    if command == "check":
        assert "no issues" in result.stdout
    else:
        assert "usage: manage.py " + command in result.stdout
