from tests.portal.base import BaseTestCase


class SchemaTestCase(BaseTestCase):
    def test_it_serves_the_openapi_schema(self):
        r = self.client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        self.assertEqual(r.status_code, 200)
        schema = r.json()
        paths = schema["paths"]
        self.assertEqual(set(paths), {
            "/api/v1/tickets", "/api/v1/tickets/{ticket_id}", "/api/v1/tickets/{ticket_id}/complete",
            "/api/v1/tickets/{ticket_id}/grant", "/api/v1/audit/grant",
        })
        self.assertEqual(set(paths["/api/v1/tickets"]), {"get", "post"})
        create = paths["/api/v1/tickets"]["post"]
        self.assertIn("201", create["responses"])
        self.assertIn("agentToken", schema["components"]["securitySchemes"])

    def test_it_rejects_a_wrong_method(self):
        self.assertEqual(self.client.post("/api/v1/schema").status_code, 405)
        self.assertEqual(self.client.post("/api/v1/docs").status_code, 405)

    def test_it_serves_yaml_by_default(self):
        r = self.client.get("/api/v1/schema")
        self.assertEqual(r.status_code, 200)
        self.assertIn(b"openapi: 3", r.content)


class DocsTestCase(BaseTestCase):
    def test_it_serves_swagger_ui_from_local_static_files(self):
        r = self.client.get("/api/v1/docs")
        self.assertEqual(r.status_code, 200)
        html = r.content.decode()
        self.assertIn("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js", html)
        self.assertNotIn("cdn", html.lower())
        self.assertNotIn("<style", html)
        self.assertIn("script-src 'self'", r["Content-Security-Policy"])

    def test_its_init_script_is_a_separate_file(self):
        r = self.client.get("/api/v1/docs", {"script": ""})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r["Content-Type"].split(";")[0], "application/javascript")
        self.assertIn("/api/v1/schema", r.content.decode())

    def test_the_sidecar_assets_are_served(self):
        r = self.client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
        self.assertEqual(r.status_code, 200)
