"""The migrations that bring storage locations: every existing tenant gets one
active location from its own settings, and every existing ticket that location."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TransactionTestCase

BEFORE = [("tenants", "0008_tenant_identity_provider"), ("tickets", "0004_ticket_erasure")]
AFTER = [("tenants", "0009_storage_locations"), ("tickets", "0005_ticket_location")]


class StorageLocationsMigrationTestCase(TransactionTestCase):
    def migrate(self, targets):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    def tearDown(self):
        self.migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    def test_each_tenant_gets_its_settings_as_its_active_location_and_tickets_follow(self):
        old = self.migrate(BEFORE)
        Tenant, Ticket = old.get_model("tenants", "Tenant"), old.get_model("tickets", "Ticket")
        acme = Tenant.objects.create(slug="acme", name="Acme", data_location="customer", region="eu-west-1",
                                     bucket="acme-reports", gatekeeper_url="https://gk.acme.example",
                                     gatekeeper_id="gk-acme", storage_origin="https://acme.s3.example")
        bare = Tenant.objects.create(slug="bare", name="Bare")
        tickets = [Ticket.objects.create(tenant=acme, number=n) for n in (1, 2)]
        Ticket.objects.create(tenant=bare, number=1)

        new = self.migrate(AFTER)
        Location, Ticket = new.get_model("tenants", "StorageLocation"), new.get_model("tickets", "Ticket")
        at_acme = Location.objects.get(tenant__slug="acme")
        self.assertEqual((at_acme.state, at_acme.kind, at_acme.gatekeeper_url, at_acme.gatekeeper_id,
                          at_acme.storage_origin, at_acme.chosen_bucket, at_acme.chosen_region),
                         ("active", "customer", "https://gk.acme.example", "gk-acme", "https://acme.s3.example",
                          "acme-reports", "eu-west-1"))
        self.assertEqual(Location.objects.get(tenant__slug="bare").state, "active")
        self.assertEqual({t.location_id for t in Ticket.objects.filter(pk__in=[t.pk for t in tickets])},
                         {at_acme.pk})
        self.assertFalse(Ticket.objects.filter(location__isnull=True).exists())
