// The browser carrier of a move between two of the customer's own locations
// (templates/moves/job.html, portal/moves/views.py). The vendor's servers never
// carry the bytes: for each object this tab claims from the portal (a lease, so a
// closed tab's objects are taken again once it runs out), it gets grants (a get
// at the source, a single-use put at the destination, both in the admin's own
// name), signs at each gatekeeper, reads the object from the source's storage,
// hashes it (WebCrypto SHA-256), uploads it with the destination's presigned
// POST, reads it back there and hashes it again, and tells the portal both
// digests (never the bytes). The portal switches each ticket once all its objects
// are verified; then this tab erases the ticket's source copies — the keys the
// portal names, each with every version, never anything else under the prefix —
// with single-use deletes at the source's gatekeeper, and relays each answer, of
// which the portal keeps the receipt. While it carries, it renews its leases.

import { ApiError, postToGatekeeper, readJson } from "../lib/http.js";
import { fetchObject, sha256Hex } from "../lib/storage.js";

const TAB_KEY = "dualkey-move-carrier";
const IDLE_MS = 2000;
const MAX_ERASE_ROUNDS = 20;

// One id per tab, kept across reloads of it (sessionStorage): a reload takes its
// own leases straight back; another tab waits for them to run out.
export function tabId(store = globalThis.sessionStorage) {
  let id = store?.getItem(TAB_KEY);
  if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    store?.setItem(TAB_KEY, id);
  }
  return id;
}

// A duplicated tab inherits its original's sessionStorage, and so its id: both would
// carry the same objects under one lease. A page that holds an id answers for it on a
// BroadcastChannel; a new page asks first, and takes a fresh id if a live page answers.
// A reload asks too, and keeps its id: the page it replaces is gone.
export async function claimTabId(store = globalThis.sessionStorage, waitMs = 300) {
  let id = tabId(store);
  if (typeof BroadcastChannel !== "function") return { id, close() {} };
  const channel = new BroadcastChannel(TAB_KEY);
  const held = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs);
    channel.onmessage = (event) => {
      if (event.data?.holds === id) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    channel.postMessage({ asks: id });
  });
  if (held) {
    store?.removeItem?.(TAB_KEY);
    id = tabId(store);
  }
  channel.onmessage = (event) => { if (event.data?.asks === id) channel.postMessage({ holds: id }); };
  return { id, close: () => channel.close() };
}

class Stopped extends Error {}

export class Carrier {
  constructor(root, say = () => {}) {
    this.root = root;
    this.say = say;
    this.base = root.dataset.baseUrl.replace(/\/+$/, "") + "/carrier";
    this.csrf = root.dataset.csrfToken;
    this.carrier = tabId();
    this.concurrency = Math.max(1, Number(root.dataset.concurrency) || 1);
    this.mode = root.dataset.mode === "check" ? "check" : "copy";
    this.missing = 0; // objects the check found not yet at the destination, this round
    // Leases are renewed every third of one while their objects are carried (a slow upload).
    this.renewMs = Math.max(5, (Number(root.dataset.leaseSeconds) || 60) / 3) * 1000;
    this.moved = 0;
  }

  async portal(path, payload = {}) {
    let response;
    try {
      response = await fetch(this.base + path, {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "X-CSRFToken": this.csrf, "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ carrier: this.carrier, ...payload }),
      });
    } catch {
      throw new ApiError("Could not reach the portal.", { source: "portal" });
    }
    const body = await readJson(response);
    if (!response.ok) {
      const code = typeof body?.error === "string" ? body.error : null;
      // own_tools: the admin chose to copy with her own tools since this page opened.
      if (code === "not_running" || code === "not_leased" || code === "own_tools") throw new Stopped(code);
      throw new ApiError(`The portal refused: ${body?.message || `HTTP ${response.status}`}`,
        { source: "portal", status: response.status, code });
    }
    return body;
  }

