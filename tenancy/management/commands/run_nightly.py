"""``manage.py run_nightly``: run a tenant's night (or one step) by hand, in this process."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from tenancy import nightly
from tenancy.dates import tenant_today
from tenancy.models import JobRun, Tenant


class Command(BaseCommand):
    help = (
        "Run a tenant's nightly steps now, synchronously in this process, in the night's "
        "order, printing each step's counts and duration. Steps that succeeded already "
        "run again (every step is safe to run twice)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help=("The tenant's slug."))
        parser.add_argument(
            "--date",
            help=(
                "The night's local date, YYYY-MM-DD (default: today in the tenant's time "
                "zone); the steps compute the day before it."
            ),
        )
        parser.add_argument(
            "--step",
            action="append",
            help=("Only this step (repeat for several); default: every step."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(_("No tenant has the slug %(slug)s.") % {"slug": options["tenant"]})
        if options["date"]:
            try:
                night_date = date.fromisoformat(options["date"])
            except ValueError as error:
                raise CommandError(
                    _("--date must be a date written YYYY-MM-DD, not %(value)s.")
                    % {"value": options["date"]}
                ) from error
        else:
            night_date = tenant_today(tenant)
        known = [step.name for step in nightly.steps()]
        unknown = [name for name in options["step"] or [] if name not in known]
        if unknown:
            raise CommandError(
                _("Unknown step %(steps)s; the steps are: %(known)s.")
                % {"steps": ", ".join(unknown), "known": ", ".join(known)}
            )
        self.stdout.write(
            _("Night of %(night)s for %(tenant)s (computing %(as_of)s):")
            % {
                "night": night_date.isoformat(),
                "tenant": tenant.slug,
                "as_of": (night_date - timedelta(days=1)).isoformat(),
            }
        )
        failed = []

        def progress(run: JobRun | None, step: nightly.Step) -> None:
            if run is None:
                self.stdout.write(
                    _("  %(step)s: skipped, it is running elsewhere") % {"step": step.name}
                )
                return
            duration = run.duration.total_seconds() if run.duration else 0.0
            counts = ", ".join(f"{key} {value}" for key, value in sorted(run.counts.items()))
            line = _("  %(step)s: %(status)s in %(duration).2f s%(counts)s%(error)s") % {
                "step": step.name,
                "status": run.get_status_display().lower(),
                "duration": duration,
                "counts": f" ({counts})" if counts else "",
                "error": f": {run.error}" if run.error else "",
            }
            if run.status == JobRun.Status.SUCCEEDED:
                self.stdout.write(self.style.SUCCESS(line))
            else:
                failed.append(step.name)
                self.stdout.write(self.style.ERROR(line))

        night = nightly.run_night_by_hand(
            tenant, night_date=night_date, step_names=options["step"], progress=progress
        )
        if failed:
            raise CommandError(_("Failed steps: %(steps)s.") % {"steps": ", ".join(failed)})
        if night.completed_at is not None:
            self.stdout.write(self.style.SUCCESS(_("The night is complete.")))
