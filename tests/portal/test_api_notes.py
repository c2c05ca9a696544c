"""Notes: the portal records that a note exists (author, time, size) and hands
its author a single-use put grant for the note's own prefix; the text goes from
the browser to the tenant's storage and never reaches the portal."""

import uuid

from django.test import Client

from portal.tickets.models import TicketEvent, TicketNote
from tests.portal.base import BaseTestCase, decode_grant
from tests.support import set_active_location


class NotesTestCase(BaseTestCase):
    def url(self, ticket=None):
        return f"/api/v1/tickets/{(ticket or self.ticket).id}/notes"

    def stored_url(self, note, ticket=None):
        return f"/api/v1/tickets/{(ticket or self.ticket).id}/notes/{note}/stored"

    def start(self, size=42, ticket=None):
        return self.client.post(self.url(ticket), {"size": size}, content_type="application/json")

    def test_bob_starts_a_note_and_gets_a_single_use_put_grant_for_its_prefix_alone(self):
        self.login(self.bob)
        r = self.start(42)
        self.assertEqual(r.status_code, 201)
        body = r.json()
        note = TicketNote.objects.get()
        self.assertEqual(body["id"], str(note.id))
        prefix = f"{self.ticket.prefix}notes/{note.id.hex}/"
        self.assertEqual(body["key"], prefix + "note.txt")
        self.assertEqual((body["size"], body["content_type"]), (42, "text/plain; charset=utf-8"))
        claims = decode_grant(body["grant"], self.tenant_a)
        self.assertEqual(claims["scope"], {"prefix": prefix, "ops": ["put"]})
        self.assertEqual(claims["sub"], f"user:{self.bob.pk}")
        self.assertEqual((note.author, note.author_name, note.size, note.stored_at), (self.bob, "Bob", 42, None))

    def test_a_note_is_listed_once_its_author_says_it_is_stored(self):
        self.login(self.bob)
        note_id = self.start(5).json()["id"]
        page = self.client.get(f"/tickets/{self.ticket.id}/")
        self.assertNotContains(page, 'data-testid="note"')
        r = self.client.post(self.stored_url(note_id))
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["id"], note_id)
        again = self.client.post(self.stored_url(note_id))  # idempotent
        self.assertEqual(again.json()["stored_at"], r.json()["stored_at"])
        self.assertEqual(TicketEvent.objects.filter(kind="note").count(), 1)
        page = self.client.get(f"/tickets/{self.ticket.id}/")
        self.assertContains(page, 'data-testid="note"', count=1)
        self.assertContains(page, f'data-key="{self.ticket.prefix}notes/{uuid.UUID(note_id).hex}/note.txt"')
        self.assertContains(page, "added a note (5 bytes)")

    def test_only_the_author_marks_a_note_stored(self):
        self.login(self.bob)
        note_id = self.start().json()["id"]
        self.login(self.alice)
        self.assertEqual(self.client.post(self.stored_url(note_id)).status_code, 404)

    def test_bad_sizes_are_a_400_with_a_reason(self):
        self.login(self.bob)
        for body in ({}, {"size": 0}, {"size": 16 * 1024 + 1}, {"size": "12"}, {"size": 1.5},
                     {"size": 3, "text": "no text here"}):
            with self.subTest(body=body):
                r = self.client.post(self.url(), body, content_type="application/json")
                self.assertEqual(r.status_code, 400)
                self.assertTrue(r.json())
        self.assertFalse(TicketNote.objects.exists())

    def test_the_text_itself_is_refused_by_name(self):
        self.login(self.bob)
        r = self.client.post(self.url(), {"size": 3, "text": "abc"}, content_type="application/json")
        self.assertEqual(r.json(), {"text": ["Unknown field."]})

    def test_charlie_gets_404_for_tenant_as_ticket_and_note(self):
        self.login(self.bob)
        note_id = self.start().json()["id"]
        self.login(self.charlie)
        self.assertEqual(self.start().status_code, 404)
        self.assertEqual(self.client.post(self.stored_url(note_id)).status_code, 404)
        # A's note under B's ticket is not found either.
        self.assertEqual(self.client.post(self.stored_url(note_id, self.ticket_b)).status_code, 404)

    def test_it_needs_a_person_and_csrf(self):
        self.assertEqual(self.start().status_code, 403)
        r = self.client.post(self.url(), {"size": 3}, content_type="application/json",
                             **self.agent_headers(self.agent_a_token))
        self.assertEqual(r.status_code, 403)
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.bob)
        self.assertEqual(client.post(self.url(), {"size": 3}, content_type="application/json").status_code, 403)

    def test_it_is_post_only(self):
        self.login(self.bob)
        self.assertEqual(self.client.get(self.url()).status_code, 405)
        self.assertEqual(self.client.get(self.stored_url(uuid.uuid4())).status_code, 405)

    def test_without_a_gatekeeper_it_is_a_409(self):
        set_active_location(self.tenant_a, gatekeeper_url="")
        self.login(self.bob)
        self.assertEqual(self.start().status_code, 409)
