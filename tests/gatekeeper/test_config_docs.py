"""docs/operations.md's configuration table says what config.KEYS says: every key,
its environment variable, its default and its bounds, and no key that is not one."""

from __future__ import annotations

import re
from pathlib import Path

from gatekeeper.config import EVERYWHERE, KEYS, REQUIRED

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
    if default == ():
        return "`[]`"
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
    extra = set(documented()) - {key.name for key in KEYS} - {'[vendor_keys] KID = "…"'}
    assert extra == set()


def test_the_defaults_are_the_configs():
    # The dataclass takes its defaults from the table: a config that sets only what
    # is required gets exactly them.
    from gatekeeper.config import Config

    fields = Config.__dataclass_fields__
    for key in KEYS:
        name = key.field or key.name
        if name in fields and key.default is not REQUIRED and key.kind != "list":
            assert fields[name].default == key.default, name


def test_the_rendering_tells_defaults_apart():
    assert len({rendered(d) for d in (REQUIRED, True, 60, EVERYWHERE, (), "", "sse-s3")}) == 7
    assert re.fullmatch(r"`\[\]`", rendered(()))