  // One signed URL from a gatekeeper, checked to point at the storage the page names.
  async sign(gatekeeper, storage, grant, op) {
    const body = await postToGatekeeper(gatekeeper, "/v1/sign", grant, { ops: [op] });
    const result = body?.results?.[0];
    if (typeof result?.url !== "string" || new URL(result.url).origin !== storage) {
      throw new ApiError(`The gatekeeper at ${gatekeeper} signed for storage other than ${storage}.`,
        { source: "gatekeeper", code: "wrong_storage" });
    }
    return result;
  }

  async readHash(gatekeeper, storage, grant, item) {
    const { url } = await this.sign(gatekeeper, storage, grant, { op: "get", key: item.key });
    const bytes = await fetchObject(url, item.size);
    const digest = await sha256Hex(bytes);
    if (!digest) throw new ApiError("This browser cannot compute SHA-256 (WebCrypto needs https).", { code: "no_webcrypto" });
    return { bytes, digest };
  }

  async verify(item) {
    const { get } = await this.portal(`/objects/${item.id}/grants`, { verify: true });
    const d = this.root.dataset;
    const back = await this.readHash(d.destinationGatekeeper, d.destinationStorage, get, item);
    return this.portal(`/objects/${item.id}/verified`, { sha256: back.digest });
  }

  async copy(item) {
    const d = this.root.dataset;
    const grants = await this.portal(`/objects/${item.id}/grants`);
    const read = await this.readHash(d.sourceGatekeeper, d.sourceStorage, grants.get, item);
    if (read.bytes.byteLength !== item.size || (item.sha256 && item.sha256 !== read.digest)) {
      // The source does not hold what the manifest says: the portal fails it, nothing is written.
      return this.portal(`/objects/${item.id}/copied`, { sha256: read.digest, size: read.bytes.byteLength });
    }
    const signed = await this.sign(d.destinationGatekeeper, d.destinationStorage, grants.put,
      { op: "put", key: item.key, size: item.size, content_type: item.content_type });
    const form = new FormData();
    for (const [name, value] of Object.entries(signed.fields || {})) form.append(name, value);
    form.append("file", new Blob([read.bytes], { type: item.content_type }), item.key.split("/").pop());
    let upload;
    try {
      upload = await fetch(signed.url, { method: "POST", body: form, mode: "cors", credentials: "omit",
        referrerPolicy: "no-referrer" });
    } catch {
      throw new ApiError(`Could not reach the destination's storage at ${d.destinationStorage}.`, { source: "storage" });
    }
    if (!upload.ok) throw new ApiError(`The destination's storage refused the upload (HTTP ${upload.status}).`,
      { source: "storage", status: upload.status, code: `storage_${upload.status}` });
    const copied = await this.portal(`/objects/${item.id}/copied`, { sha256: read.digest, size: read.bytes.byteLength });
    if (copied.state !== "copied") return copied;
    return this.verify(item);
  }

  // The customer copied it with its own tools (the page's ?check=1): nothing is
  // written; the copy at the destination is read back and hashed, and the portal
  // compares it with the manifest's SHA-256 (a note's, which the portal never had:
  // with the source's, read and hashed here too) before the ticket may switch.
  async check(item) {
    const d = this.root.dataset;
    const grants = await this.portal(`/objects/${item.id}/grants`, { check: true });
    let expected = item.sha256;
    if (!expected) expected = (await this.readHash(d.sourceGatekeeper, d.sourceStorage, grants.get_source, item)).digest;
    const back = await this.readHash(d.destinationGatekeeper, d.destinationStorage, grants.get_destination, item);
    const copied = await this.portal(`/objects/${item.id}/copied`, { sha256: expected });
    if (copied.state !== "copied") return copied;
    return this.portal(`/objects/${item.id}/verified`, { sha256: back.digest });
  }

  async carry(item, how) {
    try {
      const answer = await (how === "verify" ? this.verify(item) : this.mode === "check" ? this.check(item)
        : this.copy(item));
      if (answer?.state === "verified") this.moved += 1;
    } catch (error) {
      if (error instanceof Stopped) return;
      if (how !== "copy") return; // a verification left undone is handed out again later
      if (this.mode === "check" && error?.source === "storage" && (error.status === 404 || error.code === "NoSuchKey")) {
        this.missing += 1; // not copied yet: no failure, this tab checks it again
        return;
      }
      const code = (error?.code && /^[A-Za-z0-9_.]{1,64}$/.test(error.code) ? error.code : `${error?.source || "browser"}_error`);
      await this.portal(`/objects/${item.id}/failed`, { code, message: String(error?.message || error).slice(0, 300),
        permanent: false }).catch(() => {});
    }
  }

