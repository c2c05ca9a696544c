from tests.portal.base import BaseTestCase


class SchemaTestCase(BaseTestCase):
    def schema(self):
        return self.client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    def operations(self, schema):
        for path, methods in schema["paths"].items():
            for method, operation in methods.items():
                yield f"{method.upper()} {path}", operation

    def test_it_defines_every_security_scheme_it_names(self):
        # Naming a scheme by hand (extend_schema(auth=…)) does not add it to
        # securitySchemes: the schema named schemes it never defined.
        schema = self.schema()
        defined = set(schema["components"]["securitySchemes"])
        self.assertEqual(defined, {"agentToken", "cookieAuth"})
        for label, operation in self.operations(schema):
            with self.subTest(operation=label):
                self.assertTrue(operation["security"])
                self.assertLessEqual({name for rule in operation["security"] for name in rule}, defined)

    def test_each_method_names_its_one_kind_of_caller(self):
        security = {label: operation["security"] for label, operation in self.operations(self.schema())}
        agent, session = [{"agentToken": []}], [{"cookieAuth": []}]
        self.assertEqual(security, {
            "GET /api/v1/tickets": session, "POST /api/v1/tickets": agent,
            "GET /api/v1/tickets/{ticket_id}": session, "POST /api/v1/tickets/{ticket_id}/complete": agent,
            "POST /api/v1/tickets/{ticket_id}/put-grant": agent,
            "POST /api/v1/tickets/{ticket_id}/grant": session, "POST /api/v1/audit/grant": session,
            "POST /api/v1/tickets/summary-grant": session, "POST /api/v1/tickets/{ticket_id}/notes": session,
            "POST /api/v1/tickets/{ticket_id}/notes/{note_id}/stored": session,
        })

    def test_it_documents_the_list_as_the_page_it_is(self):
        schema = self.schema()
        operation = schema["paths"]["/api/v1/tickets"]["get"]
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        self.assertEqual(set(page["properties"]), {"count", "next", "previous", "results"})
        self.assertEqual(
            {p["name"]: p["schema"] for p in operation["parameters"]},
            {"number": {"type": "integer", "minimum": 1}, "page": {"type": "integer", "minimum": 1}},
        )

    def test_every_refusal_is_documented_as_json(self):
        for label, operation in self.operations(self.schema()):
            refusals = {code: answer for code, answer in operation["responses"].items() if code[0] != "2"}
            with self.subTest(operation=label):
                self.assertIn("404" if "{ticket_id}" in label else "403", refusals)
                for answer in refusals.values():
                    self.assertEqual(set(answer["content"]), {"application/json"})
                    self.assertTrue(answer["description"])

    def test_it_serves_the_openapi_schema(self):
        r = self.client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        self.assertEqual(r.status_code, 200)
        schema = r.json()
        paths = schema["paths"]
        self.assertEqual(set(paths), {
            "/api/v1/tickets", "/api/v1/tickets/{ticket_id}", "/api/v1/tickets/{ticket_id}/complete",
            "/api/v1/tickets/{ticket_id}/put-grant", "/api/v1/tickets/{ticket_id}/grant", "/api/v1/audit/grant",
            "/api/v1/tickets/summary-grant", "/api/v1/tickets/{ticket_id}/notes",
            "/api/v1/tickets/{ticket_id}/notes/{note_id}/stored",
        })
        self.assertEqual(set(paths["/api/v1/tickets"]), {"get", "post"})
        create = paths["/api/v1/tickets"]["post"]
        self.assertIn("201", create["responses"])
        self.assertIn("agentToken", schema["components"]["securitySchemes"])

    def test_the_create_body_is_the_manifest_and_nothing_else(self):
        # No subject (what the user typed stays in the tenant's storage), and no
        # unknown fields: the API refuses them by name, and the schema says so.
        schemas = self.schema()["components"]["schemas"]
        create, entry = schemas["TicketCreate"], schemas["FileEntry"]
        self.assertEqual(set(create["properties"]), {"files"})
        self.assertEqual(set(entry["properties"]), {"name", "size", "content_type", "sha256"})
        self.assertIs(create["additionalProperties"], False)
        self.assertIs(entry["additionalProperties"], False)
        for name in ["TicketSummary", "TicketDetail"]:
            with self.subTest(schema=name):
                self.assertNotIn("subject", schemas[name]["properties"])

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

