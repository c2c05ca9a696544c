"""Vendor support asks to read one ticket; a tenant admin approves with an approver
key the customer holds, refuses, or ends it; support opens the report with grants
that carry the approval. The story of tests/portal/base.py, plus Vera, a second
vendor support person, and Dana, a second admin of A."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from gatekeeper.cli import approval_claims, public_jwk, sign
from tenants.models import ApproverKey, Membership, SecurityEvent, SupportAccess
from tenants.support_access import request_access
from tests.portal.base import BaseTestCase, decode_grant

ALICE_KEY = ec.generate_private_key(ec.SECP256R1())
DANA_KEY = ec.generate_private_key(ec.SECP256R1())


class SupportAccessTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.alice.email = "alice@alpha.example"
        self.alice.save()
        self.dana = self.make_user("dana", "Dana", self.tenant_a, Membership.Role.ADMIN)
        self.vera = get_user_model().objects.create_user("vera", password="password", is_staff=True)

    def ask(self, user=None, ticket=None, **changes):
        return request_access(user or self.victor, ticket or self.ticket, **{
            "reason_code": "bug", "reason": "upload fails", "hours": 24, "ops": ["get", "list"], **changes})

    def approval(self, access, key=ALICE_KEY, approver="alice-laptop", now=None, **changes):
        self.client.force_login(self.alice)
        request = {**self.client.get(f"/settings/support-access/{access.id}/request.json").json(), **changes}
        return sign(approval_claims(request, int(now or time.time())), key, approver)

    def approve(self, access, jws, user=None):
        self.client.force_login(user or self.alice)
        return self.client.post(f"/settings/support-access/{access.id}/approve/", {"approval": jws})

    def approved(self, **changes):
        access = self.ask(**changes)
        self.assertEqual(self.approve(access, self.approval(access)).status_code, 302)
        return SupportAccess.objects.get(id=access.id)


class SupportAsksTestCase(SupportAccessTestCase):
    URL = "/support/tenants/alpha/access/"

    def form(self, **changes):
        return {"number": self.ticket.number, "reason_code": "customer_asked", "reason": "They asked us to look.",
                "hours": 24, "ops": ["get", "list"], **changes}

    def test_it_shows_the_form_with_a_day_by_default(self):
        self.client.force_login(self.victor)
        r = self.client.get(self.URL)
        self.assertContains(r, 'value="24"')
        self.assertContains(r, "Ask Alpha Ltd for access")

    def test_asking_records_the_request_and_mails_the_tenants_admins(self):
        self.client.force_login(self.victor)
        r = self.client.post(self.URL, self.form())
        self.assertRedirects(r, "/support/access/")
        access = SupportAccess.objects.get()
        self.assertEqual((access.tenant, access.ticket, access.requested_by, access.duration, access.ops),
                         (self.tenant_a, self.ticket, self.victor, 24 * 3600, ["get", "list"]))
        self.assertEqual(access.status, "pending")
        [message] = mail.outbox
        self.assertEqual(message.to, ["alice@alpha.example"])
        self.assertIn("vendor support asked for access", message.subject.lower())
        event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.SUPPORT_ACCESS_REQUESTED)
        self.assertEqual((event.tenant, event.actor_name), (self.tenant_a, "victor (vendor support)"))
        self.assertIn(f"ticket #{self.ticket.number}", event.new_value)

    def test_it_checks_its_input(self):
        self.client.force_login(self.victor)
        for bad in [{"reason": "x" * 1025}, {"reason": "é" * 513}, {"hours": 0}, {"hours": 169},
                    {"ops": ["put"]}, {"ops": []}, {"reason_code": "curious"}, {"reason": "bell\x07"},
                    {"number": "x"}]:
            with self.subTest(bad=bad):
                self.assertEqual(self.client.post(self.URL, self.form(**bad)).status_code, 400)
        self.assertFalse(SupportAccess.objects.exists())

    def test_a_ticket_number_the_tenant_does_not_have_is_not_found(self):
        self.client.force_login(self.victor)
        self.assertEqual(self.client.post(self.URL, self.form(number=999)).status_code, 404)
        # Tenant B's ticket by its number, asked of A, is not A's.
        self.ticket_b.number = 57
        self.ticket_b.save()
        self.assertEqual(self.client.post(self.URL, self.form(number=57)).status_code, 404)

    def test_it_is_for_vendor_support_only(self):
        for user in (self.alice, self.bob, self.charlie):
            self.client.force_login(user)
            self.assertEqual(self.client.get(self.URL).status_code, 404)
            self.assertEqual(self.client.post(self.URL, self.form()).status_code, 404)
        self.client.force_login(self.victor)
        self.assertEqual(self.client.get("/support/tenants/no-such/access/").status_code, 404)
        self.assertEqual(self.client.put(self.URL).status_code, 405)

    def test_support_sees_its_own_requests_and_their_states(self):
        pending, refused = self.ask(), self.ask()
        self.client.force_login(self.alice)
        self.client.post(f"/settings/support-access/{refused.id}/refuse/")
        approved = self.approved()
        expired = self.approved()
        SupportAccess.objects.filter(id=expired.id).update(ends_at=timezone.now() - dt.timedelta(seconds=1))
        self.ask(user=self.vera)  # a colleague's: not Victor's business
        self.client.force_login(self.victor)
        r = self.client.get("/support/access/")
        states = dict(re.findall(r'data-access-id="([0-9a-f-]+)" data-state="(\w+)"', r.content.decode()))
        self.assertEqual(states, {str(pending.id): "pending", str(refused.id): "refused",
                                  str(approved.id): "approved", str(expired.id): "expired"})
        self.assertContains(r, f"/support/access/{approved.id}/", count=1)
        self.assertEqual(self.client.post("/support/access/").status_code, 405)
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/support/access/").status_code, 404)


class AdminAnswersTestCase(SupportAccessTestCase):
    def test_the_settings_page_lists_the_request_with_its_reason(self):
        access = self.ask(reason="Printer on fire")
        self.client.force_login(self.alice)
        r = self.client.get("/settings/")
        self.assertContains(r, f'data-access-id="{access.id}" data-state="pending"')
        self.assertContains(r, "Printer on fire")
        self.assertContains(r, f"/settings/support-access/{access.id}/request.json")

    def test_request_json_is_what_the_cli_signs(self):
        access = self.ask()
        self.client.force_login(self.alice)
        r = self.client.get(f"/settings/support-access/{access.id}/request.json")
        self.assertEqual(r["Cache-Control"], "no-store")
        self.assertEqual(r.json(), {
            "approval_id": str(access.id), "gatekeeper_id": "gk-alpha", "subject": f"support:{self.victor.pk}",
            "name": "victor (vendor support)", "prefix": self.ticket.prefix, "ops": ["get", "list"],
            "duration": 86400, "reason_code": "bug", "reason": "upload fails", "ticket": f"#{self.ticket.number}",
            "tenant": "alpha"})
        self.assertEqual(self.client.post(f"/settings/support-access/{access.id}/request.json").status_code, 405)

    def test_an_admin_approves_with_a_cli_approval(self):
        access = self.ask()
        before = time.time()
        r = self.approve(access, self.approval(access))
        self.assertRedirects(r, "/settings/#support-access", fetch_redirect_response=False)
        access.refresh_from_db()
        self.assertEqual((access.status, access.decided_by, [a["approver"] for a in access.approvals]),
                         ("approved", self.alice, ["alice-laptop"]))
        self.assertAlmostEqual(access.ends_at.timestamp(), before + 86400, delta=5)
        self.assertTrue(SecurityEvent.objects.filter(kind=SecurityEvent.Kind.SUPPORT_ACCESS_APPROVED).exists())

    def test_an_approval_that_says_anything_else_is_refused(self):
        access = self.ask()
        other = self.ask(ticket=self.ticket)  # another request, same ticket
        for jws in ["", "garbage", self.approval(other), self.approval(access, gatekeeper_id="gk-beta"),
                    self.approval(access, prefix="tickets/"), self.approval(access, ops=["get"]),
                    self.approval(access, subject=f"support:{self.vera.pk}"),
                    self.approval(access, duration=86401),
                    self.approval(access, now=time.time() - 90000)]:  # ended already
            with self.subTest(jws=jws[:30]):
                r = self.approve(access, jws)
                self.assertEqual(r.status_code, 400)
                self.assertContains(r, 'data-testid="support-error"', status_code=400)
        access.refresh_from_db()
        self.assertEqual((access.status, access.approvals), ("pending", []))

    def test_a_browser_keys_approval_must_verify_with_its_key(self):
        self.client.force_login(self.alice)
        jwk = json.dumps(public_jwk(ALICE_KEY.public_key()))
        self.assertEqual(self.client.post("/settings/approvers/", {"approver_id": "alice-browser-1",
                                                                   "public_jwk": jwk}).status_code, 201)
        access = self.ask()
        forged = self.approval(access, key=DANA_KEY, approver="alice-browser-1")
        self.assertEqual(self.approve(access, forged).status_code, 400)
        self.assertEqual(self.approve(access, self.approval(access, approver="alice-browser-1")).status_code, 302)

    def test_two_admins_with_two_keys_make_a_two_person_approval(self):
        access = self.approved()
        self.assertEqual(self.approve(access, self.approval(access)).status_code, 409)  # the same key again
        dana_jws = self.approval(access, key=DANA_KEY, approver="dana-laptop")
        self.assertEqual(self.approve(access, dana_jws).status_code, 409)  # Alice again, another key
        self.assertEqual(self.approve(access, dana_jws, user=self.dana).status_code, 302)
        access.refresh_from_db()
        self.assertEqual([a["approver"] for a in access.approvals], ["alice-laptop", "dana-laptop"])
        self.client.force_login(self.victor)
        answer = self.client.post(f"/support/access/{access.id}/grant").json()
        self.assertEqual(answer["approval"].split(","), [a["jws"] for a in access.approvals])

    def test_refusing_and_ending(self):
        pending = self.ask()
        self.client.force_login(self.alice)
        self.assertRedirects(self.client.post(f"/settings/support-access/{pending.id}/refuse/"),
                             "/settings/#support-access", fetch_redirect_response=False)
        self.assertEqual(self.client.post(f"/settings/support-access/{pending.id}/refuse/").status_code, 409)
        self.assertEqual(self.approve(pending, self.approval(pending)).status_code, 409)
        self.assertEqual(self.client.post(f"/settings/support-access/{pending.id}/end/").status_code, 409)
        approved = self.approved()
        self.client.force_login(self.alice)
        self.assertEqual(self.client.post(f"/settings/support-access/{approved.id}/end/").status_code, 302)
        approved.refresh_from_db()
        self.assertEqual(approved.status, "ended")
        kinds = set(SecurityEvent.objects.values_list("kind", flat=True))
        self.assertTrue({"support_access_refused", "support_access_ended"} <= kinds)

    def test_only_the_tenants_admins_answer(self):
        access = self.ask()
        jws = self.approval(access)
        for user, status in [(self.bob, 403), (self.charlie, 404), (self.victor, 404)]:
            self.client.force_login(user)
            with self.subTest(user=user.username):
                for url in ["request.json", "approve/", "refuse/", "end/"]:
                    method = self.client.get if url == "request.json" else self.client.post
                    self.assertEqual(method(f"/settings/support-access/{access.id}/{url}",
                                            {"approval": jws}).status_code, status, url)
        self.client.force_login(self.alice)
        for url in ["approve/", "refuse/", "end/"]:
            self.assertEqual(self.client.get(f"/settings/support-access/{access.id}/{url}").status_code, 405)
        access.refresh_from_db()
        self.assertEqual(access.status, "pending")


class ApproverKeysTestCase(SupportAccessTestCase):
    URL = "/settings/approvers/"

    def test_a_browser_keys_public_half_joins_the_approvers_block(self):
        self.client.force_login(self.alice)
        jwk = public_jwk(ALICE_KEY.public_key())
        r = self.client.post(self.URL, {"approver_id": "alice-browser-1", "public_jwk": json.dumps(jwk)})
        self.assertEqual((r.status_code, r.json()), (201, {"approver_id": "alice-browser-1"}))
        page = self.client.get("/settings/").content.decode()
        block = re.search(r'<pre class="code" id="approvers-toml"[^>]*>(.*?)</pre>', page, re.S).group(1)
        self.assertIn("alice-browser-1 = ", block)
        self.assertIn(jwk["x"], block)
        self.assertTrue(SecurityEvent.objects.filter(kind=SecurityEvent.Kind.APPROVER_KEY_ADDED).exists())

    def test_it_refuses_what_is_not_a_public_p256_key(self):
        from jwt.algorithms import ECAlgorithm

        self.client.force_login(self.alice)
        private = ECAlgorithm.to_jwk(ALICE_KEY, as_dict=True)
        p384 = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), as_dict=True)
        good = json.dumps(public_jwk(ALICE_KEY.public_key()))
        for approver_id, jwk in [("a", json.dumps(private)), ("a", json.dumps(p384)), ("a", "{"), ("a", "[]"),
                                 ("has space", good), ("", good)]:
            with self.subTest(approver_id=approver_id, jwk=jwk[:20]):
                self.assertEqual(self.client.post(self.URL, {"approver_id": approver_id,
                                                             "public_jwk": jwk}).status_code, 400)
        self.client.post(self.URL, {"approver_id": "a", "public_jwk": good})
        self.assertEqual(self.client.post(self.URL, {"approver_id": "a", "public_jwk": good}).status_code, 400)
        self.assertEqual(ApproverKey.objects.count(), 1)

    def test_only_admins_add_keys_and_only_to_their_tenant(self):
        good = json.dumps(public_jwk(ALICE_KEY.public_key()))
        self.client.force_login(self.bob)
        self.assertEqual(self.client.post(self.URL, {"approver_id": "b", "public_jwk": good}).status_code, 403)
        self.client.force_login(self.victor)
        self.assertEqual(self.client.post(self.URL, {"approver_id": "v", "public_jwk": good}).status_code, 404)
        self.client.force_login(self.charlie)
        self.assertEqual(self.client.post(self.URL, {"approver_id": "c", "public_jwk": good}).status_code, 201)
        self.assertEqual(self.client.get(self.URL).status_code, 405)
        self.assertEqual(list(ApproverKey.objects.values_list("tenant__slug", "approver_id")), [("beta", "c")])


class SupportReadsTestCase(SupportAccessTestCase):
    def test_an_approved_request_opens_the_report_with_its_own_grant_url(self):
        access = self.approved()
        self.client.force_login(self.victor)
        r = self.client.get(f"/support/access/{access.id}/")
        self.assertContains(r, f'data-grant-url="/support/access/{access.id}/grant"')
        self.assertContains(r, 'data-testid="support-access-banner"')
        self.assertIn("gk.alpha.example", r["Content-Security-Policy"])

    def test_the_grant_is_for_the_support_subject_and_ends_with_the_approval(self):
        access = self.approved()
        SupportAccess.objects.filter(id=access.id).update(ends_at=timezone.now() + dt.timedelta(seconds=50))
        self.client.force_login(self.victor)
        r = self.client.post(f"/support/access/{access.id}/grant")
        self.assertEqual(r.status_code, 200)
        answer = r.json()
        claims = decode_grant(answer["grant"], self.tenant_a)
        self.assertEqual((claims["sub"], claims["scope"]), (f"support:{self.victor.pk}",
                                                            {"prefix": self.ticket.prefix, "ops": ["get", "list"]}))
        self.assertLessEqual(claims["exp"] - claims["iat"], 50)  # not past the approval's end
        self.assertEqual(answer["approval"], access.approvals[0]["jws"])

    def test_no_grant_unless_the_approval_runs(self):
        pending = self.ask()
        ended = self.approved()
        self.client.force_login(self.alice)
        self.client.post(f"/settings/support-access/{ended.id}/end/")
        expired = self.approved()
        SupportAccess.objects.filter(id=expired.id).update(ends_at=timezone.now() - dt.timedelta(seconds=1))
        self.client.force_login(self.victor)
        for access, state in [(pending, "pending"), (ended, "ended"), (expired, "expired")]:
            with self.subTest(state=state):
                self.assertEqual(self.client.post(f"/support/access/{access.id}/grant").status_code, 403)
                page = self.client.get(f"/support/access/{access.id}/")
                self.assertContains(page, f'data-state="{state}"', status_code=403)

    def test_only_the_asker_reads(self):
        access = self.approved()
        for user in (self.vera, self.alice, self.bob, self.charlie):
            self.client.force_login(user)
            with self.subTest(user=user.username):
                self.assertEqual(self.client.get(f"/support/access/{access.id}/").status_code, 404)
                self.assertEqual(self.client.post(f"/support/access/{access.id}/grant").status_code, 404)
        self.client.force_login(self.victor)
        self.assertEqual(self.client.get(f"/support/access/{access.id}/grant").status_code, 405)
        self.assertEqual(self.client.post(f"/support/access/{access.id}/").status_code, 405)
