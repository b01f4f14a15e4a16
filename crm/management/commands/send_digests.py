"""``manage.py send_digests --tenant SLUG [--date D]``: prepare and send a day's digests
now, whatever the hour (SPEC section 7), with progress. Safe to run again: a digest
already sent, or being sent, is never sent twice."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from crm import digest
from tenancy.dates import tenant_today
from tenancy.models import Tenant
from tenancy.scope import platform_scope, tenant_scope


class Command(BaseCommand):
    help = "Prepare and send one tenant's morning digests of a day (default: its today)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--date", help="The tenant's local date, YYYY-MM-DD.")

    def handle(self, *args: Any, **options: Any) -> None:
        with platform_scope("send_digests: find the tenant"):
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(_("No tenant with the slug %(slug)s.") % {"slug": options["tenant"]})
        try:
            day = date.fromisoformat(options["date"]) if options["date"] else tenant_today(tenant)
        except ValueError as error:
            raise CommandError(_("The date must be YYYY-MM-DD.")) from error
        with tenant_scope(tenant):
            prepared = digest.prepare_digests(tenant, day)
        self.stdout.write(
            _(
                "%(tenant)s %(date)s: %(members)d members with something to say, "
                "%(new)d new digests."
            )
            % {
                "tenant": tenant.slug,
                "date": day.isoformat(),
                "members": prepared["members"],
                "new": prepared["prepared"],
            }
        )

        def progress(done: int, total: int) -> None:
            self.stdout.write(_("sent %(done)d of %(total)d") % {"done": done, "total": total})

        counts = digest.send_pending(tenant, day, progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                _("Sent %(sent)d, failed %(failed)d, already taken %(skipped)d.") % counts
            )
        )
