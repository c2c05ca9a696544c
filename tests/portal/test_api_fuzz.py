"""The API against its own OpenAPI schema, fuzzed with schemathesis.

"A malformed request is a 4xx with a reason, never a 500": schemathesis generates
valid and invalid requests for every operation in /api/v1/schema and sends them to
the real WSGI application (in-process, real database), as Alice with her session
and CSRF token on the session endpoints and with Alpha's agent token on the agent
endpoints. Every response must be documented in the schema (status code, content
type, body), a 5xx never, invalid input must be refused, valid input accepted, and
the endpoints must refuse the request once its credentials are taken away or wrong.

Bounded and seeded so CI sees the same requests every run:
DUALKEY_FUZZ_EXAMPLES=1000 (and DUALKEY_FUZZ_SEED=<n>) searches further, locally.
"""

from __future__ import annotations

import os
import uuid

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.generation.value import GeneratedValue

from portal.tickets.models import Ticket, TicketFile, TicketNote
from portal.tickets.services import next_ticket_number
from portal.wsgi import application
from tenants.models import AgentToken, Membership, Tenant
from tenants.services import create_tenant
from tenants.tokens import VISIBLE_CHARS, hash_token, issue_agent_token
from tests.portal.base import manifest_entry

MAX_EXAMPLES = int(os.environ.get("DUALKEY_FUZZ_EXAMPLES", "100"))
SEED = int(os.environ.get("DUALKEY_FUZZ_SEED", "20261123"))

CONFIG = schemathesis.Config.from_str(
    f"""
seed = {SEED}
[generation]
deterministic = true
"""
)
schema = schemathesis.openapi.from_wsgi("/api/v1/schema?format=json", application, config=CONFIG)

# Fixed ids, so that the seeded generator can aim at real tickets: Alpha's own
# (found), and Beta's (another tenant's: must look exactly like a missing one).
ALPHA_TICKET = uuid.UUID("a1a1a1a1-0000-4000-8000-000000000001")
BETA_TICKET = uuid.UUID("b2b2b2b2-0000-4000-8000-000000000002")
ALPHA_NOTE = uuid.UUID("a1a1a1a1-0000-4000-8000-00000000000e")

AGENT_OPERATIONS = {"tickets_create", "tickets_complete_create"}


# Fixed credentials: schemathesis builds some of its cases (the coverage phase's)
# when the test is collected, before any fixture has run, so the values the auth
# below puts into them cannot come from the database.
AGENT_TOKEN = "dkat_fuzz" + "A" * 39
SESSION_KEY = "fuzzsession" + "0" * 21
CSRF_TOKEN = "fuzzcsrf" + "C" * 24  # a 32-character secret: the cookie and the header


def _ticket(tenant, agent, ticket_id):
    ticket = Ticket.objects.create(id=ticket_id, tenant=tenant, number=next_ticket_number(tenant), agent=agent)
    TicketFile.objects.create(ticket=ticket, **manifest_entry())
    return ticket


@pytest.fixture
def keep_test_connection():
    """The WSGI handler closes "old" database connections when a request ends.
    Inside a test that is the connection holding the test's transaction: on
    PostgreSQL the next query would find it closed. Django's own test client
    disconnects the same signal handlers for the same reason."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def story(db, keep_test_connection):
    """Alpha's admin Alice (a session) and Alpha's agent (a token), as in
    tests/portal/base.py; Beta owns a ticket that Alpha's callers must not see."""
    alpha = create_tenant(
        slug="alpha", name="Alpha Ltd", status=Tenant.Status.ACTIVE, region="eu-west-1", bucket="alpha-reports",
        gatekeeper_url="https://gk.alpha.example/dualkey", gatekeeper_id="gk-alpha",
        storage_origin="https://alpha-reports.s3.eu-west-1.amazonaws.com",
    )
    beta = create_tenant(
        slug="beta", name="Beta GmbH", status=Tenant.Status.ACTIVE, region="eu-central-1", bucket="beta-reports",
        gatekeeper_url="https://gk.beta.example", gatekeeper_id="gk-beta",
        storage_origin="https://beta-reports.s3.eu-central-1.amazonaws.com",
    )
    alice = get_user_model().objects.create_user("alice", password="password", first_name="Alice")
    Membership.objects.create(user=alice, tenant=alpha, role=Membership.Role.ADMIN)
    agent_a = AgentToken.objects.create(
        tenant=alpha, name="Alpha help button", prefix=AGENT_TOKEN[:VISIBLE_CHARS], token_hash=hash_token(AGENT_TOKEN)
    )
    agent_b, _ = issue_agent_token(beta, "Beta help button")
    alpha_ticket = _ticket(alpha, agent_a, ALPHA_TICKET)
    _ticket(beta, agent_b, BETA_TICKET)
    TicketNote.objects.create(id=ALPHA_NOTE, ticket=alpha_ticket, author=alice, author_name="Alice",
                              created_at=timezone.now(), size=12)

    browser = Client()
    browser.force_login(alice)
    Session.objects.filter(pk=browser.session.session_key).update(session_key=SESSION_KEY)


@schema.auth(refresh_interval=None)
class StoryAuth:
    """Credentials on every generated request, where the schema's security schemes
    say, so that schemathesis also replays each operation without them and with
    wrong ones (its `ignored_auth` check)."""

    def get(self, case, context):
        return case.operation.definition.raw.get("operationId")

    def set(self, case, operation_id, context):
        if operation_id in AGENT_OPERATIONS:
            case.headers = {**(case.headers or {}), "Authorization": f"Token {AGENT_TOKEN}"}
        else:
            case.cookies = {**(case.cookies or {}), "sessionid": SESSION_KEY, "csrftoken": CSRF_TOKEN}
            case.headers = {**(case.headers or {}), "X-CSRFToken": CSRF_TOKEN}


@schema.hook
def before_generate_path_parameters(context, strategy):
    """Random UUIDs never name a ticket: mix in the story's, for valid draws only
    (a negative draw must stay invalid)."""
    def aim(value):
        if isinstance(value, GeneratedValue) or not isinstance(value, dict):
            return st.just(value)
        real = [{**value, "ticket_id": str(ALPHA_TICKET)}, {**value, "ticket_id": str(BETA_TICKET)}]
        if "note_id" in value:  # Alice's note on Alpha's ticket
            real.append({**value, "ticket_id": str(ALPHA_TICKET), "note_id": str(ALPHA_NOTE)})
        return st.sampled_from([value, *real])

    return strategy.flatmap(aim)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # explicit: schemathesis's coverage cases (boundaries, missing parts, other
    # methods); generate: the seeded random ones. No shrinking: a failure prints its
    # curl as found.
    phases=[Phase.explicit, Phase.generate],
    # The story is built once per operation; that operation's examples share its database.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_keeps_its_schema(case, story):
    if case.meta is not None and case.meta.generation.mode.is_positive and _repeats_a_file_name(case.body):
        # Valid to the schema, refused by the one rule it cannot state.
        response = case.call()
        assert response.status_code == 400, response.text
        assert "unique" in response.json()["files"][0]
        return
    case.call_and_validate()


def _repeats_a_file_name(body) -> bool:
    files = body.get("files") if isinstance(body, dict) else None
    names = [entry.get("name") for entry in files if isinstance(entry, dict)] if isinstance(files, list) else []
    return len(names) != len(set(names))
