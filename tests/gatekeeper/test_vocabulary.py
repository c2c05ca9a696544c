"""One vocabulary: every reason code the gatekeeper raises is in errors.REASONS, with
the status of the error that carries it, and docs/protocol.md §5 lists them. The
portal and the report page are checked against the same lists
(tests/tenants/test_audit_page.py, tests/test_js_units.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from gatekeeper import errors
from gatekeeper.config import KEYS_BY_NAME
from gatekeeper.errors import REASONS

ROOT = Path(__file__).resolve().parents[2]
ERROR_CLASSES = {name: cls for name, cls in vars(errors).items()
                 if isinstance(cls, type) and issubclass(cls, errors.GatekeeperError)}


def raised_codes() -> list[tuple[str, str, str]]:
    """(module, error class, code) for every `SomeError(..., code="...")` in the gatekeeper."""
    found = []
    for path in sorted((ROOT / "gatekeeper").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ERROR_CLASSES:
                for keyword in node.keywords:
                    if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                        found.append((path.name, node.func.id, keyword.value.value))
    return found


def documented_codes() -> dict[str, set[int]]:
    """code -> the statuses of the §5 rows that name it."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text[text.index("## 5. Statuses and reason codes"):].split("\n\n")[1]
    codes: dict[str, set[int]] = {}
    for line in section.splitlines()[2:]:
        status, described = line.strip("|").split("|", 1)
        for code in set(re.findall(r"`([a-z_]+)`", described)) - set(KEYS_BY_NAME):  # not config keys
            codes.setdefault(code, set()).update(int(s) for s in re.findall(r"\d{3}", status))
    return codes


def test_every_raised_code_is_a_reason_with_its_errors_status():
    found = raised_codes()
    assert len(found) > 30  # the walk sees the gatekeeper's refusals
    wrong = [(module, cls, code) for module, cls, code in found if REASONS.get(code) != ERROR_CLASSES[cls].status]
    assert wrong == []


def test_every_errors_default_code_is_a_reason_with_its_status():
    assert {name: REASONS.get(cls.code) for name, cls in ERROR_CLASSES.items()} == {
        name: cls.status for name, cls in ERROR_CLASSES.items()}


def test_the_protocol_documents_every_raised_code_with_its_status():
    documented = documented_codes()
    assert {code for _, _, code in raised_codes()} <= set(documented)
    assert {code: statuses for code, statuses in documented.items() if REASONS.get(code) not in statuses} == {}


def test_op_names_are_listed_once():
    from gatekeeper import audit, grants
    from gatekeeper_client import grants as client_grants

    assert set(errors.AUDIT_OPS) == set(errors.OPS) | {errors.REQUEST_OP}
    assert errors.SINGLE_USE_OPS <= set(errors.OPS)
    assert grants.OPS is errors.OPS and client_grants.OPS is errors.OPS
    assert audit.AUDIT_OPS is errors.AUDIT_OPS
