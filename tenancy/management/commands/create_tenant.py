"""``manage.py create_tenant``: a tenant, its root org unit and its first admin."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenancy.models import validate_time_zone
from tenancy.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant with its root org unit and an admin user. Safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--admin-username", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-password", required=True)
        parser.add_argument("--time-zone", default="Asia/Shanghai")
        parser.add_argument("--fiscal-year-start-month", type=int, default=1)
        parser.add_argument("--currency", default="CNY")

    def handle(self, *args: Any, **options: Any) -> None:
        month = options["fiscal_year_start_month"]
        if not 1 <= month <= 12:
            raise CommandError("--fiscal-year-start-month must be from 1 to 12.")
        try:
            validate_time_zone(options["time_zone"])
            result = tenant_create(
                name=options["name"],
                slug=options["slug"],
                admin_username=options["admin_username"],
                admin_email=options["admin_email"],
                admin_password=options["admin_password"],
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
