"""The browser code's unit tests (tests/js, Node's built-in runner), and the
checks that tie the JavaScript to the rest: its vocabulary against
gatekeeper/errors.py, and the templates' modulepreload lists against the
modules' imports. Node comes from Debian (scripts/system-deps.sh); no npm."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gatekeeper.errors import AUDIT_OPS, OUTCOMES, REASONS

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "static" / "js"
NODE = shutil.which("node")
# The page templates and the one module each loads with <script type="module">.
PAGES = {
    "tickets/report.html": "report/main.js",
    "tickets/list.html": "tickets/list.js",
    "tickets/erase.html": "erase/main.js",
    "moves/job.html": "moves/main.js",
    "base.html": "lib/page.js",
    "tenants/audit.html": "audit/main.js",
    "tenants/settings.html": "settings/main.js",
    "registration/login.html": "accounts/passkeys.js",
    "accounts/mfa_verify.html": "accounts/passkeys.js",
    "accounts/security.html": "accounts/passkeys.js",
    "accounts/sso_continue.html": "accounts/sso-continue.js",
    "identity_callback.html": "lib/identity-callback.js",
}
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\.{1,2}/[^"']+)["']""", re.M | re.S)
PRELOAD = re.compile(r"""<link rel="modulepreload" href="\{% static 'js/([^']+)' %\}">""")
SCRIPT = re.compile(r"""<script type="module" src="\{% static 'js/([^']+)' %\}">""")

def node(*args: str) -> subprocess.CompletedProcess:
    assert NODE, "Node.js is needed for the JavaScript tests: run `make system-deps` (Debian's nodejs)"
    return subprocess.run([NODE, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def js_value(module: str, expression: str):
    """`expression` evaluated in Node with `module` (under static/js) imported as m."""
    script = f"const m = await import({json.dumps((JS / module).as_uri())}); console.log(JSON.stringify({expression}));"
    result = node("--input-type=module", "-e", script)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_javascript_unit_tests_pass():
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))
    assert len(files) >= 5, files
    result = node("--test", "--test-reporter=tap", *files)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    summary = dict(re.findall(r"^# (tests|pass|fail) (\d+)$", result.stdout, re.M))
    assert summary["fail"] == "0" and int(summary["pass"]) > 0, summary


def test_the_report_pages_hints_name_only_the_gatekeepers_reason_codes():
    codes = js_value("lib/gatekeeper-hints.js", "Object.keys(m.GATEKEEPER_HINTS)")
    assert codes, "the hint table is empty"
    assert set(codes) <= set(REASONS), sorted(set(codes) - set(REASONS))


def test_the_audit_pages_outcomes_are_the_gatekeepers():
    outcomes = js_value("audit/table.js", "Object.keys(m.OUTCOME_CLASSES)")
    assert set(outcomes) == set(OUTCOMES)


def test_the_report_page_signs_only_ops_the_gatekeeper_knows():
    # The only op names in the browser code are the report page's list and get.
    source = (JS / "report" / "main.js").read_text()
    ops = set(re.findall(r"""\bop:\s*"([a-z_]+)\"""", source))
    assert ops == {"list", "get"} and ops <= set(AUDIT_OPS)


def imports_of(module: Path) -> set[Path]:
    """Every module `module` imports, directly or not (relative imports only)."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        for target in IMPORT.findall(current.read_text()):
            path = (current.parent / target).resolve()
            assert path.is_file(), f"{current.relative_to(ROOT)} imports {target}, which does not exist"
            if path not in seen:
                seen.add(path)
                todo.append(path)
    return seen


@pytest.mark.parametrize("template,entry", sorted(PAGES.items()))
def test_each_page_preloads_exactly_the_modules_its_script_imports(template, entry):
    html = (ROOT / "templates" / template).read_text()
    assert SCRIPT.findall(html) == [entry]
    preloaded = {(JS / path).resolve() for path in PRELOAD.findall(html)}
    assert preloaded == imports_of(JS / entry), template


def test_every_module_is_reached_from_a_page():
    reached = set().union(*({(JS / e).resolve()} | imports_of(JS / e) for e in PAGES.values()))
    assert {p.resolve() for p in JS.rglob("*.js")} == reached


def test_the_pages_share_only_lib():
    """report/, tickets/, audit/ and settings/ import from their own folder and lib/;
    lib/ imports only from lib/."""
    for module in JS.rglob("*.js"):
        folder = module.parent.name
        for target in IMPORT.findall(module.read_text()):
            imported = (module.parent / target).resolve().parent.name
            assert imported in ({folder, "lib"} if folder != "lib" else {"lib"}), f"{module.relative_to(JS)} imports {target}"
