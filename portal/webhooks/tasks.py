"""Delivering one webhook event: a signed POST, retried with exponential backoff
(DUALKEY_WEBHOOK_RETRY_SECONDS × 2^(attempt−1), at most DUALKEY_WEBHOOK_MAX_ATTEMPTS
attempts), every attempt logged (status code or error, never the secret)."""

from __future__ import annotations

import json
import time

import requests
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from accounts.sealed import unseal
from portal.webhooks.models import TEST_EVENT, WebhookAttempt, WebhookDelivery
from portal.webhooks.services import SECRET_PURPOSE
from portal.webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign
from portal.webhooks.urlcheck import UnsafeURL, check_url

TIMEOUT_SECONDS = 10
MAX_BACKOFF_SECONDS = 3600
USER_AGENT = "Dualkey-Webhooks/1"


def backoff(attempt: int) -> int:
    return min(settings.DUALKEY_WEBHOOK_RETRY_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)


def _send(delivery: WebhookDelivery) -> tuple[int | None, str]:
    endpoint = delivery.endpoint
    try:
        check_url(endpoint.url)
    except UnsafeURL as refused:
        return None, f"refused: {refused}"
    secret = unseal(endpoint.secret_sealed, purpose=SECRET_PURPOSE, owner=endpoint.pk).decode()
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, EVENT_HEADER: delivery.event,
               DELIVERY_HEADER: str(delivery.id), SIGNATURE_HEADER: sign(secret, body, now=int(time.time()))}
    try:
        # No redirects: a receiver must not bounce the portal onto another address.
        answer = requests.post(endpoint.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS,
                               allow_redirects=False)
    except requests.RequestException as failure:
        return None, type(failure).__name__  # the kind only: its text may quote the URL's query
    return answer.status_code, "" if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"


@shared_task(bind=True, name="webhooks.deliver", max_retries=None, acks_late=True)
def deliver(self, delivery_id: str) -> str:
    delivery = WebhookDelivery.objects.select_related("endpoint", "endpoint__tenant").filter(id=delivery_id).first()
    if delivery is None or delivery.outcome in (WebhookDelivery.Outcome.DELIVERED, WebhookDelivery.Outcome.FAILED):
        return "gone"
    number = delivery.attempts.count() + 1
    started = time.monotonic()
    if not delivery.endpoint.enabled and delivery.event != TEST_EVENT:
        status_code, error = None, "endpoint disabled"
    else:
        status_code, error = _send(delivery)
    WebhookAttempt.objects.create(delivery=delivery, number=number, attempted_at=timezone.now(),
                                  status_code=status_code, error=error[:300],
                                  duration_ms=int((time.monotonic() - started) * 1000))
    if not error:
        outcome = WebhookDelivery.Outcome.DELIVERED
    elif number >= settings.DUALKEY_WEBHOOK_MAX_ATTEMPTS or error == "endpoint disabled" \
            or error.startswith("refused:"):  # no retry can change the endpoint's settings
        outcome = WebhookDelivery.Outcome.FAILED
    else:
        outcome = WebhookDelivery.Outcome.RETRYING
    WebhookDelivery.objects.filter(pk=delivery.pk).update(outcome=outcome)
    if outcome == WebhookDelivery.Outcome.RETRYING:
        raise self.retry(countdown=backoff(number))
    return outcome
