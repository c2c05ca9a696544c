// A ticket's notes and its files' downloads.
//
// Notes are report data: a help-desk person's text goes from this browser
// straight to the tenant's storage. The portal answers a single-use put grant for
// the note's own prefix (and records that the note exists: author, time, size);
// one /v1/sign call at the gatekeeper gives the presigned POST; the browser
// uploads; then it tells the portal the note is stored. Reading a note is part of
// the report page's one /v1/sign batch (main.js), rendered here as text.

import { el } from "../lib/dom.js";
import { ApiError, csrfToken, readJson, requestGrant } from "../lib/http.js";
import { fetchObject, signAll, storageRefusal } from "./api.js";

const MAX_NOTE_BYTES = 16 * 1024; // serializers.MAX_NOTE_BYTES
const NOTE_TYPE = "text/plain; charset=utf-8";

export function readNotes(root) {
  return [...root.querySelectorAll("[data-note]")].map((node) => ({
    node, key: node.dataset.key, size: Number(node.dataset.size), text: node.querySelector("[data-note-text]"),
    url: null,
  }));
}

async function loadNote(note) {
  if (typeof note.url !== "string") {
    note.text.replaceChildren("Not loaded: the gatekeeper did not sign a link for it.");
    return;
  }
  try {
    const bytes = await fetchObject(note.url, Math.min(note.size, MAX_NOTE_BYTES));
    note.text.replaceChildren(new TextDecoder("utf-8").decode(bytes)); // text, never markup
    note.node.dataset.state = bytes.length === note.size ? "shown" : "changed";
    if (bytes.length !== note.size) {
      note.node.append(el("p", { className: "help" }, "Its size in storage differs from when it was written."));
    }
  } catch (error) {
    note.node.dataset.state = "error";
    // No answer at all: said once in the page's error banner (main.js), with the files'.
    note.unreachable = error.source === "storage" && error.status == null && error.code == null;
    note.text.replaceChildren(note.unreachable ? "Not loaded: see the message above."
      : `Not loaded: ${error.code === "NoSuchKey" ? "it is not in the customer's storage." : error.message}`);
  }
}

export function loadNotes(notes) {
  return Promise.allSettled(notes.map(loadNote));
}

async function postJson(url, csrf, body) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError("Could not reach the portal.", { source: "portal" });
  }
  const answer = await readJson(response);
  if (!response.ok) {
    const reason = typeof answer?.detail === "string" ? answer.detail : JSON.stringify(answer ?? {}).slice(0, 200);
    throw new ApiError(`The portal refused: ${reason} (HTTP ${response.status})`, { source: "portal" });
  }
  return answer;
}

// The presigned POST, as the agent does it: the policy's fields, then the file last.
async function uploadTo(result, bytes) {
  const form = new FormData();
  for (const [name, value] of Object.entries(result.fields || {})) form.append(name, value);
  form.append("file", new Blob([bytes], { type: NOTE_TYPE }));
  let response;
  try {
    response = await fetch(result.url, { method: "POST", body: form, mode: "cors", credentials: "omit",
      referrerPolicy: "no-referrer", redirect: "error" });
  } catch {
    throw new ApiError("Could not reach the customer's storage to store the note.", { source: "storage" });
  }
  if (!response.ok) throw await storageRefusal(response);
}

async function writeNote(root, text) {
  const bytes = new TextEncoder().encode(text);
  if (!bytes.length) throw new Error("The note is empty.");
  if (bytes.length > MAX_NOTE_BYTES) throw new Error(`A note is at most ${MAX_NOTE_BYTES / 1024} KB.`);
  const csrf = csrfToken(root);
  const note = await postJson(root.dataset.notesUrl, csrf, { size: bytes.length });
  const gatekeeper = root.dataset.gatekeeperUrl || note.gatekeeper_url;
  const [put] = await signAll(gatekeeper, note.grant,
    [{ op: "put", key: note.key, size: bytes.length, content_type: note.content_type }]);
  if (put?.key !== note.key || typeof put?.url !== "string") throw new Error("The gatekeeper's answer is malformed.");
  await uploadTo(put, bytes);
  await postJson(`${root.dataset.notesUrl}/${note.id}/stored`, csrf, {});
}

export function setUpNoteForm(root) {
  const form = root.querySelector("[data-note-form]");
  if (!form) return;
  const input = form.querySelector("textarea");
  const button = form.querySelector("button");
  const status = form.querySelector("[data-note-status]");
  const sync = () => { button.disabled = !input.value.trim(); };
  input.addEventListener("input", sync);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.textContent = "Storing the note in the customer's storage…";
    try {
      await writeNote(root, input.value);
      status.textContent = "Stored. Reloading…";
      location.reload();
    } catch (error) {
      status.textContent = `The note was not stored: ${error.message}${error.hint ? ` ${error.hint}` : ""}`;
      sync();
    }
  });
  sync();
}

// --- downloads ---------------------------------------------------------------------

function saveBytes(bytes, file) {
  const url = URL.createObjectURL(new Blob([bytes], { type: file.contentType || "application/octet-stream" }));
  const link = el("a", { href: url, download: file.name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// A file the page did not fetch is signed when asked for, so the customer's audit
// log records a read only when someone really downloads it. Its URL is signed
// with an `attachment` disposition: opening it downloads.
async function signAndOpen(root, file) {
  const grant = await requestGrant(root.dataset.grantUrl, csrfToken(root));
  const prefix = root.dataset.prefix || grant.prefix;
  const [get] = await signAll(root.dataset.gatekeeperUrl || grant.gatekeeper_url, grant.grant,
    [{ op: "get", key: prefix + file.name }]);
  if (typeof get?.url !== "string") throw new Error("The gatekeeper did not sign a link.");
  location.assign(get.url);
}

export function enableDownloads(root, files, loads) {
  files.forEach((file) => {
    const button = file.row.querySelector("[data-download]");
    if (!button) return;
    button.disabled = false;
    button.title = loads.has(file) && file.fetch ? "Save the bytes this page checked" : "Download from the customer's storage";
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const bytes = loads.has(file) && file.fetch ? await loads.get(file).catch(() => null) : null;
        if (bytes) saveBytes(bytes, file);
        else await signAndOpen(root, file);
      } catch (error) {
        button.title = `Not downloaded: ${error.message}`;
        button.textContent = "Failed: retry";
      } finally {
        button.disabled = false;
      }
    });
  });
}
