// The report page's conversations with the tenant's gatekeeper and storage: the
// shared code in lib/storage.js (the ticket list reads summaries the same way).
export { fetchObject, parseStorageError, sha256Hex, signAll, storageHint, storageRefusal } from "../lib/storage.js";
