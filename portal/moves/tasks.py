"""The move's Celery task: one run of a worker-mode job (portal/moves/worker.py).

`acks_late` and `reject_on_worker_lost`: the task's message is acknowledged only
when the run returns, so a worker killed mid-run (kill -9, a lost machine) leaves
it in the broker, which hands it out again (Redis: after
DUALKEY_CELERY_VISIBILITY_TIMEOUT). The new run takes up the leases that ran out
and re-checks what the dead one left half done: nothing is copied twice."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db.models import Max
from django.utils import timezone

from portal.moves import worker
from portal.moves.models import MoveJob, MoveObject

# A running job none of whose objects changed for this long has no live run (its
# task lost, or a resume that queued none): `kick_stalled` queues one.
STALLED_AFTER = dt.timedelta(minutes=10)

log = logging.getLogger(__name__)


@shared_task(bind=True, name="moves.run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_move(self, job_id: str) -> str:
    job = MoveJob.objects.filter(pk=job_id, mode=MoveJob.Mode.WORKER).first()
    if job is None or not (job.open or job.erasure_due):
        return "gone"
    stats = worker.run_job(job.pk, carrier=f"task:{self.request.id}:{worker.uuid.uuid4().hex[:8]}")
    log.info("move %s: run over: %d copied, %d verified, %d switched, %d erased, %d failed, %d retries",
             job.pk, stats.copied, stats.verified, stats.switched, stats.erased, stats.failed, stats.retries)
    job.refresh_from_db()
    return job.state


def start(job: MoveJob) -> None:
    """Queue a run of a worker-mode job (after planning it, resuming it, or cancelling it
    with switched tickets whose source copies are still to be erased)."""
    if job.mode == MoveJob.Mode.WORKER and (job.state == MoveJob.State.RUNNING or job.erasure_due):
        run_move.delay(str(job.pk))


def stalled_jobs(now: dt.datetime | None = None) -> list[MoveJob]:
    """Running worker-mode jobs with no sign of a live run for STALLED_AFTER."""
    now = now or timezone.now()
    jobs = (MoveJob.objects.filter(mode=MoveJob.Mode.WORKER, state=MoveJob.State.RUNNING,
                                   state_changed_at__lt=now - STALLED_AFTER)
            .annotate(last=Max("tickets__move_objects__updated_at")))
    live = set(MoveObject.objects.filter(move__job__in=jobs, leased_until__gt=now)
               .values_list("move__job_id", flat=True))
    return [job for job in jobs if job.pk not in live and (job.last is None or job.last < now - STALLED_AFTER)]


@shared_task(name="moves.kick_stalled", ignore_result=True)
def kick_stalled() -> int:
    """Every few minutes (CELERY_BEAT_SCHEDULE): a run for each stalled job. A second
    run beside a live one would be harmless (the leases keep them apart), only wasteful."""
    jobs = stalled_jobs()
    for job in jobs:
        log.info("move %s: no live run: queueing one", job.pk)
        start(job)
    return len(jobs)