  // Runs `work` while renewing this tab's leases of `ids` every renewMs.
  async holding(ids, work) {
    const timer = ids.length ? setInterval(() => this.portal("/renew", { ids }).catch(() => {}), this.renewMs) : null;
    try {
      return await work();
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  // Only the keys the portal names (what this move verified at the destination), each with
  // every version: never anything else under the ticket's prefix.
  async eraseSource(entry) {
    for (let round = 1; round <= MAX_ERASE_ROUNDS; round += 1) {
      const { grant, keys } = await this.portal(`/tickets/${entry.id}/erase-grant`);
      const answer = await postToGatekeeper(this.root.dataset.sourceGatekeeper, "/v1/sign", grant,
        { ops: keys.map((key) => ({ op: "delete", key })) });
      const recorded = await this.portal(`/tickets/${entry.id}/erased`, answer);
      if (recorded.state === "erased") return;
    }
    throw new ApiError(`The old copies of ticket #${entry.ticket} were not all erased; trying again later.`,
      { source: "gatekeeper" });
  }

  // Until the move is over (finished or cancelled): claim, carry, switch, erase.
  async run() {
    for (;;) {
      const claimed = await this.portal("/claim", { limit: this.concurrency, mode: this.mode });
      if (claimed.state === "paused") {
        this.say("Paused. Resume to go on.");
        await sleep(IDLE_MS);
        continue;
      }
      const work = [...claimed.copy.map((i) => [i, "copy"]), ...claimed.verify.map((i) => [i, "verify"])];
      const doing = this.mode === "check" ? "Checking" : "Copying";
      if (work.length) this.say(`${doing} ${work.length} object(s)… (${this.moved} verified by this tab)`);
      this.missing = 0;
      await this.holding(claimed.copy.map((item) => item.id),
        () => Promise.all(work.map(([item, how]) => this.carry(item, how))));
      if (this.missing) {
        this.say(`${this.missing} object(s) are not at the destination yet: copy them; this page checks again.`);
        await sleep(IDLE_MS * 2);
      }
      const swept = await this.portal("/sweep");
      for (const entry of swept.erase) {
        this.say(`Erasing the old copies of ticket #${entry.ticket}…`);
        try {
          await this.eraseSource(entry);
        } catch (error) {
          if (error instanceof Stopped) break;
          this.say(error.hint ? `${error.message} ${error.hint}` : error.message);
          await sleep(IDLE_MS);
        }
      }
      const after = swept.erase.length ? await this.portal("/sweep") : swept;
      if (after.state === "finished" || after.state === "cancelled") {
        this.say(after.state === "finished" ? "Finished: every ticket is moved (or named as failed above)."
          : "Cancelled.");
        return after.state;
      }
      if (!work.length && !after.erase.length) {
        this.say("Waiting: other objects are being carried (by another tab, or one closed: its lease runs out).");
        await sleep(IDLE_MS);
      }
    }
  }
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// Runs the carrier in `root` (the page's [data-move-carrier]) until the move is over;
// a failure it cannot place (the portal unreachable) is shown and retried.
export async function startCarrier(root) {
  const status = root.querySelector("[data-carrier-status]");
  const say = (text) => { status.textContent = text; };
  const carrier = new Carrier(root, say);
  carrier.carrier = (await claimTabId()).id; // kept answering for the page's life
  const start = () => carrier.run().then((state) => { root.dataset.done = state; }).catch((error) => {
    if (error instanceof Stopped && error.message === "own_tools") {
      say("This move is now copied with your own tools: reload the page to verify the copies.");
      return;
    }
    say(`${error.message}${error.hint ? ` ${error.hint}` : ""} Retrying…`);
    setTimeout(start, IDLE_MS * 2);
  });
  start();
}
