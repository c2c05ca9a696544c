"""Per-tenant ticket numbers under concurrency: real threads, real transactions.

SQLite serialises writers by locking the whole file and Django's in-memory test
database is not shared between threads, so this runs on PostgreSQL only."""

import threading
import unittest

from django.db import connection
from django.test import TransactionTestCase

from portal.tickets.models import Ticket
from portal.tickets.services import create_ticket
from tenants.models import Tenant
from tenants.services import create_tenant
from tenants.tokens import issue_agent_token
from tests.portal.base import manifest_entry

THREADS = 8
PER_THREAD = 5


@unittest.skipUnless(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
class ConcurrentNumberingTestCase(TransactionTestCase):
    def test_concurrent_creators_never_share_a_number(self):
        tenant = create_tenant(slug="busy", name="Busy", status=Tenant.Status.ACTIVE)
        agent, _ = issue_agent_token(tenant, "button")
        errors = []

        def work():
            try:
                for _ in range(PER_THREAD):
                    create_ticket(agent, [manifest_entry()])
            except Exception as error:  # noqa: BLE001 - reported below, on the main thread
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        numbers = sorted(Ticket.objects.filter(tenant=tenant).values_list("number", flat=True))
        self.assertEqual(numbers, list(range(1, THREADS * PER_THREAD + 1)))
