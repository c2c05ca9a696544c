// Approver keys held by this browser, and approvals signed with them.
//
// A key is made with WebCrypto (ECDSA P-256) as non-extractable: no script, ours
// included, can read its private half out; the browser keeps the CryptoKey in
// IndexedDB and signs with it. Only the public half (a JWK) is sent to the portal,
// which shows it in the [approvers] block for the gatekeeper's config. An approval
// is a compact JWS (ES256) over the claims the gatekeeper's CLI signs
// (gatekeeper/cli.py, approval_claims): docs/protocol.md §1a.

const DB_NAME = "dualkey-approver";
const STORE = "keys";

export function b64url(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

const utf8 = (value) => new TextEncoder().encode(value);

// The claims of an approval of `request` (the portal's request.json), from `now`.
export function approvalClaims(request, now) {
  return {
    aud: request.gatekeeper_id, sub: request.subject, jti: request.approval_id,
    iat: now, nbf: now, exp: now + request.duration,
    scope: { prefix: request.prefix, ops: request.ops },
  };
}

export async function signApproval(claims, privateKey, approverId) {
  const header = { alg: "ES256", typ: "JWT", kid: approverId };
  const input = `${b64url(utf8(JSON.stringify(header)))}.${b64url(utf8(JSON.stringify(claims)))}`;
  // WebCrypto's ECDSA signature is r || s, 64 bytes: exactly JWS's ES256 form.
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, utf8(input));
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

// An approver id as the gatekeeper's config takes it: 1-64 of [A-Za-z0-9._-].
export function approverId(username, random) {
  const name = String(username).replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 40) || "admin";
  return `${name}-browser-${random}`;
}

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, use) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = use(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request?.result);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

const allKeys = () => withStore("readonly", (store) => store.getAll());
const saveKey = (record) => withStore("readwrite", (store) => store.put(record));

async function makeKey(root) {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const random = b64url(crypto.getRandomValues(new Uint8Array(4))).replace(/[^A-Za-z0-9]/g, "x");
  const id = approverId(root.dataset.username, random);
  const body = new URLSearchParams({ approver_id: id, public_jwk: JSON.stringify({ kty, crv, x, y }) });
  const response = await fetch(root.dataset.addUrl, {
    method: "POST", credentials: "same-origin", body,
    headers: { "X-CSRFToken": root.dataset.csrfToken, Accept: "application/json" },
  });
  if (response.status !== 201) throw new Error(`the portal refused the key (HTTP ${response.status})`);
  await saveKey({ id: `${root.dataset.tenant}:${id}`, tenant: root.dataset.tenant, approverId: id,
    privateKey: pair.privateKey, publicJwk: { kty, crv, x, y }, created: Date.now() });
  location.reload();
}

// This browser's key for this tenant that the portal lists, or null.
async function browserKey(root) {
  const listed = new Set((root.dataset.approverIds || "").split(/\s+/).filter(Boolean));
  const mine = (await allKeys()).filter((k) => k.tenant === root.dataset.tenant && listed.has(k.approverId));
  return mine.sort((a, b) => b.created - a.created)[0] || null;
}

async function approve(form, key) {
  const response = await fetch(form.dataset.requestUrl, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`could not read the request (HTTP ${response.status})`);
  const request = await response.json();
  const claims = approvalClaims(request, Math.floor(Date.now() / 1000));
  form.elements.approval.value = await signApproval(claims, key.privateKey, key.approverId);
  form.submit();
}

async function start() {
  const root = document.querySelector("[data-approver-keys]");
  if (!root) return;
  const status = root.querySelector("[data-testid=browser-key]");
  const make = root.querySelector("[data-action=make-approver-key]");
  if (!globalThis.crypto?.subtle || !globalThis.indexedDB) {
    status.textContent = "This browser cannot hold an approver key here (it needs WebCrypto and IndexedDB, "
      + "over https or on localhost). Use the gatekeeper's CLI instead.";
    return;
  }
  make.disabled = false;
  make.addEventListener("click", () => {
    make.disabled = true;
    makeKey(root).catch((error) => { status.textContent = `No key made: ${error.message}.`; make.disabled = false; });
  });
  const key = await browserKey(root);
  status.textContent = key
    ? `This browser holds the approver key ${key.approverId}.`
    : "This browser holds no approver key of this tenant.";
  status.dataset.approverId = key ? key.approverId : "";
  for (const form of document.querySelectorAll("[data-approve-form]")) {
    const button = form.querySelector("[data-action=approve-in-browser]");
    if (!key) {
      button.title = "Make an approver key in this browser first (Approver keys, below).";
      continue;
    }
    button.disabled = false;
    button.addEventListener("click", () => {
      button.disabled = true;
      approve(form, key).catch((error) => { status.textContent = `Not approved: ${error.message}.`; button.disabled = false; });
    });
  }
}

if (typeof document !== "undefined") start();
