"""scripts/build_gatekeeper_zip.py (`make gatekeeper-zip`), imported for the tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("build_gatekeeper_zip", ROOT / "scripts" / "build_gatekeeper_zip.py")
builder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builder)
