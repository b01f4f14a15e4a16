"""``migrate`` run as the owner role with the row-level security bypass on, then the
application role ensured (created, granted to the owner) and its grants refreshed."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.core.management.commands import migrate
from django.db import connections

from tenancy.db import ensure_app_role, grant_app_role_privileges, owner_role
from tenancy.rls import session_bypass


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        using = options.get("database") or "default"
        connection = connections[using]
        with owner_role(using), session_bypass(connection):
            try:
                super().handle(*args, **options)
                # Again after the migrations: a database migrated before the role was
                # granted to this owner (or by another owner) gets the membership now.
                ensure_app_role(connection)
            except ImproperlyConfigured as error:
                raise CommandError(str(error)) from error
            grant_app_role_privileges(using)
