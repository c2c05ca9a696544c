"""deploy/aws/gatekeeper.yaml is linted like production infrastructure: cfn-lint and
checkov report nothing; every checkov suppression sits on its resource with its
reason, and each is still needed (without it, checkov fails that resource).

checkov pins an old boto3 exactly, so it lives in its own virtualenv (.venv/checkov,
from requirements-checkov.txt, made by `make setup`); cfn-lint is in requirements.txt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .template import TEMPLATE, load

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"


def checkov(path: Path) -> dict:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make setup` (requirements-checkov.txt)"
    # --skip-download: offline, nothing fetched from the vendor's platform.
    run = subprocess.run([str(CHECKOV), "-f", str(path), "--framework", "cloudformation", "--skip-download",
                          "-o", "json"], capture_output=True, text=True, timeout=300)
    assert run.returncode in (0, 1), run.stderr[-2000:]
    return json.loads(run.stdout)


def declared_skips(template: dict) -> dict[tuple[str, str], str]:
    """(resource, check id) -> reason, from each resource's Metadata.checkov.skip."""
    skips = {}
    for name, body in template["Resources"].items():
        for skip in body.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips[(name, skip["id"])] = skip.get("comment", "")
    return skips


def test_cfn_lint_finds_nothing():
    run = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


@pytest.fixture(scope="module")
def report() -> dict:
    return checkov(TEMPLATE)


def test_checkov_finds_nothing(report):
    summary = report["summary"]
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0, report["results"]["failed_checks"]
    assert summary["passed"] >= 20 and summary["resource_count"] >= 10


def test_every_suppression_has_its_reason_and_checkov_applied_it(report):
    skips = declared_skips(load())
    assert all(len(reason.split()) >= 8 for reason in skips.values()), skips
    applied = {(check["resource"].split(".")[-1], check["check_id"]): check["check_result"]["suppress_comment"]
               for check in report["results"]["skipped_checks"]}
    assert applied == skips


def test_every_suppression_is_still_needed(tmp_path):
    template = json.loads(json.dumps(load()))
    for body in template["Resources"].values():
        body.get("Metadata", {}).pop("checkov", None)
    bare = tmp_path / "gatekeeper.json"
    bare.write_text(json.dumps(template))
    failed = {(check["resource"].split(".")[-1], check["check_id"])
              for check in checkov(bare)["results"]["failed_checks"]}
    assert failed == set(declared_skips(load()))
