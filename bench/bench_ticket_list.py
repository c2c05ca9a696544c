"""The ticket list for 50 tickets: how long until every row's summary is shown,
and how many calls it makes.

    .venv/bin/python bench/bench_ticket_list.py [--runs 10] [--json]

Starts the whole system on loopback (tests/stack.py), submits 50 tickets through
the agent (each with its summary.json), then opens /tickets/ in Debian's Chromium
`--runs` times, each in a fresh logged-in browser context (cold cache). The time
is navigation start → the list marks `[data-ticket-list][data-loaded=true]`
(every summary fetched, hashed and shown), from `performance.now()` in the page.

Baselines measured in the same run:
- the list's HTML alone (its script blocked; to the load event): rows, no summaries;
- the report page of one of those tickets (one grant, one /v1/sign, its files);
- opening the 50 tickets one by one (what staff did before the list showed
  summaries): each ticket's report page in turn in one logged-in context (cold
  at the first, then as a person's browser would be), one grant and one
  /v1/sign per ticket; its time is the sum of the 50 pages' in-page times
  (navigation start → loaded), which leaves out the moments between pages, so
  it flatters the baseline. `--baseline-runs` times (default 3: each is 50 pages).

Calls are counted with Playwright's page.on("request"): summary grants at the
portal (target 1), POSTs to the gatekeeper (target 1), GETs from storage (one per
summary). CORS preflights are made by the browser's network service and are not
reported by Playwright, so they are not counted. Milliseconds: median, p95 (nearest
rank), min.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_report_page import LOADED_CLOCK, origin, p95  # noqa: E402  (the report page bench's clock and figures)
from tests.stack import launch_chromium, log_in, start_stack, wait_until_loaded  # noqa: E402

TICKETS = 50
def open_once(browser, state, stack, path: str, kind: str) -> dict:
    context = browser.new_context(storage_state=state)
    try:
        page = context.new_page()
        if kind == "shell":
            page.route("**/static/js/tickets/list.js", lambda route: route.abort())
        page.add_init_script(LOADED_CLOCK)
        requests: list[tuple[str, str]] = []
        page.on("request", lambda r: requests.append((r.method, r.url)))
        page.goto(f"{stack.portal_url}{path}", wait_until="load")
        if kind == "shell":
            elapsed = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
        elif kind == "report":
            wait_until_loaded(page)
            elapsed = page.evaluate("window.__loadedAt")
        else:
            page.wait_for_selector("[data-ticket-list][data-loaded=true]", state="attached", timeout=60_000)
            elapsed = page.evaluate("window.__loadedAt")
            shown = page.locator("[data-ticket-row][data-summary=shown]").count()
            if shown != TICKETS:
                raise RuntimeError(f"{shown} of {TICKETS} summaries shown")
        return {"ms": elapsed, **calls(stack, requests)}
    finally:
        context.close()


def calls(stack, requests: list[tuple[str, str]]) -> dict:
    """Grant calls to the portal's API, POSTs to the gatekeeper, fetches from storage."""
    acme = stack.tenants["acme"]
    return {
        "grant": sum(1 for m, u in requests if origin(u) == stack.portal_url and m == "POST"
                     and urlsplit(u).path.startswith("/api/v1/")),
        "gatekeeper": sum(1 for m, u in requests if origin(u) == acme.gatekeeper_url and m == "POST"),
        "storage": sum(1 for _, u in requests if origin(u) == acme.storage_origin),
    }


def open_one_by_one(browser, state, stack, tickets) -> dict:
    context = browser.new_context(storage_state=state)
    try:
        page = context.new_page()
        page.add_init_script(LOADED_CLOCK)
        requests: list[tuple[str, str]] = []
        page.on("request", lambda r: requests.append((r.method, r.url)))
        total = 0.0
        for ticket in tickets:
            page.goto(f"{stack.portal_url}/tickets/{ticket['id']}/", wait_until="load")
            wait_until_loaded(page)
            total += page.evaluate("window.__loadedAt")
        return {"ms": total, **calls(stack, requests)}
    finally:
        context.close()


def measure(label, browser, state, stack, path, runs, kind) -> dict:
    if kind != "one-by-one":  # each one-by-one run is already 50 pages, the first of them cold
        open_once(browser, state, stack, path, kind)  # warm-up
    opener = (lambda: open_one_by_one(browser, state, stack, path)) if kind == "one-by-one" else \
        (lambda: open_once(browser, state, stack, path, kind))
    samples = [opener() for _ in range(runs)]
    times = [s["ms"] for s in samples]
    counts = {k: sorted({s[k] for s in samples}) for k in ("grant", "gatekeeper", "storage")}
    result = {"label": label, "runs": runs, "median_ms": statistics.median(times), "p95_ms": p95(times),
              "min_ms": min(times), "requests": counts}
    shown = " ".join(f"{k} {'/'.join(map(str, v))}" for k, v in counts.items())
    print(f"{label:<44} {result['median_ms']:>8.1f} {result['p95_ms']:>8.1f} {result['min_ms']:>8.1f}   {shown}",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--baseline-runs", type=int, default=3, help="runs of opening the 50 tickets one by one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="dualkey-bench-list-"))
    stack = start_stack(workdir / "stack", tickets_per_tenant=0, portal_log_level="WARNING")
    try:
        tickets = stack.submit("acme", count=TICKETS, seed=500)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            context, _ = log_in(browser, stack, "bob")
            state = context.storage_state()
            context.close()
            print(f"ticket list of {TICKETS} tickets, {args.runs} opens each in a fresh logged-in context "
                  f"(cold cache), Chromium {browser.version}")
            print(f"{'':<44} {'median':>8} {'p95':>8} {'min':>8}   calls per open (portal grants, gatekeeper, "
                  "storage)")
            results = [
                measure("list HTML alone (script blocked)", browser, state, stack, "/tickets/", args.runs, "shell"),
                measure(f"list, every one of {TICKETS} summaries shown", browser, state, stack, "/tickets/",
                        args.runs, "list"),
                measure("one report page (5-file demo ticket)", browser, state, stack,
                        f"/tickets/{tickets[0]['id']}/", args.runs, "report"),
                measure(f"the {TICKETS} tickets opened one by one (sum)", browser, state, stack, tickets,
                        args.baseline_runs, "one-by-one"),
            ]
            browser.close()
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    shell, full, report, one_by_one = results
    print(f"summaries shown / list HTML alone: {full['median_ms'] / shell['median_ms']:.1f}x;  "
          f"50 summaries / one report page: {full['median_ms'] / report['median_ms']:.2f}x (medians)")
    print(f"the list with {TICKETS} summaries: {full['median_ms']:.0f} ms, 1 grant + 1 sign;  "
          f"the {TICKETS} tickets opened one by one: {one_by_one['median_ms']:.0f} ms, "
          f"{'/'.join(map(str, one_by_one['requests']['grant']))} grants + "
          f"{'/'.join(map(str, one_by_one['requests']['gatekeeper']))} signs: "
          f"{one_by_one['median_ms'] / full['median_ms']:.0f}x the list (medians)")
    r = full["requests"]
    verdict = "met" if r["grant"] == [1] and r["gatekeeper"] == [1] and r["storage"] == [TICKETS] else "MISSED"
    print(f"list: portal grant calls {r['grant']} (target 1), gatekeeper calls {r['gatekeeper']} (target 1), "
          f"storage GETs {r['storage']} (one per summary): {verdict}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
