"""The gatekeeper's imports point one way: each module imports only from the layers
below its own (docs/architecture.md, "How to read the gatekeeper"), never sideways
or up, not even inside a function; no module reaches into another's private
names; and nothing outside the standard library but its own requirements."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gatekeeper"
# Bottom first. A module may import from any layer before its own, and from no other.
LAYERS = (
    ("__init__",),
    ("errors",),
    ("paths",),  # shapes: key and address syntax
    ("config",),
    ("grants", "acl", "presign", "audit"),  # decisions and records, no I/O of their own
    ("approvals", "identity"),  # the customer's keys over the vendor's grant: approvals, its IdP
    ("storage", "audit_sqlite", "audit_dynamodb", "geoip"),  # plug-ins app.py chooses from
    ("health",),  # what GET /v1/health reports: the stores' state and the configuration
    ("app",),
    ("http_server", "lambda_handler"),  # adapters: requests in, responses out
    ("cli",),  # python -m gatekeeper: serve (over http_server), check-config, ...
    ("__main__",),
)
LAYER = {module: n for n, modules in enumerate(LAYERS) for module in modules}
# Third-party packages the gatekeeper may import: gatekeeper/requirements*.txt.
# (botocore, not boto3: importing boto3 is most of a Lambda cold start; bench/bench_cold_start.py.)
THIRD_PARTY = {"botocore", "cryptography", "jwt", "waitress", "maxminddb"}


def imports(source: str, package: str = "gatekeeper") -> list[tuple[str, list[str]]]:
    """(module, names) for every import anywhere in `source`, function-level ones
    included; relative imports resolved against `package`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = f"{package}.{module}" if module else package
            found.append((module, [alias.name for alias in node.names]))
    return found


def gatekeeper_targets(module: str, names: list[str]) -> list[str]:
    """The gatekeeper modules an import statement loads."""
    if module == "gatekeeper":  # from gatekeeper import config / from . import VERSION
        return [name if name in LAYER else "__init__" for name in names] or ["__init__"]
    if module.startswith("gatekeeper."):
        return [module.removeprefix("gatekeeper.")]
    return []


def modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def test_every_module_has_a_layer():
    assert {path.stem for path in modules()} == set(LAYER)


@pytest.mark.parametrize("path", modules(), ids=lambda path: path.name)
def test_it_imports_only_from_the_layers_below(path):
    upward = [
        f"{path.stem} (layer {LAYER[path.stem]}) imports {target} (layer {LAYER.get(target)})"
        for module, names in imports(path.read_text())
        for target in gatekeeper_targets(module, names)
        if LAYER.get(target, 99) >= LAYER[path.stem]
    ]
    assert upward == []


@pytest.mark.parametrize("path", modules(), ids=lambda path: path.name)
def test_it_uses_no_other_modules_private_names(path):
    private = [
        f"{module}.{name}" for module, names in imports(path.read_text())
        if gatekeeper_targets(module, names) for name in names if name.startswith("_") and name != "__init__"
    ]
    assert private == []


@pytest.mark.parametrize("path", modules(), ids=lambda path: path.name)
def test_it_needs_only_the_standard_library_and_its_requirements(path):
    outside = {
        module.split(".")[0] for module, _ in imports(path.read_text())
        if module.split(".")[0] not in sys.stdlib_module_names | THIRD_PARTY | {"gatekeeper"}
    }
    assert outside == set()  # no Django, no portal, no tenants, no gatekeeper_client


def test_the_check_sees_function_level_and_relative_imports():
    source = "def f():\n    from .app import Gatekeeper\n    from . import config\n    import gatekeeper.acl\n"
    found = imports(source)
    assert [target for module, names in found for target in gatekeeper_targets(module, names)] == [
        "app", "config", "acl"]
    assert LAYER["app"] > LAYER["config"]  # so config importing app, as in f(), would be refused
