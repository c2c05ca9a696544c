// What a help-desk person can do about each of the gatekeeper's refusals, by
// its reason code. The gatekeeper's own code and message are always shown too,
// verbatim. Every key is one of gatekeeper/errors.py's REASONS (a test checks:
// tests/test_js_units.py).

const TRUST = "The customer's gatekeeper does not accept this portal's grants. Ask the tenant admin to check its trusted keys and settings.";
const CLOCK = "The portal's and the gatekeeper's clocks may disagree. Try again in a minute.";

export const GATEKEEPER_HINTS = {
  address_denied: "The customer's access policy does not allow the address you are connecting from.",
  country_denied: "The customer's access policy does not allow the country you are connecting from.",
  kill_switch: "The customer has suspended all access to its report data.",
  op_disabled: "The customer's gatekeeper does not perform this operation at all (its owner switched it off).",
  expired: "The access grant expired. Reload the page to get a new one.",
  grant_reused: "The access grant was already used. Reload the page to get a new one.",
  revoked: "The customer has revoked access for this account.",
  audit_unavailable: "The customer's audit log cannot be written, so its gatekeeper refuses everything (fail closed).",
  origin_not_allowed: "The customer's gatekeeper does not list this portal's origin.",
  approval_required: "Vendor support needs a tenant admin's approval for this ticket (with two approvers if the customer's gatekeeper asks for a two-person rule). Ask for access again.",
  approval_invalid: "The customer's gatekeeper did not accept the approval: it is not signed by an approver key it lists, or does not cover this ticket. Ask the tenant admin to check its [approvers] block.",
  approval_expired: "The customer's approval for this access has ended. Ask for access again.",
  approval_revoked: "The customer has revoked this approval at its gatekeeper.",
  identity_required: "The customer's gatekeeper needs you to sign in at your organisation's identity provider. Reload the page and sign in.",
  identity_invalid: "The customer's gatekeeper did not accept your organisation's sign-in. Reload the page and sign in again; if it persists, ask the tenant admin to check the [identity] settings.",
  identity_expired: "Your organisation's sign-in has expired. Reload the page and sign in again.",
  identity_mismatch: "You signed in at your organisation's identity provider as someone else than this portal account (or the portal's account has no matching email address).",
  identity_unavailable: "The customer's gatekeeper cannot reach its identity provider's keys, so it refuses (fail closed). Ask the tenant admin.",
  invalid_grant: TRUST, unknown_kid: TRUST, bad_signature: TRUST, wrong_audience: TRUST,
  wrong_issuer: TRUST, algorithm_refused: TRUST,
  not_yet_valid: CLOCK, too_long_lived: CLOCK,
};

export function gatekeeperHint(code) {
  return typeof code === "string" && Object.hasOwn(GATEKEEPER_HINTS, code) ? GATEKEEPER_HINTS[code] : null;
}
