"""Real-browser tests: one stack (tests/stack.py) and one Chromium per session."""

from tests.stack import chromium, dualkey_stack  # noqa: F401  (session fixtures)
