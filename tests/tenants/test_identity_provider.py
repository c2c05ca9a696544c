"""The tenant's identity provider for its gatekeeper's [identity]: its issuer and
public client id at the portal (non-secret), named in the pages (a meta tag) and in
their CSP's connect-src; every person's grant names them by email (`identity`);
the popup's callback page holds nothing of anyone's."""

from portal.tickets.grants import read_grant
from tenants.locations import add_location, retire
from tenants.models import StorageLocation, Tenant
from tests.portal.base import BaseTestCase, decode_grant

URL = "/settings/storage/"
IDP = "https://idp.alpha.example"


class IdentityProviderTestCase(BaseTestCase):
    def form(self, **changes):
        return {"data_location": "vendor", "region": "", "bucket": "", "gatekeeper_url": self.tenant_a.gatekeeper_url,
                "gatekeeper_id": self.tenant_a.gatekeeper_id, "storage_origin": self.tenant_a.storage_origin,
                "idp_issuer": IDP, "idp_client_id": "alpha-pages", **changes}

    def test_an_admin_saves_the_idp_and_the_pages_name_it_in_a_meta_tag_and_their_csp(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(URL, self.form()).status_code, 302)
        self.tenant_a.refresh_from_db()
        self.assertEqual((self.tenant_a.idp_issuer, self.tenant_a.idp_client_id), (IDP, "alpha-pages"))
        for path in (f"/tickets/{self.ticket.id}/", "/audit/", "/settings/", "/tickets/"):
            page = self.client.get(path)
            self.assertContains(page, f'<meta name="dualkey-idp" data-issuer="{IDP}" data-client-id="alpha-pages" '
                                      'data-gatekeepers="">')
            connect = next(d for d in page["Content-Security-Policy"].split("; ") if d.startswith("connect-src"))
            self.assertIn(IDP, connect.split(), path)

    def test_the_meta_names_only_the_customers_gatekeepers_that_reported_identity(self):
        # The person's ID token goes only to these (lib/http.js): never the vendor-hosted
        # gatekeeper, even if its health said [identity], nor one that did not ask for it.
        Tenant.objects.filter(pk=self.tenant_a.pk).update(idp_issuer=IDP, idp_client_id="alpha-pages")
        vendor = StorageLocation.objects.get(tenant=self.tenant_a, state="active")
        self.assertEqual(vendor.kind, "vendor")

        def location(url, ops, kind="customer"):
            added = add_location(self.tenant_a, self.alice, kind=kind, gatekeeper_url=url,
                                 gatekeeper_id=url.split("//")[1].split(".")[0], storage_origin="https://s3.example")
            StorageLocation.objects.filter(pk=added.pk).update(reported_identity_ops=ops)
            return added

        location("https://gk-b.alpha.example/prefix", "get,list,put")
        location("https://gk-c.alpha.example:8443", "audit")
        location("https://gk-d.alpha.example", "")  # its health: no [identity]
        retire(location("https://gk-e.alpha.example", "get"), self.alice)
        location("https://gk-f.alpha.example", "get", kind="vendor")
        StorageLocation.objects.filter(pk=vendor.pk).update(reported_identity_ops="get,list")
        self.login(self.bob)
        for path in (f"/tickets/{self.ticket.id}/", "/tickets/"):
            self.assertContains(self.client.get(path), f'<meta name="dualkey-idp" data-issuer="{IDP}" '
                                'data-client-id="alpha-pages" data-gatekeepers="https://gk-b.alpha.example '
                                'https://gk-c.alpha.example:8443">', html=False, msg_prefix=path)
        # A vendor location sharing a customer one's origin takes that origin off the list.
        location("https://gk-b.alpha.example/other", "", kind="vendor")
        self.assertContains(self.client.get("/tickets/"), 'data-gatekeepers="https://gk-c.alpha.example:8443">')

    def test_one_without_the_other_is_refused_with_a_reason(self):
        self.login(self.alice)
        for changes in ({"idp_client_id": ""}, {"idp_issuer": ""}, {"idp_issuer": "not a url"}):
            r = self.client.post(URL, self.form(**changes))
            self.assertEqual(r.status_code, 400, changes)
        self.tenant_a.refresh_from_db()
        self.assertEqual(self.tenant_a.idp_issuer, "")

    def test_staff_cannot_set_it_and_another_tenants_admin_sets_only_their_own(self):
        self.login(self.bob)
        self.assertEqual(self.client.post(URL, self.form()).status_code, 403)
        self.login(self.charlie)
        beta = Tenant.objects.get(slug="beta")  # its own gatekeeper: a new one would be a cut over
        self.client.post(URL, self.form(gatekeeper_url=beta.gatekeeper_url, gatekeeper_id=beta.gatekeeper_id,
                                        storage_origin=beta.storage_origin))
        self.assertEqual(Tenant.objects.get(pk=self.tenant_a.pk).idp_issuer, "")
        self.assertEqual(Tenant.objects.get(slug="beta").idp_issuer, IDP)

    def test_without_an_idp_no_page_names_one(self):
        self.login(self.bob)
        self.assertNotContains(self.client.get(f"/tickets/{self.ticket.id}/"), "dualkey-idp")

    def test_a_persons_grant_names_them_by_their_email_in_lower_case(self):
        self.bob.email = "Bob@Alpha.Example"
        self.bob.save()
        claims = decode_grant(read_grant(self.ticket, self.bob).token, self.tenant_a)
        self.assertEqual(claims["identity"], "bob@alpha.example")
        self.bob.email = ""
        self.bob.save()
        self.assertNotIn("identity", decode_grant(read_grant(self.ticket, self.bob).token, self.tenant_a))

    def test_the_callback_page_holds_only_its_script(self):
        page = self.client.get("/identity/callback/")  # anyone: the IdP's redirect lands here
        self.assertEqual(page.status_code, 200)
        self.assertContains(page, "js/lib/identity-callback.js")
        self.assertNotIn("connect-src 'self' http", page["Content-Security-Policy"])

    def test_the_settings_pages_probe_grants_name_the_admin_too(self):
        from tenants.onboarding import probe_grants

        self.alice.email = "alice@alpha.example"
        self.alice.save()
        grants = probe_grants(self.tenant_a, self.alice)
        for token in (grants.put, grants.get, grants.delete):
            self.assertEqual(decode_grant(token, self.tenant_a)["identity"], "alice@alpha.example")
