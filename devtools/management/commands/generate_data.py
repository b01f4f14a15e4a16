"""``manage.py generate_data``: a tenant full of consistent, synthetic CRM history.

For demos, load tests and benchmarks (``bench/``): an org tree sized to ``--reps``
(regions → teams of about eight reps, a manager per team and per region, password
``demo``) and ``--months`` of customers, leads, opportunities with their stage history
and payments, visits and activities, written in bulk by ``devtools.datagen``. Progress goes
to stderr, the summary to stdout.

Refuses a tenant that already has opportunities unless ``--append`` is given; then the
tenant's existing reps receive the new records.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm.models import Opportunity
from devtools import datagen
from tenancy.scope import tenant_scope
from tenancy.services import tenant_create


def _positive(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Generate synthetic CRM history for a tenant (created when missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--name", help="Tenant name when it is created (default: the slug).")
        parser.add_argument("--reps", type=_positive, default=20)
        parser.add_argument("--customers", type=_positive, default=1_000)
        parser.add_argument("--opportunities", type=_positive, default=2_000)
        parser.add_argument("--activities", type=_positive, default=10_000)
        parser.add_argument("--visits", type=_positive, default=1_000)
        parser.add_argument(
            "--leads", type=_positive, default=None, help="Default: a tenth of --customers."
        )
        parser.add_argument("--months", type=_positive, default=12)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--as-of", help="End of the history (ISO 8601 date and time); default now."
        )
        parser.add_argument(
            "--append",
            action="store_true",
            help="Add to a tenant that already has opportunities.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        slug = options["tenant"]
        as_of = self._as_of(options["as_of"])
        if options["months"] < 1:
            raise CommandError("--months must be at least 1.")
        result = tenant_create(
            name=options["name"] or slug,
            slug=slug,
            admin_username=f"{slug}-admin",
            admin_email=f"{slug}-admin@{slug}.example.com",
            admin_password="demo",
        )
        tenant = result.tenant
        with tenant_scope(tenant):
            existing = Opportunity.all_objects.count()
        if existing and not options["append"]:
            raise CommandError(
                f"Tenant '{slug}' already has {existing:,} opportunities; "
                "pass --append to add more."
            )

        reps = datagen.existing_reps(tenant, as_of=as_of)
        if reps:
            if len(reps) != options["reps"]:
                self.stdout.write(f"Using the tenant's {len(reps)} existing reps.")
        else:
            if options["reps"] < 1:
                raise CommandError("--reps must be at least 1.")
            try:
                org = datagen.build_org(
                    tenant,
                    root=result.root,
                    reps=options["reps"],
                    seed=options["seed"],
                    as_of=as_of,
                )
            except ValueError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(
                f"Org: {org.regions} regions, {org.teams} teams, {org.managers} managers, "
                f"{org.reps} reps (password 'demo')."
            )
            reps = datagen.existing_reps(tenant, as_of=as_of)

        volumes = datagen.Volumes(
            customers=options["customers"],
            opportunities=options["opportunities"],
            activities=options["activities"],
            visits=options["visits"],
            leads=options["customers"] // 10 if options["leads"] is None else options["leads"],
            months=options["months"],
        )
        if volumes.customers < 1 and (
            volumes.opportunities or volumes.visits or volumes.activities
        ):
            raise CommandError("Opportunities, visits and activities need --customers ≥ 1.")
        progress = datagen.Progress(
            lambda text: self.stderr.write(text, style_func=lambda s: s, ending=""),
            tty=self.stderr.isatty(),
        )
        try:
            counts = datagen.generate_history(
                tenant, reps, volumes, seed=options["seed"], as_of=as_of, progress=progress
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Tenant '{tenant.slug}' (id {tenant.pk}): {counts.customers:,} customers, "
                f"{counts.contacts:,} contacts, {counts.leads:,} leads, "
                f"{counts.opportunities:,} opportunities ({counts.won:,} won, {counts.lost:,} "
                f"lost, {counts.stage_changes:,} stage changes), {counts.payments:,} payments, "
                f"{counts.visits:,} visits ({counts.verified_visits:,} verified), "
                f"{counts.activities:,} activities ({counts.overdue_follow_ups:,} overdue "
                f"follow-ups) in {elapsed:.1f} s."
            )
        )

    @staticmethod
    def _as_of(raw: str | None) -> datetime:
        if not raw:
            return timezone.now()
        parsed = parse_datetime(raw)
        if parsed is None:
            raise CommandError("--as-of must be an ISO 8601 date and time.")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
        return parsed
