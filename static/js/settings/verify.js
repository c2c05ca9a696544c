// The onboarding verification, in the admin's browser: the gatekeeper check's
// health verdicts (checks.js), then a round trip through the bucket with a probe
// object — grants from the portal, a signed upload, the presigned POST (this
// proves the bucket and its CORS rule for this origin), a read back, a delete —
// and the outcome, pass or fail per check, reported to the portal, which records
// the "verified" step. After a save of the settings, this runs at once and the
// page says "saved" only alongside its verdict.

import { el } from "../lib/dom.js";
import { ApiError, csrfToken, fetchHealth, portalClockOffset, postToGatekeeper, readJson } from "../lib/http.js";
import { allowIdentityAt, identityConfig, reachIdp } from "../lib/identity.js";
import { evaluate, notReached } from "./checks.js";
import * as probe from "./verify-checks.js";

const TIMEOUT_MS = 10_000;
const BADGES = { pass: "Pass", fail: "Fail", warn: "Warning", info: "Info", skip: "Not checked" };

const root = document.querySelector("[data-onboarding-verify][data-gatekeeper-url]");

function words(value) {
  return (value || "").split(/\s+/).filter(Boolean);
}

function renderCheck(item) {
  return el("li", { className: `check check-${item.status}`, "data-check": item.id, "data-status": item.status },
    el("span", { className: `badge badge-${item.status}` }, BADGES[item.status]),
    el("div", { className: "check-body" },
      el("strong", { className: "check-title" }, item.title),
      el("p", { className: "check-detail" }, item.detail),
      item.hint && el("p", { className: "check-hint" }, item.hint)));
}

// What checks.js compares the health with: this block's own data attributes (the
// gatekeeper being verified: the location being connected, when there is one), and
// the tenant's IdP from the page (lib/identity.js), which a gatekeeper with
// [identity] must name.
function expected() {
  const data = root.dataset;
  return { gatekeeperId: data.gatekeeperId || "", activeKid: data.activeKid || "", nextKid: data.nextKid || "",
    previousKids: words(data.previousKids), bucket: data.bucket || "", region: data.region || "",
    approverIds: words(data.approverIds), idp: identityConfig() };
}

// The probe's POSTs carry the person's ID token to the gatekeeper being verified
// only when it is the customer's own location (never the vendor-hosted one) and its
// health has just asked for the tenant's IdP ([identity]: issuer and audience ours):
// a location being connected is not yet named by the page (lib/identity.js).
function allowIdentityIfAsked(body, idp) {
  const theirs = body?.identity;
  if (root.dataset.locationKind === "customer" && idp && theirs && theirs.issuer === idp.issuer
      && theirs.audience === idp.clientId && Array.isArray(theirs.ops) && theirs.ops.length) {
    allowIdentityAt(root.dataset.gatekeeperUrl);
  }
}

async function health(signal) {
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; }, TIMEOUT_MS);
  try {
    const wanted = expected();
    const [portal, answer, idp] = await Promise.all([
      portalClockOffset(location.pathname, signal),
      fetchHealth(root.dataset.gatekeeperUrl, { signal, timeoutMs: TIMEOUT_MS, timedOut: () => timedOut }),
      // The IdP as the pages will reach it: from this browser, never from the portal.
      wanted.idp && reachIdp(wanted.idp.issuer, signal),
    ]);
    allowIdentityIfAsked(answer.body, wanted.idp);
    const browserSkew = answer.offsetMs == null ? null : answer.offsetMs / 1000;
    const portalSkew = answer.offsetMs == null || portal == null ? null : (answer.offsetMs - portal) / 1000;
    return evaluate(answer.body, wanted, { portalSkew, browserSkew }, { elapsedMs: answer.elapsedMs, idp });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return notReached(error.message, error.hint);
  } finally {
    clearTimeout(timer);
  }
}

