import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { base64url, pkceChallenge, tokenClaims } from "../../static/js/lib/identity.js";

test("the PKCE challenge is RFC 7636's S256 of the verifier", async () => {
  // RFC 7636, appendix B.
  assert.equal(await pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  const verifier = "a".repeat(43);
  assert.equal(await pkceChallenge(verifier), createHash("sha256").update(verifier).digest("base64url"));
  assert.equal(base64url(new Uint8Array([251, 255])), "-_8");
});

test("a token's claims are read without trusting them; garbage is null", () => {
  const payload = Buffer.from(JSON.stringify({ exp: 5, nonce: "n" })).toString("base64url");
  assert.deepEqual(tokenClaims(`h.${payload}.s`), { exp: 5, nonce: "n" });
  assert.equal(tokenClaims("nonsense"), null);
});
