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
  invalid_grant: TRUST, unknown_kid: TRUST, bad_signature: TRUST, wrong_audience: TRUST,
  wrong_issuer: TRUST, algorithm_refused: TRUST,
  not_yet_valid: CLOCK, too_long_lived: CLOCK,
};

export function gatekeeperHint(code) {
  return typeof code === "string" && Object.hasOwn(GATEKEEPER_HINTS, code) ? GATEKEEPER_HINTS[code] : null;
}
