// WebAuthn between JSON and the browser's API: the portal sends options with binary
// fields as base64url (py_webauthn's options_to_json) and takes the credential back
// the same way. No DOM here: tests/js/accounts.test.mjs runs it in Node.

export const fromB64url = (text) => {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
};

export const toB64url = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

const withIds = (list) => (list || []).map((c) => ({ ...c, id: fromB64url(c.id) }));

// navigator.credentials.create's publicKey, from the portal's JSON text.
export function creationOptions(json) {
  const o = JSON.parse(json);
  return { ...o, challenge: fromB64url(o.challenge), user: { ...o.user, id: fromB64url(o.user.id) },
           excludeCredentials: withIds(o.excludeCredentials) };
}

// navigator.credentials.get's publicKey, from the portal's JSON text.
export function requestOptions(json) {
  const o = JSON.parse(json);
  return { ...o, challenge: fromB64url(o.challenge), allowCredentials: withIds(o.allowCredentials) };
}

// A PublicKeyCredential (from create or get) as the JSON the portal verifies.
export function credentialJSON(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return { id: credential.id, rawId: toB64url(credential.rawId), type: credential.type, response,
           clientExtensionResults: credential.getClientExtensionResults(),
           authenticatorAttachment: credential.authenticatorAttachment };
}
