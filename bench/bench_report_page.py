"""How long the report page takes to render, and how many requests it makes.

    .venv/bin/python bench/bench_report_page.py [--runs 10] [--json]

Starts the whole system on loopback (tests/stack.py: moto, the portal, the
gatekeepers), submits tickets through the agent path, then opens each report in
Debian's Chromium `--runs` times, each time in a fresh browser context (logged
in, empty HTTP cache: a first visit). The time is navigation start → the page
marks `[data-report-root][data-loaded=true]` (everything fetched, hashed and
rendered), read from `performance.now()` inside the page.

In the same run, as baselines:
- the report page's HTML shell alone (the report's script blocked; to the load event),
- a ticket from report.json alone (and the summary.json the agent makes of it),
- the 5-file demo ticket,
so the 20-file figure (`--extra-logs 15`) can be read as a ratio.

Requests are counted with Playwright's page.on("request"): the portal's grant
endpoint (target 1), the gatekeeper (target 1: one /v1/sign for the whole ticket),
storage (one GET per previewed file). CORS preflights (OPTIONS) are made by the
browser's network service and not reported by Playwright, so they are not counted.
Medians and p95 (nearest rank) in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import support  # noqa: E402
from tests.stack import PYTHON, launch_chromium, log_in, start_stack, wait_until_loaded  # noqa: E402

# Set up before the page's own scripts: the moment data-loaded becomes "true".
LOADED_CLOCK = """
window.__loadedAt = null;
new MutationObserver((changes, observer) => {
  for (const change of changes) {
    if (change.target.dataset && change.target.dataset.loaded === "true" && window.__loadedAt === null) {
      window.__loadedAt = performance.now();
      observer.disconnect();
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-loaded"] });
"""


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def submit_single_file(stack, workdir: Path) -> dict:
    """A ticket holding report.json alone, through the agent's `submit` command."""
    from gatekeeper_client.demo_report import build_demo_report

    name, data, _ = build_demo_report(7)[0]
    path = workdir / name
    path.write_bytes(data)
    env = {**os.environ, **support.AWS_ENV, "DUALKEY_AGENT_TOKEN": stack.tenants["acme"].seeded["agent_token"]}
    out = subprocess.run([PYTHON, "-m", "gatekeeper_client.agent", "submit",
                          "--config", str(stack.tenants["acme"].agent_config), str(path)], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    ticket_id = out.split("(", 1)[1].split(")", 1)[0]
    files = int(out.split(": ", 1)[1].split(" files", 1)[0])  # report.json and the summary.json made from it
    return {"id": ticket_id, "file_count": files}


def open_once(browser, state, stack, ticket: dict, shell_only: bool = False) -> dict:
    context = browser.new_context(storage_state=state)
    try:
        page = context.new_page()
        if shell_only:
            page.route("**/static/js/report/main.js", lambda route: route.abort())
        page.add_init_script(LOADED_CLOCK)
        requests: list[tuple[str, str]] = []
        page.on("request", lambda r: requests.append((r.method, r.url)))
        page.goto(f"{stack.portal_url}/tickets/{ticket['id']}/", wait_until="load")
        if shell_only:
            elapsed = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
        else:
            wait_until_loaded(page)
            elapsed = page.evaluate("window.__loadedAt")
            problems = page.locator("[data-testid=error-banner]:not([hidden]), [data-testid=warning-banner]:not([hidden])")
            if problems.count():
                raise RuntimeError(f"the page reported a problem: {problems.first.text_content()}")
        acme = stack.tenants["acme"]
        grant_path = f"/api/v1/tickets/{ticket['id']}/grant"
        # Where the time goes: when each step's last response ended (Resource Timing;
        # responseEnd is exposed even for cross-origin fetches).
        phases = page.evaluate("""([grantPath, gatekeeper, storage]) => {
          const entries = performance.getEntriesByType("resource");
          const end = (test) => Math.max(0, ...entries.filter((e) => test(new URL(e.name))).map((e) => e.responseEnd));
          return {
            html: performance.getEntriesByType("navigation")[0].responseEnd,
            scripts: end((u) => u.pathname.startsWith("/static/js/")),
            grant: end((u) => u.pathname === grantPath),
            sign: end((u) => u.origin === gatekeeper),
            storage: end((u) => u.origin === storage),
          };
        }""", [grant_path, acme.gatekeeper_url, acme.storage_origin])
        return {
            "ms": elapsed, "phases": phases,
            "grant": sum(1 for m, u in requests if origin(u) == stack.portal_url and urlsplit(u).path == grant_path),
            "gatekeeper": sum(1 for _, u in requests if origin(u) == acme.gatekeeper_url),
            "storage": sum(1 for _, u in requests if origin(u) == acme.storage_origin),
            "portal": sum(1 for _, u in requests if origin(u) == stack.portal_url),
        }
    finally:
        context.close()


def measure(label, browser, state, stack, ticket, runs, shell_only=False) -> dict:
    open_once(browser, state, stack, ticket, shell_only)  # warm-up: server-side caches, first queries
    samples = [open_once(browser, state, stack, ticket, shell_only) for _ in range(runs)]
    times = [s["ms"] for s in samples]
    counts = {k: sorted({s[k] for s in samples}) for k in ("grant", "gatekeeper", "storage", "portal")}
    result = {"label": label, "files": ticket["file_count"], "runs": runs, "median_ms": statistics.median(times),
              "p95_ms": p95(times), "min_ms": min(times), "requests": counts}
    shown = " ".join(f"{k} {'/'.join(map(str, v))}" for k, v in counts.items())
    print(f"{label:<40} {result['median_ms']:>8.1f} {result['p95_ms']:>8.1f} {result['min_ms']:>8.1f}   {shown}",
          flush=True)
    if not shell_only:
        result["phases_median_ms"] = {k: statistics.median(s["phases"][k] for s in samples)
                                      for k in samples[0]["phases"]}
        print(f"{'':<40} (median time at which each step ended: "
              + ", ".join(f"{k} {v:.0f}" for k, v in result["phases_median_ms"].items())
              + f", rendered {result['median_ms']:.0f})", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="dualkey-bench-report-"))
    stack = start_stack(workdir / "stack", tickets_per_tenant=0, portal_log_level="WARNING")
    try:
        (twenty,) = stack.submit("acme", extra_logs=15, seed=3)
        (five,) = stack.submit("acme", seed=5)
        single = submit_single_file(stack, workdir)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            context, _ = log_in(browser, stack, "bob")
            state = context.storage_state()
            context.close()
            print(f"report page, {args.runs} opens each in a fresh logged-in context (cold cache), "
                  f"Chromium {browser.version}")
            print(f"{'':<40} {'median':>8} {'p95':>8} {'min':>8}   requests per open (grant, gatekeeper, "
                  "storage, portal in all)")
            results = [
                measure("HTML shell alone (script blocked)", browser, state, stack, twenty, args.runs, True),
                measure("report.json (+ summary.json) ticket", browser, state, stack, single, args.runs),
                measure("5-file demo ticket", browser, state, stack, five, args.runs),
                measure("20-file ticket (--extra-logs 15)", browser, state, stack, twenty, args.runs),
            ]
            browser.close()
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    shell, one, _, full = results
    print(f"20-file render / HTML shell: {full['median_ms'] / shell['median_ms']:.1f}x;  "
          f"20-file / 1-file: {full['median_ms'] / one['median_ms']:.2f}x (medians)")
    targets = full["requests"]
    verdict = ("met" if targets["grant"] == [1] and targets["gatekeeper"] == [1]
               and targets["storage"] == [full["files"]] else "MISSED")
    print(f"20-file ticket: grant requests {targets['grant']} (target 1), gatekeeper {targets['gatekeeper']} "
          f"(target 1), storage {targets['storage']} (one per file): {verdict}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
