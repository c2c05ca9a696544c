"""The dependency between the two Django packages points one way: portal/ may
import tenants/, never the reverse (not even inside a function)."""

import ast
from pathlib import Path

TENANTS = Path(__file__).resolve().parents[2] / "tenants"


def imported_modules(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):  # every node: function-level imports too
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_nothing_in_tenants_imports_portal():
    upward = {
        f"{path.relative_to(TENANTS.parent)}: {name}"
        for path in TENANTS.rglob("*.py")
        for name in imported_modules(path.read_text())
        if name == "portal" or name.startswith("portal.")
    }
    assert upward == set()


def test_the_check_sees_function_level_imports():
    assert imported_modules("def f():\n    from portal.tickets.models import Ticket\n") == {"portal.tickets.models"}
