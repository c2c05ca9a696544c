// What every page does once loaded (base.html): server-rendered times shown in the
// user's own zone, and forms that ask before they do something hard to undo.

import { formatZoned } from "./dom.js";

// <time datetime="…" data-local>2026-12-02 07:40 UTC</time> → the same instant in
// the browser's zone, e.g. "2026-12-02 02:40 EST"; UTC stays in the tooltip.
export function localizeTimes(root = document) {
  root.querySelectorAll("time[datetime][data-local]").forEach((node) => {
    const date = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) return;
    node.title = node.textContent.trim();
    node.textContent = formatZoned(date);
  });
}

// <form data-confirm="Revoke this token? …"> asks first; Cancel sends nothing.
export function confirmForms(root = document, ask = (text) => window.confirm(text)) {
  root.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!ask(form.dataset.confirm)) event.preventDefault();
    });
  });
}

if (typeof document !== "undefined" && document.querySelector) {
  localizeTimes();
  confirmForms();
}
