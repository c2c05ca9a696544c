"""Walk every URL the portal has, with its path parameters filled in with tenant
A's objects, as someone from tenant B, as B's agent, and as nobody: none of them
may find anything of A's. Each gets exactly the answer it gets for an object
that does not exist (a refusal: 404, or 401/403/405 where its credentials or the
method are wrong for the endpoint whatever the object), and no page shows A's data.

New URL patterns are picked up automatically; a new kind of path parameter makes
`fill` fail until this test knows which of A's objects to put there.
"""

import datetime as dt
import re
import uuid

from django.urls import URLResolver, get_resolver
from django.utils import timezone

from accounts.models import Authenticator
from portal.moves.models import MoveJob, MoveObject, MoveTicket
from portal.tickets.services import create_note, note_stored
from tenants.locations import active_location
from tenants.models import Invitation
from tenants.onboarding import record_verification
from tenants.support_access import request_access
from tenants.signing import trusted_public_keys
from tenants.tokens import hash_token
from portal.webhooks.services import add_endpoint
from tests.portal.base import BaseTestCase

PARAM_RE = re.compile(r"<(?:\w+:)?(\w+)>")
REFUSALS = {401, 403, 404, 405}
ANONYMOUS_REFUSALS = REFUSALS | {302}  # pages send visitors to log in
CREDENTIAL_ROUTES = {"accounts/password/reset/<uidb64>/<token>/"}