async function probeGrants(csrf) {
  let response;
  try {
    response = await fetch(root.dataset.grantUrl, { method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" } });
  } catch (error) {
    throw new ApiError(`Could not reach the portal for the probe's grants (${error?.message || error}).`,
      { source: "portal" });
  }
  const body = await readJson(response);
  if (!response.ok || typeof body?.grants?.put !== "string") {
    throw new ApiError(`The portal gave no probe grants: ${body?.message || `HTTP ${response.status}`}`,
      { source: "portal", status: response.status });
  }
  return body;
}

function probeContent() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `dualkey verification probe ${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}\n`;
}

// Each step returns its check; a failed one ends the round trip (the rest: skipped).
async function roundTrip(healthChecks, csrf, signal) {
  const status = Object.fromEntries(healthChecks.map((c) => [c.id, c.status]));
  const storageOrigin = root.dataset.storageOrigin || "";
  const results = [];
  const rest = (why) => probe.ROUND_TRIP.filter((id) => !results.some((c) => c.id === id)).map(
    (id) => probe.skip(id, why));
  if (status.reachable !== "pass") return rest("The gatekeeper did not answer.");

  let answer;
  try {
    answer = await probeGrants(csrf);
  } catch (error) {
    results.push(probe.refused("probe_grant", error));
    return [...results, ...rest("Not tried: the portal gave no grants.")];
  }
  results.push(probe.pass("probe_grant", `Grants for ${answer.key}, put and delete single-use.`));

  const content = probeContent();
  const size = new TextEncoder().encode(content).length;
  let signed;
  try {
    const body = await postToGatekeeper(root.dataset.gatekeeperUrl, "/v1/sign", answer.grants.put,
      { ops: [{ op: "put", key: answer.key, size, content_type: answer.content_type }] }, signal);
    signed = body?.results?.[0];
    if (!signed?.url || !signed?.fields) throw new ApiError("Its answer has no presigned POST.", { source: "gatekeeper" });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    results.push(probe.refused("probe_sign", error));
    return [...results, ...rest("Not tried: the upload was not signed.")];
  }
  const offOrigin = probe.wrongStorageOrigin(signed.url, storageOrigin);
  if (offOrigin) return [...results, offOrigin, ...rest("Not tried: the upload goes elsewhere.")];
  results.push(probe.pass("probe_sign", `A presigned POST to ${storageOrigin}.`));
  if (status.storage === "fail") {
    return [...results, ...rest("Not tried: the gatekeeper cannot reach its bucket (see “Reaches its bucket”).")];
  }

  const form = new FormData();
  for (const [name, value] of Object.entries(signed.fields)) form.append(name, value);
  form.append("file", new Blob([content], { type: answer.content_type }), "probe.txt");
  // A simple POST: storage stores it whatever its CORS rule says, and the rule
  // decides only whether this page may see the answer. So a withheld answer
  // (a TypeError) is told apart by reading the object back.
  let upload = null;
  let withheld = false;
  try {
    upload = await fetch(signed.url, { method: "POST", body: form, mode: "cors", credentials: "omit",
      referrerPolicy: "no-referrer", signal });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    withheld = true;
  }
  if (upload && !upload.ok) {
    results.push(probe.storageRefused("probe_upload", upload.status, probe.storageCode(await upload.text())));
    return [...results, ...rest("Not tried: the upload failed.")];
  }

  const read = await readBack(answer, content, storageOrigin, signal);
  if (!withheld) {
    results.push(probe.pass("probe_upload", `${size} bytes stored (HTTP ${upload.status}).`));
  } else if (read.status === "pass") {
    results.push(probe.uploadAnswerWithheld(storageOrigin, location.origin));
  } else {
    results.push(probe.storageUnreachable("probe_upload", storageOrigin, location.origin, "POST"));
  }
  results.push(read);

  // Deleted even when the read failed: no probe object is left behind if it can be helped.
  try {
    const body = await postToGatekeeper(root.dataset.gatekeeperUrl, "/v1/sign", answer.grants.delete,
      { ops: [{ op: "delete", key: answer.key }] }, signal);
    results.push(body?.results?.[0]?.deleted === true ? probe.pass("probe_delete", "Gone from the bucket.")
      : probe.refused("probe_delete", new ApiError("Its answer does not say the probe was deleted.")));
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    results.push(error?.code === "op_disabled" ? probe.deleteOff() : probe.refused("probe_delete", error));
  }
  return results;
}

// The probe, signed for a get and fetched from storage: its check.
async function readBack(answer, content, storageOrigin, signal) {
  let url;
  try {
    const body = await postToGatekeeper(root.dataset.gatekeeperUrl, "/v1/sign", answer.grants.get,
      { ops: [{ op: "get", key: answer.key }] }, signal);
    url = body?.results?.[0]?.url;
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    return probe.refused("probe_read", error);
  }
  let read;
  try {
    read = await fetch(url, { mode: "cors", credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer",
      signal });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    return probe.storageUnreachable("probe_read", storageOrigin, location.origin, "GET");
  }
  if (!read.ok) return probe.storageRefused("probe_read", read.status, probe.storageCode(await read.text()));
  return (await read.text()) === content ? probe.pass("probe_read", "The same bytes came back.") : probe.readMismatch();
}

async function sendReport(checks, csrf) {
  try {
    const response = await fetch(root.dataset.reportUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ gatekeeper_url: root.dataset.gatekeeperUrl, gatekeeper_id: root.dataset.gatekeeperId,
        storage_origin: root.dataset.storageOrigin || "", checks: probe.report(checks) }),
    });
    const body = await readJson(response);
    return response.ok ? { ok: true, text: `Recorded by the portal: ${body.state === "done" ? "verified" : "failed"}, `
      + `by ${body.by}.` } : { ok: false, text: `The portal did not record it: ${body?.message || response.status}` };
  } catch {
    return { ok: false, text: "The portal could not be reached to record it." };
  }
}

