// Passkeys: registration on the security page, sign-in on the login and second-step
// pages. The portal sends WebAuthn options as JSON (base64url for binary fields) and
// takes the credential back the same way (accounts/mfa.py verifies it).
// The page's CSRF token is its data attribute (no shared module: the login page stays light).
const csrfToken = (root) => root.dataset.csrfToken || "";

const fromB64url = (text) => {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
};
const toB64url = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

async function post(url, csrf, body) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: body === undefined ? "{}" : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `The portal answered ${response.status}.`);
  return answer;
}

function credentialJSON(credential) {
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

async function register(root, csrf) {
  const { options } = await post(root.dataset.optionsUrl, csrf);
  const o = JSON.parse(options);
  o.challenge = fromB64url(o.challenge);
  o.user.id = fromB64url(o.user.id);
  o.excludeCredentials = (o.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  const credential = await navigator.credentials.create({ publicKey: o });
  return post(root.dataset.verifyUrl, csrf, credentialJSON(credential));
}

async function signIn(root, csrf) {
  const { options } = await post(root.dataset.optionsUrl, csrf);
  const o = JSON.parse(options);
  o.challenge = fromB64url(o.challenge);
  o.allowCredentials = (o.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  const credential = await navigator.credentials.get({ publicKey: o });
  return post(root.dataset.verifyUrl, csrf, credentialJSON(credential));
}

const ACTIONS = { register, "sign-in": signIn };

for (const root of document.querySelectorAll("[data-passkey-root]")) {
  const error = root.querySelector("[data-passkey-error]");
  for (const button of root.querySelectorAll("[data-passkey-action]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      error.hidden = true;
      try {
        const { next } = await ACTIONS[button.dataset.passkeyAction](root, csrfToken(root));
        window.location.assign(next);
      } catch (failure) {
        error.textContent = failure.message || String(failure);
        error.hidden = false;
        button.disabled = false;
      }
    });
  }
}
