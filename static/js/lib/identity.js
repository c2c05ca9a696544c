// The person's ID token from the tenant's own identity provider, for a gatekeeper
// with [identity] (docs/protocol.md §1b). It comes straight from the IdP, never
// through the portal: authorization code + PKCE (S256) with the customer's public
// client, in a popup opened by a click; the IdP returns the code in the URL
// fragment (response_mode=fragment: never sent to any server) to
// /identity/callback/, whose script hands it back over a BroadcastChannel; the
// code is exchanged at the IdP's token endpoint by this page. The token is kept
// in this module's memory for the page's life (never in storage), and sent only to
// the gatekeepers that take it (takesIdentity; lib/http.js). The IdP is named by
// the page's <meta name="dualkey-idp">: the tenant's settings; without it, no
// token. Its data-gatekeepers names those gatekeepers by origin: the tenant's own
// locations whose recorded health asks for the token, never a vendor-hosted one
// (tenants/locations.py identity_gatekeeper_origins).

import { el } from "./dom.js";

const CHANNEL = "dualkey-identity";
const EXPIRY_MARGIN_S = 20; // a token this close to its exp is not sent: sign in again
const CALLBACK_PATH = "/identity/callback/";

let current = null; // {token, exp}
let pending = null; // the sign-in under way, shared by every caller
const allowed = new Set(); // origins this page allowed itself (allowIdentityAt)

function originOf(url) {
  try {
    const { origin } = new URL(url);
    return origin === "null" ? null : origin;
  } catch {
    return null;
  }
}

export function identityConfig(doc = globalThis.document) {
  const meta = doc?.querySelector?.('meta[name="dualkey-idp"]');
  const issuer = meta?.dataset.issuer;
  const clientId = meta?.dataset.clientId;
  const gatekeepers = (meta?.dataset.gatekeepers || "").split(/\s+/).map(originOf).filter(Boolean);
  return issuer && clientId
    ? { issuer, clientId, gatekeepers, redirectUri: new URL(CALLBACK_PATH, location.origin).href } : null;
}

// Whether the person's ID token goes to the gatekeeper at `gatekeeperUrl`: the
// tenant names an IdP and the page names this gatekeeper's origin (exactly) as
// taking the token, or allowIdentityAt did. Any other gatekeeper never gets it,
// and never starts a sign-in.
export function takesIdentity(gatekeeperUrl, doc = globalThis.document) {
  const config = identityConfig(doc);
  const origin = originOf(gatekeeperUrl);
  return Boolean(config && origin && (config.gatekeepers.includes(origin) || allowed.has(origin)));
}

// One gatekeeper more that takes the token, for this page's life: only
// settings/verify.js, for the customer's own location it is verifying when its
// health has just asked for the tenant's IdP (the portal has not recorded it yet).
export function allowIdentityAt(gatekeeperUrl) {
  const origin = originOf(gatekeeperUrl);
  if (origin) allowed.add(origin);
}

export function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function pkceChallenge(verifier) {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
}

// The claims of a JWT, unverified: the gatekeeper verifies; the page only reads exp and nonce.
export function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

const random = () => base64url(crypto.getRandomValues(new Uint8Array(32)));

// The IdP's discovery document, from the browser (the settings check uses it too).
export async function discover(issuer, signal) {
  const url = issuer.replace(/\/+$/, "") + "/.well-known/openid-configuration";
  const response = await fetch(url, { credentials: "omit", referrerPolicy: "no-referrer", cache: "no-store", signal });
  const body = response.ok ? await response.json().catch(() => null) : null;
  if (body?.issuer !== issuer || typeof body.authorization_endpoint !== "string"
      || typeof body.token_endpoint !== "string") {
    throw new Error(`${url} is not the identity provider's discovery document (HTTP ${response.status}).`);
  }
  return body;
}

// Whether this browser reaches the IdP (its discovery document), for the settings'
// checks (settings/checks.js identityCheck): {reachable: true} or {reachable: false, detail}.
export function reachIdp(issuer, signal) {
  return discover(issuer, signal).then(() => ({ reachable: true }),
    (error) => ({ reachable: false, detail: String(error?.message || error) }));
}

// The token to send, signing in first when there is none (or it is about to end);
// null when the tenant has no IdP configured.
export async function identityToken(now = Date.now() / 1000) {
  const config = identityConfig();
  if (!config) return null;
  if (current && current.exp - EXPIRY_MARGIN_S > now) return current.token;
  pending ??= signIn(config).finally(() => { pending = null; });
  return pending;
}

// After the gatekeeper refused the token (expired, invalid): the next request signs in again.
export function forgetIdentity() {
  current = null;
}

async function signIn(config) {
  const idp = await discover(config.issuer);
  const verifier = random() + random();
  const state = random();
  const nonce = random();
  const authorize = new URL(idp.authorization_endpoint);
  for (const [name, value] of Object.entries({
    response_type: "code", response_mode: "fragment", client_id: config.clientId, redirect_uri: config.redirectUri,
    scope: "openid email", state, nonce, code_challenge: await pkceChallenge(verifier),
    code_challenge_method: "S256",
  })) authorize.searchParams.set(name, value);
  const fragment = await popupSignIn(authorize.href, config.issuer, state);
  if (fragment.get("error")) throw new Error(`The identity provider refused: ${fragment.get("error")}.`);
  const response = await fetch(idp.token_endpoint, {
    method: "POST", credentials: "omit", referrerPolicy: "no-referrer", cache: "no-store",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: fragment.get("code") || "",
      redirect_uri: config.redirectUri, client_id: config.clientId, code_verifier: verifier }),
  });
  const body = await response.json().catch(() => null);
  const claims = typeof body?.id_token === "string" ? tokenClaims(body.id_token) : null;
  if (!response.ok || !claims || claims.nonce !== nonce || typeof claims.exp !== "number") {
    throw new Error(`The identity provider gave no ID token (HTTP ${response.status}).`);
  }
  current = { token: body.id_token, exp: claims.exp };
  return current.token;
}

// A popup needs a click (browsers block others): a banner with a button, then the
// IdP's own pages in the popup; resolves to the fragment the callback sent back.
function popupSignIn(url, issuer, state) {
  return new Promise((resolve) => {
    const button = el("button", { type: "button", testid: "identity-sign-in",
      onclick: () => window.open(url, "dualkey-identity", "popup,width=520,height=700") },
    "Sign in with your organisation");
    const banner = el("div", { className: "banner banner-warning", role: "status", testid: "identity-banner" },
      `Your organisation's gatekeeper asks who you are: sign in at ${new URL(issuer).host}. `, button);
    (document.querySelector("main") || document.body).prepend(banner);
    const channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = (event) => {
      const fragment = new URLSearchParams(typeof event.data === "string" ? event.data : "");
      if (fragment.get("state") !== state) return; // another page's sign-in
      channel.close();
      banner.remove();
      resolve(fragment);
    };
  });
}
