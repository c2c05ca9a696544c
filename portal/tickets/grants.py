"""The grants the portal hands out for tickets: who may do what, for how long.

A put grant lets one agent upload into one new ticket's prefix; a read grant lets
one logged-in user read one ticket. Both are for exactly `tickets/<id>/`.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from django.conf import settings

from gatekeeper_client.grants import mint_grant
from portal.tickets.models import Ticket
from tenants.models import AgentToken
from tenants.signing import active_signing_key

# Both must stay within tenants.signing.MAX_GRANT_LIFETIME: key rotation relies on it.
PUT_GRANT_LIFETIME = 300
READ_GRANT_LIFETIME = 120
PUT_OPS = ("put",)
READ_OPS = ("get", "list")


@dataclass(frozen=True)
class Grant:
    token: str
    expires_at: dt.datetime


def _mint(ticket: Ticket, *, subject: str, name: str, ops, lifetime: int, now: float | None) -> Grant:
    issued = time.time() if now is None else now
    token = mint_grant(
        active_signing_key(ticket.tenant),
        issuer=settings.DUALKEY_PORTAL_ORIGIN,
        audience=ticket.tenant.gatekeeper_id,
        subject=subject,
        name=name,
        prefix=ticket.prefix,
        ops=ops,
        lifetime=lifetime,
        now=issued,
    )
    expires = dt.datetime.fromtimestamp(int(issued) + lifetime, tz=dt.timezone.utc)
    return Grant(token, expires)


def put_grant(ticket: Ticket, agent: AgentToken, *, now: float | None = None) -> Grant:
    return _mint(
        ticket, subject=f"agent:{agent.pk}", name=agent.name, ops=PUT_OPS, lifetime=PUT_GRANT_LIFETIME, now=now
    )


def read_grant(ticket: Ticket, user, *, now: float | None = None) -> Grant:
    return _mint(
        ticket,
        subject=f"user:{user.pk}",
        name=user.get_full_name() or user.get_username(),
        ops=READ_OPS,
        lifetime=READ_GRANT_LIFETIME,
        now=now,
    )
