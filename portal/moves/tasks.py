"""The move's Celery task: one run of a worker-mode job (portal/moves/worker.py).

`acks_late` and `reject_on_worker_lost`: the task's message is acknowledged only
when the run returns, so a worker killed mid-run (kill -9, a lost machine) leaves
it in the broker, which hands it out again (Redis: after
DUALKEY_CELERY_VISIBILITY_TIMEOUT). The new run takes up the leases that ran out
and re-checks what the dead one left half done: nothing is copied twice."""

from __future__ import annotations

import logging

from celery import shared_task

from portal.moves import worker
from portal.moves.models import MoveJob

log = logging.getLogger(__name__)


@shared_task(bind=True, name="moves.run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_move(self, job_id: str) -> str:
    job = MoveJob.objects.filter(pk=job_id, mode=MoveJob.Mode.WORKER).first()
    if job is None or not job.open:
        return "gone"
    stats = worker.run_job(job.pk, carrier=f"task:{self.request.id}:{worker.uuid.uuid4().hex[:8]}")
    log.info("move %s: run over: %d copied, %d verified, %d switched, %d erased, %d failed, %d retries",
             job.pk, stats.copied, stats.verified, stats.switched, stats.erased, stats.failed, stats.retries)
    job.refresh_from_db()
    return job.state


def start(job: MoveJob) -> None:
    """Queue a run of a worker-mode job (after planning it, or resuming it)."""
    if job.mode == MoveJob.Mode.WORKER and job.state == MoveJob.State.RUNNING:
        run_move.delay(str(job.pk))
