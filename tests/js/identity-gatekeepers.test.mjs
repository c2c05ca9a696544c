// The person's ID token goes only to the gatekeepers the page names as taking it
// (<meta name="dualkey-idp" data-gatekeepers>): lib/identity.js and lib/http.js,
// with the IdP's sign-in (discovery, the popup, the token endpoint) faked.
import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeElement, installFakeDocument } from "./fake-dom.mjs";
import { postToGatekeeper } from "../../static/js/lib/http.js";
import * as identity from "../../static/js/lib/identity.js";

const ISSUER = "https://idp.example/realms/acme";
const X = "https://gk-x.example"; // the customer's gatekeeper with [identity], named by the page
const Y = "https://gk-y.example"; // another (say, the vendor-hosted one): not named

installFakeDocument();
const main = new FakeElement("main");
const meta = new FakeElement("meta");
Object.assign(meta.dataset, { issuer: ISSUER, clientId: "pages", gatekeepers: `${X}:443 https://other.example:8443` });
globalThis.document.querySelector = (selector) => (selector === 'meta[name="dualkey-idp"]' ? meta
  : selector === "main" ? main : null);
globalThis.location = { origin: "https://portal.example" };

// The IdP: window.open of its authorize URL answers at once on the callback's channel.
const opened = [];
globalThis.window = {
  open(url) {
    opened.push(url);
    const state = new URL(url).searchParams.get("state");
    const channel = new BroadcastChannel("dualkey-identity");
    channel.postMessage(`code=the-code&state=${state}`);
    channel.close();
  },
};
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const calls = [];
globalThis.fetch = async (url, options = {}) => {
  calls.push({ url: String(url), options });
  const json = (body) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });
  if (String(url) === `${ISSUER}/.well-known/openid-configuration`) {
    return json({ issuer: ISSUER, authorization_endpoint: `${ISSUER}/auth`, token_endpoint: `${ISSUER}/token` });
  }
  if (String(url) === `${ISSUER}/token`) {
    const nonce = new URL(opened.at(-1)).searchParams.get("nonce");
    return json({ id_token: `h.${b64({ exp: Date.now() / 1000 + 600, nonce })}.s` });
  }
  return json({ results: [] }); // a gatekeeper
};

const toIdp = () => calls.filter((c) => c.url.startsWith(ISSUER));
const posted = (origin) => calls.filter((c) => c.url.startsWith(`${origin}/`) && c.options.method === "POST");

// Clicks the banner's sign-in button as soon as the page shows it.
async function clickSignIn() {
  for (let i = 0; i < 200 && !main.children.length; i += 1) await new Promise((r) => { setTimeout(r, 5); });
  const [banner] = main.children;
  banner.findAll("button")[0].listeners.click[0]();
}

test("a gatekeeper the page does not name gets no token and starts no sign-in", { timeout: 3000 }, async () => {
  await postToGatekeeper(Y, "/v1/sign", "grant", { ops: [] });
  const [call] = posted(Y);
  assert.equal(call.options.headers.Authorization, "Bearer grant");
  assert.equal("X-Identity-Token" in call.options.headers, false);
  assert.deepEqual(toIdp(), []);
  assert.deepEqual(main.children, []);
  assert.deepEqual(opened, []);
  assert.equal(identity.takesIdentity(`${Y}/`), false);
});

test("the named gatekeeper gets the token (after the sign-in); the other still none", { timeout: 3000 }, async () => {
  const [body] = await Promise.all([postToGatekeeper(`${X}/`, "/v1/sign", "grant", { ops: [] }), clickSignIn()]);
  assert.deepEqual(body, { results: [] });
  const token = posted(X)[0].options.headers["X-Identity-Token"];
  assert.match(token, /^h\..+\.s$/);
  assert.equal(opened.length, 1);

  calls.length = 0;
  await postToGatekeeper(Y, "/v1/audit/search", "grant", {});
  await postToGatekeeper(X, "/v1/sign", "grant", { ops: [] });
  assert.equal("X-Identity-Token" in posted(Y)[0].options.headers, false);
  assert.equal(posted(X)[0].options.headers["X-Identity-Token"], token); // kept for the page's life
  assert.deepEqual(toIdp(), []);
  assert.equal(identity.takesIdentity(`${X}/prefix/`), true); // the meta's https://gk-x.example:443 is X's origin
});

test("origins are compared exactly", () => {
  for (const url of [`${X}.evil.example`, "http://gk-x.example", `${X}:8443`, "https://other.example",
    "not a url", ""]) {
    assert.equal(identity.takesIdentity(url), false, url);
  }
  assert.equal(identity.takesIdentity("https://other.example:8443/gk"), true);
});
