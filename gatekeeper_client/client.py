"""A small HTTP client for a gatekeeper: health, sign, audit search, and uploads
through the presigned POSTs it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

DEFAULT_TIMEOUT = 10


class GatekeeperRefused(Exception):
    """The gatekeeper answered with an error: status, reason code, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass
class GatekeeperClient:
    base_url: str
    session: requests.Session | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        if self.session is None:
            self.session = requests.Session()

    def health(self) -> dict[str, Any]:
        return self._answer(self.session.get(f"{self.base_url}/v1/health", timeout=self.timeout,
                                             allow_redirects=False))

    def sign(self, grant: str, ops: list[dict[str, Any]], headers: dict | None = None) -> list[dict]:
        response = self.session.post(
            f"{self.base_url}/v1/sign",
            json={"ops": ops},
            headers={"Authorization": f"Bearer {grant}", **(headers or {})},
            timeout=self.timeout, allow_redirects=False,  # a grant goes to this gatekeeper only
        )
        return self._answer(response)["results"]

    def audit_search(self, grant: str, **filters: Any) -> dict[str, Any]:
        response = self.session.post(
            f"{self.base_url}/v1/audit/search",
            json=filters,
            headers={"Authorization": f"Bearer {grant}"},
            timeout=self.timeout, allow_redirects=False,
        )
        return self._answer(response)

    @staticmethod
    def _answer(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200:
            raise GatekeeperRefused(
                response.status_code, body.get("error", "unknown"), body.get("message", response.reason)
            )
        return body


def upload(result: dict[str, Any], data: bytes, *, timeout: float = 60,
           session: requests.Session | None = None) -> None:
    """Perform one presigned POST from a `put` result of /v1/sign."""
    http = session or requests
    # Never followed: a redirect would carry the file past the check of where it goes.
    response = http.post(
        result["url"], data=result["fields"], files={"file": ("blob", data)}, timeout=timeout,
        allow_redirects=False,
    )
    if response.status_code not in (200, 201, 204):
        raise GatekeeperRefused(response.status_code, "storage_refused", response.text[:200])


def download(result: dict[str, Any], *, timeout: float = 60,
             session: requests.Session | None = None) -> bytes:
    """Fetch one object through a presigned GET from a `get` result of /v1/sign."""
    http = session or requests
    response = http.get(result["url"], timeout=timeout)
    if response.status_code != 200:
        raise GatekeeperRefused(response.status_code, "storage_refused", response.text[:200])
    return response.content
