"""docs/operations.md's configuration table says what config.KEYS says: every key,
its environment variable, its default and its bounds, and no key that is not one."""

from __future__ import annotations

import re
from pathlib import Path

from gatekeeper.config import EVERYWHERE, KEYS, REQUIRED
from gatekeeper.errors import OPS

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented() -> dict[str, list[str]]:
    """key name -> its row's cells, from the table headed | key | env | default | meaning |."""
    text = DOC.read_text()
    table = text[text.index("| key | env | default | meaning |"):].split("\n\n")[0].splitlines()[2:]
    rows = {}
    for line in table:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    return rows


def rendered(default) -> str:
    if default is REQUIRED:
        return "required"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, int):
        return str(default)
    if default == EVERYWHERE:
        return "everyone (`0.0.0.0/0`, `::/0`)"
    if default == OPS:
        return "every op (" + ", ".join(f"`{op}`" for op in OPS) + ")"
    if default == ():
        return "`[]`"
    if isinstance(default, tuple):
        return "`[" + ", ".join(f'"{item}"' for item in default) + "]`"
    return '""' if default == "" else f"`{default}`"


def test_every_key_is_documented_with_its_variable_default_and_bounds():
    rows = documented()
    for key in KEYS:
        assert key.name in rows, f"{key.name} is not in docs/operations.md"
        _, env, default, meaning = rows[key.name]
        assert (env, default) == (f"`{key.env}`", rendered(key.default)), key.name
        if key.bounds:
            assert f"({key.bounds[0]}–{key.bounds[1]})" in meaning, key.name


def test_the_table_documents_no_other_key():
    extra = set(documented()) - {key.name for key in KEYS} - {'[vendor_keys] KID = "…"', '[approvers.keys] ID = …'}
    assert extra == set()


def test_a_config_that_sets_only_what_is_required_gets_the_tables_defaults():
    from gatekeeper import config as config_module

    from .test_config import ENV_ALONE

    given = {"GATEKEEPER_IDENTITY_ISSUER": "https://idp.example", "GATEKEEPER_IDENTITY_AUDIENCE": "pages",
             "GATEKEEPER_IDENTITY_JWKS_URL": "https://idp.example/jwks"}  # [identity] on, the rest its defaults
    loaded = config_module.load(None, env={**ENV_ALONE, "GATEKEEPER_AUDIT_URL": "sqlite:x.db", **given})
    places = {"storage": loaded.storage, "acl": loaded.acl, "acl.upload": loaded.upload_acl,
              "identity": loaded.identity}
    for key in KEYS:
        if key.default is REQUIRED or key.name == "audit.url" or key.env in given:
            continue
        section, _, last = key.name.rpartition(".")
        value = getattr(loaded, key.field) if key.field else getattr(places.get(section, loaded), last)
        default = list(key.default) if key.kind == "list" else key.default
        assert value == (key.check(key.name, default) if key.check else default), key.name


def test_the_rendering_tells_defaults_apart():
    assert len({rendered(d) for d in (REQUIRED, True, 60, EVERYWHERE, OPS, (), "", "sse-s3")}) == 8
    assert re.fullmatch(r"`\[\]`", rendered(()))
