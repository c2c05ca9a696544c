import assert from "node:assert/strict";
import { test } from "node:test";

import {
  credentialJSON, creationOptions, fromB64url, requestOptions, toB64url,
} from "../../static/js/accounts/webauthn-json.js";

const bytes = (...values) => Uint8Array.from(values).buffer;

test("base64url round-trips every length and the URL-safe alphabet", () => {
  for (let n = 0; n < 40; n++) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 97 + 251) % 256);
    const text = toB64url(data.buffer);
    assert.ok(!/[+/=]/.test(text), text);
    assert.deepEqual(new Uint8Array(fromB64url(text)), data);
  }
  assert.equal(toB64url(bytes(0xfb, 0xff, 0xbf)), "-_-_");
});

test("creation options turn the challenge, user id and excluded ids into bytes", () => {
  const o = creationOptions(JSON.stringify({
    rp: { id: "localhost", name: "Dualkey" }, user: { id: "AQID", name: "pat", displayName: "Pat" },
    challenge: "BAUG", excludeCredentials: [{ id: "Bwg", type: "public-key" }], pubKeyCredParams: [],
  }));
  assert.deepEqual(new Uint8Array(o.challenge), Uint8Array.from([4, 5, 6]));
  assert.deepEqual(new Uint8Array(o.user.id), Uint8Array.from([1, 2, 3]));
  assert.equal(o.user.name, "pat");
  assert.deepEqual(new Uint8Array(o.excludeCredentials[0].id), Uint8Array.from([7, 8]));
  assert.equal(o.rp.id, "localhost");
});

test("request options without an allow list allow any discoverable passkey", () => {
  const o = requestOptions(JSON.stringify({ challenge: "AA", rpId: "localhost", userVerification: "required" }));
  assert.deepEqual(o.allowCredentials, []);
  assert.equal(o.userVerification, "required");
});

test("an assertion becomes the JSON the portal verifies", () => {
  const credential = {
    id: "Y3JlZA", rawId: bytes(99, 114, 101, 100), type: "public-key", authenticatorAttachment: "platform",
    getClientExtensionResults: () => ({}),
    response: { clientDataJSON: bytes(123, 125), authenticatorData: bytes(1), signature: bytes(2, 3), userHandle: bytes(4) },
  };
  assert.deepEqual(credentialJSON(credential), {
    id: "Y3JlZA", rawId: "Y3JlZA", type: "public-key", authenticatorAttachment: "platform", clientExtensionResults: {},
    response: { clientDataJSON: "e30", authenticatorData: "AQ", signature: "AgM", userHandle: "BA" },
  });
});

test("an attestation carries its object and transports", () => {
  const credential = {
    id: "AQ", rawId: bytes(1), type: "public-key", getClientExtensionResults: () => ({}),
    response: { clientDataJSON: bytes(123, 125), attestationObject: bytes(160), getTransports: () => ["internal"] },
  };
  const json = credentialJSON(credential);
  assert.deepEqual(json.response, { clientDataJSON: "e30", attestationObject: "oA", transports: ["internal"] });
});
