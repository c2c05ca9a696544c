// Passkeys: registration on the security page, sign-in on the login and second-step
// pages. The portal sends WebAuthn options as JSON (base64url for binary fields) and
// takes the credential back the same way (accounts/mfa.py verifies it).
import { credentialJSON, creationOptions, requestOptions } from "./webauthn-json.js";

// The page's CSRF token is its data attribute (no shared module: the login page stays light).
const csrfToken = (root) => root.dataset.csrfToken || "";

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

async function register(root, csrf) {
  const { options } = await post(root.dataset.optionsUrl, csrf);
  const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
  return post(root.dataset.verifyUrl, csrf, credentialJSON(credential));
}

async function signIn(root, csrf) {
  const { options } = await post(root.dataset.optionsUrl, csrf);
  const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
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
