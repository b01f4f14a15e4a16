"""``migrate`` run as the owner role, then the application role's grants refreshed."""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate

from tenancy.db import grant_app_role_privileges, owner_role


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        using = options.get("database") or "default"
        with owner_role(using):
            super().handle(*args, **options)
            grant_app_role_privileges(using)
