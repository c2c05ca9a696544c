"""The rules for a ticket's file manifest, in one place: the API serializers and
the docs both take them from here."""

import re

MiB = 1024 * 1024
MAX_FILES = 100
MAX_FILE_SIZE = 100 * MiB
MAX_SUBJECT = 200
# A subject: 1-200 characters, no control characters (Unicode's Cc: C0, DEL, C1),
# and not only white space. The API's schema states it as this pattern, written
# with explicit classes only so that it means the same to Python and to a
# JSON Schema (ECMA-262) validator; subject_problem() checks the same without a
# regex (it would backtrack on a long refused value).
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_SPACE = r"\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
SUBJECT_PATTERN = f"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$"
SUBJECT_SPACES = frozenset(" \xa0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
# \A...\Z, not ^...$: `$` also matches before a trailing newline.
FILE_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")
SHA256_RE = re.compile(r"\A[0-9a-fA-F]{64}\Z")
CONTENT_TYPES = (
    "image/png",
    "image/jpeg",
    "application/json",
    "text/plain",
    "text/csv",
    "application/octet-stream",
)


def is_control(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F


def subject_problem(value: str) -> str | None:
    """Why `value` is not a subject (its length is checked apart), or None."""
    if any(is_control(char) for char in value):
        return "Control characters are not allowed."
    if all(char in SUBJECT_SPACES for char in value):
        return "A subject needs something other than white space."
    return None
