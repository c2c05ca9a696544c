// The settings page's one script: the gatekeeper check (which runs when a
// gatekeeper is configured) and the approver keys held by this browser.
export {} from "./gatekeeper-check.js";
export {} from "./approvals.js";
export {} from "./locations.js";
