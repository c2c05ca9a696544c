// The move page's one module (templates/moves/job.html): the live progress bar
// (progress.js) always; the browser carrier (carrier.js) where the page has one
// (a `browser` move still open, for the tenant's admin; never on support's view).

import { startProgress } from "./progress.js";
import { startCarrier } from "./carrier.js";

if (typeof document !== "undefined" && document.querySelector) {
  const progress = document.querySelector("[data-move-progress]");
  if (progress) startProgress(progress);
  const carrier = document.querySelector("[data-move-carrier]");
  if (carrier) startCarrier(carrier);
}
