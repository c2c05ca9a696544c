// The settings page's one script: the gatekeeper check (which runs when a
// gatekeeper is configured), the approver keys held by this browser, and the
// onboarding verification (verify.js: on request, and at once after a save).
export {} from "./gatekeeper-check.js";
export {} from "./approvals.js";
export {} from "./verify.js";