function start() {
  const list = root.querySelector("[data-testid=verify-checklist]");
  const summary = root.querySelector("[data-testid=verify-summary]");
  const button = root.querySelector("[data-action=verify]");
  const banner = document.querySelector("[data-saved-banner]");
  const csrf = csrfToken(root);
  let running = false;

  async function verify() {
    if (running) return;
    running = true;
    root.dataset.state = "running";
    button.disabled = true;
    summary.className = "check-summary state-loading";
    summary.textContent = "Verifying…";
    list.replaceChildren();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 6 * TIMEOUT_MS);
    let checks;
    try {
      const healthChecks = await health(controller.signal);
      checks = [...healthChecks, ...await roundTrip(healthChecks, csrf, controller.signal)];
    } catch (error) {
      console.error(error);
      checks = [{ id: "reachable", title: probe.TITLES.reachable, status: "fail",
        detail: `The verification itself failed: ${String(error?.message || error)}`, hint: null }];
    } finally {
      clearTimeout(timer);
    }
    list.replaceChildren(...checks.map(renderCheck));
    const verdict = probe.verdict(checks);
    const recorded = await sendReport(checks, csrf);
    summary.className = `check-summary state-${verdict.status}`;
    summary.textContent = verdict.text;
    summary.append(el("span", { className: "checked-at muted", "data-testid": "verify-recorded" }, ` ${recorded.text}`));
    if (banner) {
      banner.className = `notice state-${verdict.status}`;
      banner.setAttribute("role", verdict.status === "pass" ? "status" : "alert");
      banner.textContent = verdict.status === "pass" ? "Settings saved and verified."
        : `Settings saved, but the gatekeeper they name failed verification: ${verdict.first.title}. `
          + `${verdict.first.detail}${verdict.first.hint ? ` ${verdict.first.hint}` : ""}`;
    }
    root.dataset.verdict = verdict.status;
    root.dataset.state = "done";
    button.disabled = false;
    running = false;
  }

  button.addEventListener("click", verify);
  button.disabled = false;
  if ("autostart" in root.dataset) verify();
}

if (root) start();
