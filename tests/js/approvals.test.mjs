import assert from "node:assert/strict";
import { test } from "node:test";

import { approvalClaims, approverId, b64url, signApproval } from "../../static/js/settings/approvals.js";

const REQUEST = { approval_id: "a-1", gatekeeper_id: "gk-acme", subject: "support:9", prefix: "tickets/42/",
  ops: ["get", "list"], duration: 3600 };

test("the claims are the CLI's: this gatekeeper, person, prefix and ops, from now for the duration", () => {
  assert.deepEqual(approvalClaims(REQUEST, 1000), { aud: "gk-acme", sub: "support:9", jti: "a-1", iat: 1000,
    nbf: 1000, exp: 4600, scope: { prefix: "tickets/42/", ops: ["get", "list"] } });
});

test("an approver id is one the gatekeeper's config takes", () => {
  assert.equal(approverId("alice@acme.example", "Ab12"), "alice-acme.example-browser-Ab12");
  assert.match(approverId("x".repeat(80), "r"), /^[A-Za-z0-9._-]{1,64}$/);
  assert.equal(approverId("", "r"), "admin-browser-r");
});

test("an approval is a compact ES256 JWS whose signature verifies with the public key", async () => {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const jws = await signApproval(approvalClaims(REQUEST, 1000), pair.privateKey, "alice-browser-1");
  const [header, payload, signature] = jws.split(".");
  const decode = (part) => JSON.parse(Buffer.from(part, "base64url").toString());
  assert.deepEqual(decode(header), { alg: "ES256", typ: "JWT", kid: "alice-browser-1" });
  assert.equal(decode(payload).jti, "a-1");
  const raw = Buffer.from(signature, "base64url");
  assert.equal(raw.length, 64); // r || s, as JWS wants
  assert.ok(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, raw,
    new TextEncoder().encode(`${header}.${payload}`)));
  assert.equal(b64url(new Uint8Array([251, 255])), "-_8");
});