def url_patterns(patterns=None, prefix=""):
    """(route, pattern) for every pattern, with the prefixes of includes joined on."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


class TenantIsolationTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        # An invitation support made while A was onboarding (void now that A has Alice).
        invitation = Invitation.objects.create(
            tenant=self.tenant_a, username="ann", email="ann@alpha.example", onboarding=True,
            token_hash=hash_token("walk-token"), created_at=timezone.now(), sent_at=timezone.now(),
            expires_at=timezone.now() + dt.timedelta(days=7))
        # A second factor of Alice's (tenant A's admin): one's own, reached only by its owner.
        passkey = Authenticator.objects.create(user=self.alice, kind=Authenticator.Kind.PASSKEY, name="Alpha key",
                                               credential_id="alpha-credential", public_key="pk",
                                               created_at=timezone.now())
        # A's identity provider for its gatekeeper's [identity]: named on A's pages alone.
        type(self.tenant_a).objects.filter(pk=self.tenant_a.pk).update(
            idp_issuer="https://idp.alpha.example", idp_client_id="alpha-pages-client")
        # A note Alice wrote on A's ticket (its text is in A's storage; the portal has its size).
        note = note_stored(create_note(self.ticket, self.alice, 12), self.alice)
        # Victor (vendor support) asked to read A's ticket; A's admins have not answered.
        access = request_access(self.victor, self.ticket, reason_code="bug", reason="walk", hours=24,
                                ops=["get", "list"])
        # A's webhook to its own help-desk system (portal/webhooks).
        endpoint, _ = add_endpoint(self.tenant_a, "https://psa.alpha.example/hooks/dualkey", "Alpha PSA", self.alice)
        # Alice verified A's gatekeeper (tenants/onboarding.py): B sees none of it.
        record_verification(self.tenant_a, self.alice, {"reachable": "pass", "storage": "fail"})
        # A move of A's ticket, carried by Alice's browser (portal/moves): rows only.
        now, here = timezone.now(), active_location(self.tenant_a)
        job = MoveJob.objects.create(tenant=self.tenant_a, source=here, destination=here, mode=MoveJob.Mode.BROWSER,
                                     created_by=self.alice, created_by_name="Alice", created_at=now,
                                     state_changed_at=now, state_changed_by_name="Alice")
        move = MoveTicket.objects.create(job=job, ticket=self.ticket)
        moved = MoveObject.objects.create(move=move, key=self.ticket.prefix + "message.txt", size=1234,
                                          sha256=self.ticket.files.get(name="message.txt").sha256, updated_at=now)
        self.values = {"access_id": str(access.id), "ticket_id": str(self.ticket.id), "note_id": str(note.id),
                       "token_id": str(self.agent_a.id), "slug": self.tenant_a.slug,
                       "invitation_id": str(invitation.id), "authenticator_id": str(passkey.id),
                       # Alice's own membership: as the last admin she can be neither demoted nor removed,
                       # so the control walk below changes nothing.
                       "membership_id": str(self.alice.membership.id), "endpoint_id": str(endpoint.id),
                       # A's active location: the walk's cut over (no confirmation) and retire
                       # (it is active) are refused, so it too changes nothing.
                       "location_id": str(active_location(self.tenant_a).pk),
                       # A running move: "resume" is refused (409), so the walk changes nothing.
                       "job_id": str(job.id), "object_id": str(moved.pk), "move_id": str(move.pk),
                       "action": "resume", "name": "copy.sh"}
        self.ghosts = {"access_id": str(uuid.uuid4()), "ticket_id": str(uuid.uuid4()), "note_id": str(uuid.uuid4()),
                       "token_id": "999999", "slug": "no-such-tenant",
                       "invitation_id": "999999", "membership_id": "999999", "authenticator_id": "999999",
                       "endpoint_id": "999999", "location_id": "999999", "job_id": str(uuid.uuid4()),
                       "object_id": "999999", "move_id": "999999", "action": "resume",
                       "name": "copy.sh"}
        # The password-reset link's parameters are a credential (a user id and a token
        # bound to that user's password hash), not a tenant's object: whoever holds a valid
        # link may use it, and every other link is a 404 (tests/portal/test_passwords.py).
        self.routes = [("/" + route, bool(PARAM_RE.search(route))) for route, _ in url_patterns()
                       if route not in CREDENTIAL_ROUTES]
        # Anything of A's that must never show up for B.
        self.markers = [
            str(self.ticket.id), self.ticket.id.hex, self.ticket.files.get(name="message.txt").sha256,
            "Alpha Ltd", "gk-alpha", "ann@alpha.example", "Alpha key", "alpha-credential", str(access.id),
            "gk.alpha.example", self.agent_a.prefix, "Alpha help button", "idp.alpha.example", "alpha-pages-client",
            "psa.alpha.example", "Alpha PSA",
            *[key.public_key for key in trusted_public_keys(self.tenant_a)],
            *[key.kid for key in trusted_public_keys(self.tenant_a)],
        ]

    def fill(self, route, values=None):
        values = values or self.values

        def value(match):
            name = match.group(1)
            self.assertIn(name, values, f"{route}: which of tenant A's objects goes into <{name}>?")
            return values[name]

        return PARAM_RE.sub(value, route)

    def assertLikeAGhost(self, route, refusals, log_in=lambda: None, **headers):
        """A's object gets the same refusal as an object that does not exist."""
        ghost_url = self.fill(route, self.ghosts)
        log_in()
        ghost = [(method, response.status_code) for method, response in self.requests(ghost_url, **headers)]
        log_in()
        real = [(method, response.status_code) for method, response in self.requests(self.fill(route), **headers)]
        self.assertEqual(real, ghost, route)
        for method, status in real:
            self.assertIn(status, refusals, f"{method} {route}")

    def requests(self, url, **extra):
        yield "GET", self.client.get(url, **extra)
        yield "POST", self.client.post(url, "{}", content_type="application/json", **extra)
        yield "POST form", self.client.post(url, {}, **extra)

    def assertNothingOfA(self, who, method, url, response):
        body = response.content.decode(errors="replace")
        for marker in self.markers:
            self.assertNotIn(marker, body, f"{who} {method} {url} ({response.status_code}) shows {marker!r}")

    def test_the_walk_covers_the_portal(self):
        urls = {route for route, _ in self.routes}
        for expected in ["/tickets/<uuid:ticket_id>/", "/api/v1/tickets/<uuid:ticket_id>/grant",
                         "/api/v1/tickets/<uuid:ticket_id>/complete", "/settings/tokens/<int:token_id>/revoke/",
                         "/support/tenants/<slug:slug>/", "/api/v1/tickets", "/settings/", "/audit/",
                         "/api/v1/audit/grant", "/invitations/accept/",
                         "/support/tenants/<slug:slug>/invitations/<int:invitation_id>/revoke/",
                         "/settings/members/", "/settings/members/invite/", "/settings/gatekeeper.toml",
                         "/settings/members/<int:membership_id>/role/", "/settings/members/<int:membership_id>/remove/",
                         "/settings/members/invitations/<int:invitation_id>/resend/",
                         "/settings/members/invitations/<int:invitation_id>/revoke/",
                         "/settings/sign-in/", "/settings/members/<int:membership_id>/mfa/reset/",
                         "/accounts/security/authenticators/<int:authenticator_id>/remove/",
                         "/accounts/mfa/", "/accounts/security/", "/accounts/sessions/end-all/",
                         "/accounts/sso/", "/accounts/sso/callback/", "/accounts/mfa/passkey/",
                         "/accounts/security/passkeys/", "/accounts/security/totp/",
                         "/tickets/<uuid:ticket_id>/workflow/", "/api/v1/tickets/summary-grant",
                         "/tickets/<uuid:ticket_id>/erase/", "/tickets/<uuid:ticket_id>/erase/grant",
                         "/tickets/<uuid:ticket_id>/erase/done", "/tickets/<uuid:ticket_id>/erase/receipt.json",
                         "/api/v1/tickets/<uuid:ticket_id>/notes",
                         "/api/v1/tickets/<uuid:ticket_id>/notes/<uuid:note_id>/stored",
                         "/settings/approvers/", "/support/access/", "/support/tenants/<slug:slug>/access/",
                         "/support/access/<uuid:access_id>/", "/support/access/<uuid:access_id>/grant",
                         "/settings/support-access/<uuid:access_id>/request.json",
                         "/settings/support-access/<uuid:access_id>/approve/",
                         "/settings/support-access/<uuid:access_id>/refuse/",
                         "/settings/support-access/<uuid:access_id>/end/", "/identity/callback/",
                         "/settings/onboarding/probe-grant", "/settings/onboarding/verification",
                         "/settings/webhooks/", "/settings/webhooks/add/",
                         "/settings/webhooks/<int:endpoint_id>/enabled/",
                         "/settings/webhooks/<int:endpoint_id>/delete/",
                         "/settings/webhooks/<int:endpoint_id>/test/",
                         "/settings/locations/", "/settings/locations/<int:location_id>/health/",
                         "/settings/locations/<int:location_id>/cut-over/",
                         "/settings/locations/<int:location_id>/retire/",
                         "/settings/moves/", "/settings/moves/new/", "/settings/moves/<uuid:job_id>/",
                         "/settings/moves/<uuid:job_id>/progress", "/settings/moves/<uuid:job_id>/<str:action>/",
                         "/settings/moves/<uuid:job_id>/carrier/claim",
                         "/settings/moves/<uuid:job_id>/carrier/objects/<int:object_id>/grants",
                         "/settings/moves/<uuid:job_id>/carrier/tickets/<int:move_id>/erased",
                         "/settings/moves/<uuid:job_id>/tickets/<int:move_id>/receipt.json",
                         "/support/tenants/<slug:slug>/moves/<uuid:job_id>/"]:
            self.assertIn(expected, urls)

    def as_charlie(self):
        self.client.force_login(self.charlie)  # before every request: the walk includes logout

    def test_charlie_finds_nothing_of_tenant_a(self):
        for route, has_params in self.routes:
            url = self.fill(route)
            with self.subTest(url=url):
                if has_params:
                    self.assertLikeAGhost(route, REFUSALS, self.as_charlie)
                self.as_charlie()
                for method, response in self.requests(url):
                    self.assertNothingOfA("charlie", method, url, response)

    def test_charlie_gets_404_where_his_session_is_the_right_credential(self):
        for url in [f"/tickets/{self.ticket.id}/", f"/api/v1/tickets/{self.ticket.id}",
                    f"/tickets/{self.ticket.id}/workflow/", f"/api/v1/tickets/{self.ticket.id}/notes",
                    f"/tickets/{self.ticket.id}/erase/", f"/tickets/{self.ticket.id}/erase/grant",
                    f"/tickets/{self.ticket.id}/erase/done", f"/tickets/{self.ticket.id}/erase/receipt.json",
                    f"/api/v1/tickets/{self.ticket.id}/notes/{self.values['note_id']}/stored",
                    f"/settings/tokens/{self.agent_a.id}/revoke/",
                    f"/settings/members/{self.bob.membership.id}/role/",
                    f"/settings/members/{self.bob.membership.id}/remove/",
                    f"/settings/members/{self.bob.membership.id}/mfa/reset/",
                    f"/accounts/security/authenticators/{self.values['authenticator_id']}/remove/",
                    f"/settings/members/invitations/{self.values['invitation_id']}/resend/",
                    f"/settings/members/invitations/{self.values['invitation_id']}/revoke/",
                    f"/settings/support-access/{self.values['access_id']}/request.json",
                    f"/settings/support-access/{self.values['access_id']}/approve/",
                    f"/settings/support-access/{self.values['access_id']}/refuse/",
                    f"/settings/support-access/{self.values['access_id']}/end/",
                    f"/settings/webhooks/{self.values['endpoint_id']}/enabled/",
                    f"/settings/webhooks/{self.values['endpoint_id']}/delete/",
                    f"/settings/webhooks/{self.values['endpoint_id']}/test/",
                    f"/settings/locations/{self.values['location_id']}/health/",
                    f"/settings/locations/{self.values['location_id']}/cut-over/",
                    f"/settings/locations/{self.values['location_id']}/retire/"]:
            self.as_charlie()
            get = self.client.get(url)
            post = self.client.post(url)
            self.assertIn(404, (get.status_code, post.status_code), url)
        self.as_charlie()
        self.assertEqual(self.client.post(f"/api/v1/tickets/{self.ticket.id}/grant").status_code, 404)

    def test_tenant_bs_agent_finds_nothing_of_tenant_a(self):
        headers = self.agent_headers(self.agent_b_token)
        for route, has_params in self.routes:
            url = self.fill(route)
            with self.subTest(url=url):
                if has_params:
                    self.assertLikeAGhost(route, ANONYMOUS_REFUSALS, **headers)
                for method, response in self.requests(url, **headers):
                    self.assertNothingOfA("agent B", method, url, response)
        r = self.client.post(f"/api/v1/tickets/{self.ticket.id}/complete", **headers)
        self.assertEqual(r.status_code, 404)

    def test_anonymous_visitors_find_nothing(self):
        for route, has_params in self.routes:
            url = self.fill(route)
            with self.subTest(url=url):
                if has_params:
                    self.assertLikeAGhost(route, ANONYMOUS_REFUSALS)
                for method, response in self.requests(url):
                    if response.status_code == 302 and has_params:
                        self.assertTrue(response["Location"].startswith("/accounts/login/"))
                    self.assertNothingOfA("anonymous", method, url, response)

    def test_the_filled_urls_do_reach_tenant_as_objects(self):
        """The control: with the right caller each filled URL finds A's object, so
        the 404s above come from the tenant check, not from a bad fill."""
        callers = [
            ("alice", lambda: self.client.force_login(self.alice), {}),
            ("victor", lambda: self.client.force_login(self.victor), {}),
            ("agent A", self.client.logout, self.agent_headers(self.agent_a_token)),
        ]
        for route, has_params in self.routes:
            if not has_params:
                continue
            url = self.fill(route)
            statuses = []
            for _, log_in, headers in callers:
                log_in()
                statuses += [response.status_code for _, response in self.requests(url, **headers)]
            with self.subTest(url=url):
                self.assertTrue(any(status not in (404, 405) for status in statuses), statuses)
