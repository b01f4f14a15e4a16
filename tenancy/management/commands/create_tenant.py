"""``manage.py create_tenant``: a tenant, its root org unit and its first admin.

The admin's password never appears on the command line (where ``ps`` and the shell's
history would show it): it comes from ``CRM_ADMIN_PASSWORD`` or, in a terminal, from a
prompt asked twice.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from tenancy.models import validate_time_zone
from tenancy.services import tenant_create

PASSWORD_VARIABLE = "CRM_ADMIN_PASSWORD"


class _RefusePasswordOption(argparse.Action):
    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise CommandError(
            _(
                "--admin-password is no longer accepted: a password on the command line is "
                "visible to other users of the machine. Set %(variable)s or answer the prompt."
            )
            % {"variable": PASSWORD_VARIABLE}
        )


class Command(BaseCommand):
    help = (
        "Create a tenant with its root org unit and an admin user. Safe to run again. "
        f"The admin's password is read from {PASSWORD_VARIABLE}, else asked twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--admin-username", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument(
            "--admin-password", action=_RefusePasswordOption, help=argparse.SUPPRESS
        )
        parser.add_argument("--time-zone", default="Asia/Shanghai")
        parser.add_argument("--fiscal-year-start-month", type=int, default=1)
        parser.add_argument("--currency", default="CNY")

    def handle(self, *args: Any, **options: Any) -> None:
        month = options["fiscal_year_start_month"]
        if not 1 <= month <= 12:
            raise CommandError(_("--fiscal-year-start-month must be from 1 to 12."))
        try:
            validate_time_zone(options["time_zone"])
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        password = self._password(options["admin_username"], options["admin_email"])
        try:
            result = tenant_create(
                name=options["name"],
                slug=options["slug"],
                admin_username=options["admin_username"],
                admin_email=options["admin_email"],
                admin_password=password,
                time_zone=options["time_zone"],
                fiscal_year_start_month=month,
                currency=options["currency"],
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        verb = "Created" if result.created else "Already existed:"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} tenant {result.tenant.slug} (id {result.tenant.pk}); "
                f"admin {result.admin.user.get_username()}"
            )
        )

    def _password(self, username: str, email: str) -> str:
        password = os.environ.get(PASSWORD_VARIABLE, "")
        if not password:
            if not sys.stdin.isatty():
                raise CommandError(
                    _(
                        "No password for the admin: set %(variable)s, or run the command in "
                        "a terminal to be asked for it."
                    )
                    % {"variable": PASSWORD_VARIABLE}
                )
            password = getpass.getpass(_("Password for %(username)s: ") % {"username": username})
            again = getpass.getpass(_("Password (again): "))
            if password != again:
                raise CommandError(_("The two passwords differ; nothing was created."))
            if not password:
                raise CommandError(_("The password is empty; nothing was created."))
        # The same rules as every password of the site (length, common, numeric, similarity).
        user = get_user_model()(username=username, email=email)
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise CommandError(
                _("The password was refused: %(reasons)s") % {"reasons": " ".join(error.messages)}
            ) from error
        return password
