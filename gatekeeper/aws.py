"""boto3 clients as the gatekeeper makes them: one per process and service, made
on first use (making one costs milliseconds, using one is thread-safe), from the
standard credential chain (the Lambda role's, the instance's; never hard-coded).
Timeouts are short and retries few: a request waits on every call."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config as BotoConfig


class LazyClient:
    def __init__(self, session: boto3.session.Session, service: str, endpoint_url: str | None,
                 **config: Any):
        self._session = session
        self._args = dict(service_name=service, endpoint_url=endpoint_url or None,
                          config=BotoConfig(**config))
        self._client = None
        self._lock = threading.Lock()

    def get(self):
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._session.client(**self._args)
        return self._client
