from celery import shared_task

from tenants.signing import purge_retired_keys


@shared_task(name="tenants.tasks.purge_retired_signing_keys")
def purge_retired_signing_keys() -> int:
    """Hourly (CELERY_BEAT_SCHEDULE): drop retired keys no live grant can need."""
    return purge_retired_keys()
