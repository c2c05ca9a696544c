"""Agent tokens: random, shown once, stored only as SHA-256.

A token has 256 bits of entropy, so a plain (unsalted) SHA-256 is enough to make
a leaked database useless for authenticating, and it keeps lookup a single
indexed equality query.
"""

from __future__ import annotations

import hashlib
import secrets

from tenants.models import AgentToken, Tenant

TOKEN_PREFIX = "dkat_"
VISIBLE_CHARS = 12


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_agent_token(tenant: Tenant, name: str) -> tuple[AgentToken, str]:
    """Create a token; the plaintext is returned here and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = AgentToken.objects.create(
        tenant=tenant, name=name, prefix=token[:VISIBLE_CHARS], token_hash=hash_token(token)
    )
    return row, token
