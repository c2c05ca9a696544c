"""`manage.py move_tickets TENANT --to LOCATION_ID [--concurrency N]`: support moves a
tenant's tickets from its vendor-hosted storage to one of its locations, with the
vendor's worker (portal/moves/worker.py) running in this process, and a progress
line: objects and bytes done of total, rate, time left, failures.

Resumable: run it again and it takes up the tenant's unfinished job to that
destination (a paused one is resumed) where it stopped. A customer-owned source is
refused: the vendor never carries those bytes, the tenant's admin moves them in the
browser."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.moves import services, worker
from portal.moves.models import MoveJob
from portal.tickets.models import Ticket
from tenants.models import StorageLocation, Tenant


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _clock(seconds) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def progress_line(job: MoveJob, started: float, done_before: int, moving: int = 0) -> str:
    """One line: objects, bytes, this run's rate, time left, failures."""
    now = services.progress(job)
    done = now["bytes"]["done"] + moving
    elapsed = max(time.monotonic() - started, 1e-3)
    rate = max(done - done_before, 0) / elapsed
    left = (now["bytes"]["total"] - done) / rate if rate else None
    total_objects, failures = now["objects"]["total"], len(now["failures"])
    width = 24
    filled = int(width * done / now["bytes"]["total"]) if now["bytes"]["total"] else width
    return (f"[{'#' * filled}{'.' * (width - filled)}] {now['objects']['done']}/{total_objects} objects  "
            f"{_size(done)}/{_size(now['bytes']['total'])}  {_size(rate)}/s  {_clock(left)} left  "
            f"{failures} failed")


class Command(BaseCommand):
    help = "Move a tenant's tickets from vendor-hosted storage to one of its locations (resumable)."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's slug")
        parser.add_argument("--to", dest="destination", required=True, type=int, help="the destination location's id")
        parser.add_argument("--from", dest="source", type=int, help="the source location's id (if several hold tickets)")
        parser.add_argument("--concurrency", type=int, default=None,
                            help=f"objects carried at once (1 to {services.MAX_CONCURRENCY}; default 4)")
        parser.add_argument("--by", dest="username", help="who starts it (a vendor staff user; named in the audit log)")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        destination = StorageLocation.objects.filter(tenant=tenant, pk=options["destination"]).first()
        if destination is None:
            raise CommandError(f"Tenant {tenant.slug} has no location {options['destination']}.")
        concurrency = options["concurrency"]
        if concurrency is not None and not 1 <= concurrency <= services.MAX_CONCURRENCY:
            raise CommandError(f"--concurrency is a whole number from 1 to {services.MAX_CONCURRENCY}.")
        user = None
        if options["username"]:
            user = get_user_model().objects.filter(username=options["username"], is_staff=True).first()
            if user is None:
                raise CommandError(f"No vendor staff user {options['username']!r}.")
        job = MoveJob.objects.filter(tenant=tenant, destination=destination, mode=MoveJob.Mode.WORKER,
                                     state__in=[MoveJob.State.RUNNING, MoveJob.State.PAUSED]).first()
        if job is not None:
            if job.state == MoveJob.State.PAUSED:
                services.change(job, "resume", user)
            self.stdout.write(f"Resuming move {job.id} of {tenant.slug} to location {destination.pk}.")
        else:
            job = self._plan(tenant, destination, options["source"], user, concurrency)
        started, before = time.monotonic(), services.progress(job)["bytes"]["done"]
        tty = self.stdout.isatty() if hasattr(self.stdout, "isatty") else False
        last = [0.0]

        def show(job, stats):
            line = progress_line(job, started, before, stats.bytes_moving)
            if tty:
                self.stdout.write("\r" + line, ending="")
                self.stdout.flush()
            elif time.monotonic() - last[0] >= 2:
                last[0] = time.monotonic()
                self.stdout.write(line)

        stats = worker.run_job(job.pk, on_progress=show, progress_every=0.5 if tty else 2,
                               concurrency=concurrency)
        job.refresh_from_db()
        if tty:
            self.stdout.write("")
        self.stdout.write(progress_line(job, started, before))
        self.stdout.write(f"Move {job.id}: {job.state}. This run: {stats.copied} copied, {stats.verified} verified, "
                          f"{stats.switched} tickets switched, {stats.erased} erased at the source, "
                          f"{stats.retries} retries.")
        failures = services.progress(job)["failures"]
        for failure in failures:
            self.stdout.write(f"  ticket #{failure['ticket']} {failure['key']}: {failure['code']}: {failure['reason']}")
        if job.state == MoveJob.State.RUNNING:
            self.stdout.write("Not finished (objects held by another worker, or a transient failure): run it again.")
        if failures:
            raise CommandError(f"{len(failures)} object(s) failed: their tickets stay at the source.")

    def _plan(self, tenant, destination, source_id, user, concurrency) -> MoveJob:
        holding = (Ticket.objects.filter(tenant=tenant, erased_at__isnull=True).exclude(location=destination)
                   .exclude(location__isnull=True).values_list("location", flat=True).distinct())
        sources = list(StorageLocation.objects.filter(tenant=tenant, pk__in=list(holding)))
        if source_id is not None:
            sources = [s for s in sources if s.pk == source_id]
            if not sources:
                raise CommandError(f"Location {source_id} holds none of {tenant.slug}'s tickets.")
        if not sources:
            raise CommandError(f"No ticket of {tenant.slug} is anywhere but location {destination.pk}.")
        if len(sources) > 1:
            raise CommandError("Tickets are at several locations (" + ", ".join(str(s.pk) for s in sources)
                               + "): name one with --from.")
        [source] = sources
        if services.mode_for(source, destination) != MoveJob.Mode.WORKER:
            why = (f"Location {source.pk} is the customer's own storage: the vendor never carries those bytes."
                   if source.kind != Tenant.DataLocation.VENDOR else
                   "The customer's gatekeeper asks the person's ID token ([identity]) for what the worker would do"
                   " there: a worker has none.")
            raise CommandError(f"{why} The tenant's admin moves those tickets in the browser (Settings → Storage).")
        try:
            plan = services.plan(tenant, source, destination, user, concurrency=concurrency or 4)
        except services.MoveRefused as refused:
            raise CommandError(refused.message) from None
        for number, why in plan.left_out:
            self.stdout.write(f"  ticket #{number} left out: {why}")
        self.stdout.write(f"Planned move {plan.job.id} of {tenant.slug}: {plan.job.tickets.count()} tickets from "
                          f"location {source.pk} to location {destination.pk}.")
        return plan.job


